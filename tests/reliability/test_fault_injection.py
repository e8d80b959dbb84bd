"""Fault injection: a save, a checkpoint write, or a Hub push killed at every file-system step, and a save that runs
out of disk space (RLIMIT_FSIZE); afterwards the folder loads as the complete old or the complete new model.

Each fault runs in a forked child process (no re-import of torch: a few milliseconds each). The child counts the
file-system calls of the save (``open``, ``os.replace``, ``os.rename``, ``os.fsync``, ``os.mkdir``, ``os.unlink``,
``shutil.rmtree``) and SIGKILLs itself just before the k-th, for every k until the save completes: every step of the
protocol is interrupted once, deterministically.
"""

from __future__ import annotations

import builtins
import os
import resource
import shutil
import signal
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_recsys import AutoModelForRecommendation, MostPopularConfig, MostPopularModel
from hf_recsys.testing_utils import tiny_log

pytestmark = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="needs fork (Linux)")
MAX_STEPS = 400  # far above the number of file-system calls of one save; a bound, not a target


def fit(seed: int, num_users: int) -> MostPopularModel:
    return MostPopularModel(MostPopularConfig()).fit(tiny_log(num_users=num_users, seed=seed), show_progress=False)


@pytest.fixture(scope="module")
def models():
    return {"old": fit(0, 40), "new": fit(1, 30)}


def which(folder: Path, models) -> str:
    """``"old"`` or ``"new"``: the complete model the folder loads as (anything else fails the test)."""
    loaded = AutoModelForRecommendation.from_pretrained(folder)
    for name, m in models.items():
        users = list(m.user_vocab.ids)
        if len(loaded.user_vocab) == len(m.user_vocab) and np.array_equal(
            loaded.recommend(users, k=5)[0], m.recommend(users, k=5)[0]
        ):
            return name
    raise AssertionError(f"{folder} loads as neither the old nor the new model")


def run_killed_at(k: int, action) -> int:
    """Fork; in the child, SIGKILL just before the k-th file-system call of ``action()``. Returns the child's status:
    ``-9`` when killed, ``0`` when ``action`` completed before the k-th call."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        count = [0]

        def counted(fn):
            def wrapper(*args, **kwargs):
                count[0] += 1
                if count[0] == k:
                    os.kill(os.getpid(), signal.SIGKILL)
                return fn(*args, **kwargs)

            return wrapper

        for mod, name in [(builtins, "open"), (os, "replace"), (os, "rename"), (os, "fsync"), (os, "mkdir")]:
            setattr(mod, name, counted(getattr(mod, name)))
        os.unlink = counted(os.unlink)
        shutil.rmtree = counted(shutil.rmtree)
        try:
            action()
        except BaseException:
            import traceback

            traceback.print_exc()  # shown by pytest with the failing status
            os._exit(3)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def with_file_size_limit(limit: int, action) -> str:
    """Run ``action()`` in a forked child under ``RLIMIT_FSIZE = limit`` bytes (a full disk); returns ``"done"`` or
    ``"<ExceptionType>: <message>"`` of what it raised."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            action()
            msg = "done"
        except BaseException as exc:
            msg = f"{type(exc).__name__}: {exc}"
        os.write(write, msg.encode()[:4000])
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return f.read()


def test_save_pretrained_killed_at_every_step_leaves_old_or_new(models, tmp_path):
    base = tmp_path / "base"
    models["old"].save_pretrained(base)
    (base / "notes.txt").write_text("the user's own file")
    seen = []
    for k in range(1, MAX_STEPS):
        folder = tmp_path / f"k{k}"
        shutil.copytree(base, folder)
        status = run_killed_at(k, lambda f=folder: models["new"].save_pretrained(f))
        assert status in (0, -signal.SIGKILL), f"the save failed at step {k} with status {status}"
        seen.append(which(folder, models))  # the load also finishes or undoes the interrupted swap
        assert (folder / "notes.txt").read_text() == "the user's own file", f"user file lost at step {k}"
        assert not [p for p in folder.parent.iterdir() if p.name.startswith(f".{folder.name}.")], k
        shutil.rmtree(folder)
        if status == 0:
            break
    else:
        pytest.fail(f"the save did not complete within {MAX_STEPS} file-system calls")
    assert seen[0] == "old" and seen[-1] == "new" and len(seen) > 10, seen


def test_checkpoint_killed_at_every_step_leaves_a_complete_checkpoint(tmp_path):
    from accelerate.state import AcceleratorState, GradientState

    from hf_recsys.data import build_vocabs, encode_interactions, generate_interactions
    from hf_recsys.training import RecTrainer, RecTrainingArguments
    from hf_recsys.training.checkpoints import latest_checkpoint, verify_trainer_checkpoint

    log, _ = generate_interactions(num_users=60, num_items=30, num_interactions=600, seed=2)
    model = AutoModelForRecommendation.for_model("bprmf", factors=4)
    model.set_vocabs(*build_vocabs(log))
    train = encode_interactions(log, model.user_vocab, model.item_vocab)
    out = tmp_path / "run"
    args = RecTrainingArguments(
        output_dir=str(out), max_steps=2, disable_tqdm=True, eval_strategy="no", save_strategy="no", logging_steps=100
    )
    try:
        trainer = RecTrainer(model, args, train)
        trainer.train()
        first = trainer.save_checkpoint()
        trainer.state.global_step += 1  # the next checkpoint: checkpoint-3
        outcomes = []
        for k in range(1, MAX_STEPS):
            status = run_killed_at(k, trainer.save_checkpoint)
            latest = latest_checkpoint(out)  # recovers an interrupted write
            verify_trainer_checkpoint(latest)
            outcomes.append(latest.name)
            assert latest.name in (first.name, "checkpoint-3"), (k, latest)
            if status == 0:
                break
            shutil.rmtree(out / "checkpoint-3", ignore_errors=True)  # start the next kill from the same state
        assert outcomes[0] == first.name and outcomes[-1] == "checkpoint-3" and len(outcomes) > 5, outcomes
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9])
def test_disk_full_save_leaves_the_old_model_and_a_clear_error(models, tmp_path, fraction):
    scratch = tmp_path / "scratch"
    models["new"].save_pretrained(scratch)
    limit = int(max(p.stat().st_size for p in scratch.iterdir()) * fraction)  # the biggest file does not fit
    folder = tmp_path / "model"
    models["old"].save_pretrained(folder)
    msg = with_file_size_limit(limit, lambda: models["new"].save_pretrained(folder))
    assert msg.startswith("SaveError") and "was left as it was" in msg, msg
    assert which(folder, models) == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".model.")]


# ---------------------------------------------------------------------------------------------- push
@pytest.fixture(scope="module")
def hub():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))
    from hub_server import serve

    server, state = serve()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def _push_from_child(endpoint: str, model, repo_id: str):
    def push():
        from huggingface_hub import constants

        constants.ENDPOINT = endpoint  # the child talks to the local test server
        constants.HF_HUB_DISABLE_XET = True
        constants.HF_HUB_OFFLINE = False  # the test process is offline; the child may reach 127.0.0.1 only
        model.push_to_hub(repo_id, token="hf_test_token")

    return push


def _published(state, repo_id: str) -> str:
    """``"old"``/``"new"``: what the repo's main branch holds, after checking it against its own manifest."""
    import hashlib
    import json

    repo = state.repos[("model", repo_id)]
    files = repo.commits[repo.refs["main"]]
    config = json.loads(files["config.json"])
    for name, meta in config["hf_recsys_files"].items():
        assert hashlib.sha256(files[name]).hexdigest() == meta["sha256"], f"{name} does not match the manifest"
    return {40: "old", 30: "new"}[config["num_users"]]


def test_push_killed_at_every_step_publishes_old_or_new(models, hub):
    from huggingface_hub.utils._http import get_session

    client = type(get_session())  # huggingface_hub's HTTP client class
    endpoint, state = hub
    repo_id = "org/killed-push"
    assert run_killed_at(10**9, _push_from_child(endpoint, models["old"], repo_id)) == 0
    assert _published(state, repo_id) == "old"
    send = client.send
    seen = []
    try:

        def counted_send(self, *args, **kwargs):  # network calls count as steps too (patched before the fork)
            builtins.open(os.devnull).close()  # one counted call, so a kill can land before each request
            return send(self, *args, **kwargs)

        client.send = counted_send
        for k in range(1, MAX_STEPS):
            status = run_killed_at(k, _push_from_child(endpoint, models["new"], repo_id))
            seen.append(_published(state, repo_id))
            if status == 0:
                break
    finally:
        client.send = send
    assert seen[0] == "old" and seen[-1] == "new" and len(seen) > 5, seen
