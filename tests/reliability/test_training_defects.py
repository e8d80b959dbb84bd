"""Trainer-side defects of issue 15: rotation after resuming an older checkpoint (3), a kill between the two renames
of a checkpoint write (3), two runs on one output folder (5), a resume with changed options or data (6), and a
NaN loss noticed only at logging steps (9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import build_vocabs, encode_interactions, generate_interactions, leave_last_out
from hf_recsys.training import RecTrainer, RecTrainingArguments
from hf_recsys.training.trainer import TrainerCallback, latest_checkpoint, verify_trainer_checkpoint

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # Accelerate state reset after each test (conftest)


@pytest.fixture(scope="module")
def train_log():
    log, _ = generate_interactions(num_users=120, num_items=60, num_interactions=2_000, seed=1)
    return leave_last_out(log, n_validation=1)["train"]


def make_trainer(log, out: Path, callbacks=(), shuffle_items: bool = False, **overrides) -> RecTrainer:
    options = dict(
        output_dir=str(out),
        max_steps=8,
        per_device_train_batch_size=64,
        learning_rate=0.01,
        disable_tqdm=True,
        logging_steps=100,
        eval_strategy="no",
        save_strategy="steps",
        save_steps=2,
        save_total_limit=None,
    )
    options.update(overrides)
    torch.manual_seed(0)
    model = AutoModelForRecommendation.for_model("bprmf", factors=8)
    model.set_vocabs(*build_vocabs(log))
    train = encode_interactions(log, model.user_vocab, model.item_vocab)
    if shuffle_items:  # the same number of examples, other interactions
        train.item_idx = (train.item_idx + 1) % train.num_items
    return RecTrainer(model, RecTrainingArguments(**options), train, callbacks=callbacks)


def steps_in(out: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in out.glob("checkpoint-*"))


def reset_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


# ---------------------------------------------------------------------------------------------- defect 3
def test_defect3_resuming_an_older_checkpoint_keeps_the_new_runs_checkpoints(train_log, tmp_path):
    out = tmp_path / "run"
    make_trainer(train_log, out).train()
    assert steps_in(out) == [2, 4, 6, 8]
    reset_state()
    seen = []

    class Latest(TrainerCallback):
        def on_save(self, trainer, checkpoint):
            seen.append(latest_checkpoint(out).name)

    resumed = make_trainer(train_log, out, callbacks=[Latest()], save_steps=5, save_total_limit=2)
    resumed.train(resume_from_checkpoint=out / "checkpoint-4")
    assert seen == ["checkpoint-5", "checkpoint-8"], "latest must point at the resumed run, never the abandoned one"
    assert steps_in(out) == [5, 8]  # rotation removed the resumed run's oldest, not its newest
    kept = sorted(p.name for p in out.glob("abandoned-*"))
    assert kept == ["abandoned-checkpoint-6", "abandoned-checkpoint-8"]  # the abandoned run is kept, not deleted


def test_defect3_a_kill_between_the_two_renames_loses_no_checkpoint(train_log, tmp_path, monkeypatch):
    out = tmp_path / "run"
    trainer = make_trainer(train_log, out, max_steps=2, save_strategy="no")
    trainer.train()
    first = trainer.save_checkpoint()
    real_replace = os.replace

    def killed_before_the_second_rename(src, dst, *a, **k):
        if Path(src).name.startswith(".") and not Path(dst).name.startswith("."):
            raise KeyboardInterrupt("killed between the renames")
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", killed_before_the_second_rename)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint()  # the same step again: the old folder is renamed away, then the kill
    monkeypatch.undo()
    assert latest_checkpoint(out) == first
    verify_trainer_checkpoint(first)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.is_dir()]


# ---------------------------------------------------------------------------------------------- defect 5
CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_training_defects import make_trainer, TrainerCallback
from hf_recsys.data import generate_interactions, leave_last_out

out, flag = Path({out!r}), Path({flag!r})

class Wait(TrainerCallback):
    def on_train_begin(self, trainer):
        flag.write_text("started")
        deadline = time.time() + 60
        while flag.read_text() != "go" and time.time() < deadline:
            time.sleep(0.05)

log, _ = generate_interactions(num_users=120, num_items=60, num_interactions=2_000, seed=1)
make_trainer(leave_last_out(log, n_validation=1)["train"], out, callbacks=[Wait()]).train()
"""


def test_defect5_a_second_run_on_the_same_output_folder_is_refused(train_log, tmp_path):
    out, flag = tmp_path / "run", tmp_path / "flag"
    code = textwrap.dedent(CHILD).format(tests=str(Path(__file__).parent), out=str(out), flag=str(flag))
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    child = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not flag.exists() and time.time() < deadline and child.poll() is None:
            time.sleep(0.1)
        assert flag.exists(), child.stderr.read() if child.poll() is not None else "the first run did not start"
        with pytest.raises(RuntimeError, match="in use by another training run"):
            make_trainer(train_log, out).train()
        flag.write_text("go")
        assert child.wait(timeout=120) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert steps_in(out) == [2, 4, 6, 8]


# ---------------------------------------------------------------------------------------------- defect 6
@pytest.mark.parametrize(
    "change, match",
    [
        ({"learning_rate": 0.05}, "learning_rate: 0.01 -> 0.05"),
        ({"seed": 3}, "seed"),
        ({"shuffle_items": True}, "data"),
    ],
)
def test_defect6_resume_with_changed_options_or_data_is_refused(train_log, tmp_path, change, match):
    out = tmp_path / "run"
    make_trainer(train_log, out, max_steps=4).train()
    reset_state()
    with pytest.raises(ValueError, match=match):
        make_trainer(train_log, out, max_steps=4, **change).train(resume_from_checkpoint="latest")


def test_defect6_an_explicitly_allowed_change_resumes(train_log, tmp_path):
    out = tmp_path / "run"
    make_trainer(train_log, out, max_steps=4, lr_scheduler_type="linear").train()
    reset_state()
    with pytest.raises(ValueError, match="max_steps: 4 -> 6"):  # a linear schedule depends on the run's length
        make_trainer(train_log, out, max_steps=6, lr_scheduler_type="linear").train(resume_from_checkpoint="latest")
    reset_state()
    state = make_trainer(
        train_log, out, max_steps=6, lr_scheduler_type="linear", resume_allow_changes=["max_steps"]
    ).train(resume_from_checkpoint="latest")
    assert state.global_step == 6


def test_training_longer_under_a_constant_schedule_resumes_without_asking(train_log, tmp_path):
    out = tmp_path / "run"
    make_trainer(train_log, out, max_steps=4).train()  # the default schedule is constant
    reset_state()
    assert make_trainer(train_log, out, max_steps=6).train(resume_from_checkpoint="latest").global_step == 6


# ---------------------------------------------------------------------------------------------- defect 9
class PoisonAt(TrainerCallback):
    """Once step ``step`` is saved, a weight becomes NaN (as an overflow would make it): the next loss is NaN."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, trainer, checkpoint):
        if trainer.state.global_step == self.step:
            with torch.no_grad():
                next(p for p in trainer.unwrapped.parameters() if p.requires_grad).fill_(float("nan"))


def test_defect9_a_nan_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(train_log, tmp_path):
    out = tmp_path / "run"
    trainer = make_trainer(train_log, out, callbacks=[PoisonAt(3)], save_steps=1)
    with pytest.raises(FloatingPointError, match="at step 4.*checkpoint-3"):
        trainer.train()
    assert steps_in(out) == [1, 2, 3], "no checkpoint may be written after the NaN step"
    from safetensors.torch import load_file

    weights = load_file(latest_checkpoint(out) / "model.safetensors")
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())["global_step"] == 3


# ---------------------------------------------------------------------------------------------- raw tracebacks
def test_a_full_disk_during_a_checkpoint_is_a_clear_error_and_keeps_the_last_checkpoint(train_log, tmp_path):
    from test_fault_injection import with_file_size_limit

    out = tmp_path / "run"
    trainer = make_trainer(train_log, out, max_steps=2, save_strategy="no")
    trainer.train()
    first = trainer.save_checkpoint()
    trainer.state.global_step += 1
    msg = with_file_size_limit(1024, trainer.save_checkpoint)  # the next checkpoint, under a 1 kB file limit
    assert msg.startswith("SaveError") and "earlier checkpoints are unchanged" in msg, msg
    assert latest_checkpoint(out) == first and steps_in(out) == [2]
    assert not [p for p in out.iterdir() if p.name.startswith(".checkpoint")]


def test_the_best_model_is_written_atomically_and_verified_before_it_is_read(train_log, tmp_path):
    from hf_recsys.training.checkpoints import IncompleteTrainerCheckpointError, verify_best

    trainer = make_trainer(train_log, tmp_path / "run", max_steps=2, save_strategy="no")
    trainer.train()
    trainer.state.best_metric, trainer.state.best_step = 0.5, 2
    trainer._save_best()
    best = tmp_path / "run" / "best"
    assert set(verify_best(best)["files"]) == {"model.safetensors"}
    trainer._load_best()
    with open(best / "model.safetensors", "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\x00\x00\x80\x7f")  # the last weight becomes +inf: same size, other content
    with pytest.raises(IncompleteTrainerCheckpointError, match="changed: model.safetensors"):
        trainer._load_best()
