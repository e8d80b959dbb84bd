"""The Accelerate trainer on one process: sharding arithmetic, arguments, accumulation, checkpoints, early stopping,
trackers and the `hf-recsys train` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import build_vocabs, encode_interactions, generate_interactions, leave_last_out
from hf_recsys.training import RecTrainer, RecTrainingArguments, parse_train_args
from hf_recsys.training import trainer as trainer_module
from hf_recsys.training.trainer import (
    IncompleteTrainerCheckpointError,
    epoch_permutation,
    latest_checkpoint,
    shard_step,
    step_generator,
    verify_trainer_checkpoint,
)

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # Accelerate state reset after each test (conftest)


@pytest.fixture(scope="module")
def splits():
    log, _ = generate_interactions(num_users=120, num_items=60, num_interactions=2_000, seed=1)
    return leave_last_out(log, n_validation=1)


def make_trainer(splits, tmp_path, model_type="bprmf", callbacks=(), **overrides):
    options = dict(
        output_dir=str(tmp_path / "run"),
        num_train_epochs=2,
        per_device_train_batch_size=64,
        learning_rate=0.01,
        optim="adamw",  # the trainer's mechanics under autograd (the config's default is BPR's in-place SGD)
        max_grad_norm=1.0,
        disable_tqdm=True,
        logging_steps=5,
    )
    options.update(overrides)
    args = RecTrainingArguments(**options)
    torch.manual_seed(0)
    config = {"bprmf": {"factors": 8}, "biased_mf": {"factors": 8}}[model_type]
    model = AutoModelForRecommendation.for_model(model_type, **config)
    model.set_vocabs(*build_vocabs(splits["train"]))
    train = encode_interactions(splits["train"], model.user_vocab, model.item_vocab)
    return RecTrainer(model, args, train, eval_data=splits["validation"], callbacks=callbacks)


# ---------------------------------------------------------------------------------------------- sharding


@pytest.mark.parametrize("n, per_device, world", [(7, 2, 2), (10, 3, 2), (5, 4, 3), (1, 8, 4), (64, 8, 4)])
def test_shard_step_deals_every_example_to_one_process(n, per_device, world):
    chunk = torch.randperm(n)
    shards = [shard_step(chunk, per_device, world, r) for r in range(world)]
    assert len({len(s) for s in shards}) == 1, "every process runs the same number of micro-steps"
    used = [int(i) for s in shards for idx, w in s if w > 0 for i in idx]
    assert sorted(used) == sorted(chunk.tolist())
    # weights make the DDP average (sum over processes / world) the mean over the step's examples
    total = sum(w for s in shards for _, w in s)
    assert total == pytest.approx(world)
    for s in shards:
        for idx, w in s:
            assert len(idx) >= 1 and (w == 0 or w == pytest.approx(len(idx) * world / n))


def test_epoch_order_is_shared_and_step_randomness_is_per_process():
    assert torch.equal(epoch_permutation(50, 3, 1), epoch_permutation(50, 3, 1))
    assert not torch.equal(epoch_permutation(50, 3, 1), epoch_permutation(50, 3, 2))
    draw = [torch.rand(4, generator=step_generator(3, 1, 5, 0, r)) for r in (0, 1, 0)]
    assert torch.equal(draw[0], draw[2]) and not torch.equal(draw[0], draw[1])


# ---------------------------------------------------------------------------------------------- arguments


def test_config_file_is_overridden_by_the_command_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model_type": "bprmf", "model_config": {"factors": 16}, "dataset": "synthetic",
                                    "output_dir": "out", "learning_rate": 0.1, "eval_ks": [5, 10]}))
    m, d, t = parse_train_args(["--learning_rate", "0.01", "--model_config", '{"factors": 4}'], config_file=path)
    assert (m.model_type, m.model_config, d.dataset) == ("bprmf", {"factors": 4}, "synthetic")
    assert (t.learning_rate, t.eval_ks, t.output_dir) == (0.01, [5, 10], "out")
    json_path = tmp_path / "c.json"
    json_path.write_text(json.dumps({"model_type": "neumf", "dataset": "x.csv", "output_dir": "o"}))
    assert parse_train_args([], config_file=json_path)[0].model_type == "neumf"


@pytest.mark.parametrize(
    "content, argv, message",
    [
        ({"model_type": "bprmf", "dataset": "s", "output_dir": "o", "learnin_rate": 1}, [], "learnin_rate"),
        ({"model_type": "bprmf", "dataset": "s", "output_dir": "o"}, ["--eval_strategy", "often"], "eval_strategy"),
        ({"model_type": "bprmf", "dataset": "s"}, [], "output_dir is required"),
        ({"model_type": "bprmf", "model_name_or_path": "x", "dataset": "s", "output_dir": "o"}, [], "exactly one"),
        ({"model_type": "bprmf", "output_dir": "o"}, [], "give dataset"),
        ({"model_type": "bprmf", "dataset": "s", "output_dir": "o", "eval_ks": [5]}, [], "not in eval_ks"),
        ({"model_type": "bprmf", "dataset": "s", "output_dir": "o"}, ["--lr", "1"], "Unknown command-line"),
    ],
)
def test_bad_options_are_named(tmp_path, content, argv, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(content))
    with pytest.raises((ValueError, SystemExit)) as err:
        parse_train_args(argv, config_file=path)
    if err.type is ValueError:
        assert message in str(err.value)


# ---------------------------------------------------------------------------------------------- the loop


def test_gradient_accumulation_equals_one_large_batch(splits, tmp_path):
    """BiasedMF batches hold no random draw, so 2 micro-steps of 32 must give the step of one batch of 64."""
    one = make_trainer(splits, tmp_path / "a", "biased_mf", eval_strategy="no", save_strategy="no")
    one.train()
    p_one = {k: v.clone() for k, v in one.unwrapped.state_dict().items()}
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    two = make_trainer(
        splits, tmp_path / "b", "biased_mf", eval_strategy="no", save_strategy="no",
        per_device_train_batch_size=32, gradient_accumulation_steps=2,
    )
    two.train()
    assert two.state.global_step == one.state.global_step
    for name, value in two.unwrapped.state_dict().items():
        torch.testing.assert_close(value, p_one[name], rtol=1e-5, atol=1e-6, msg=name)


def test_training_improves_validation_and_keeps_the_best(splits, tmp_path):
    seen = []

    class Watch(trainer_module.TrainerCallback):
        def on_evaluate(self, trainer, metrics):
            seen.append(metrics["eval/ndcg@10"])

    trainer = make_trainer(splits, tmp_path, callbacks=[Watch()], num_train_epochs=6, learning_rate=0.05)
    untrained = trainer.evaluate()["eval/ndcg@10"]
    state = trainer.train()
    assert len(seen) == 6 and max(seen) > untrained + 0.02
    assert state.best_metric == max(seen)
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()
    losses = [h["train/loss"] for h in state.log_history if "train/loss" in h]
    assert losses[-1] < losses[0]


def test_early_stopping_stops_after_patience(splits, tmp_path):
    # a threshold no change can beat: every validation after the first counts as "no improvement"
    trainer = make_trainer(
        splits, tmp_path, num_train_epochs=50, eval_strategy="steps", eval_steps=3, save_strategy="no",
        early_stopping_patience=2, early_stopping_threshold=10.0,
    )
    state = trainer.train()
    assert state.should_stop and state.global_step == 9 and state.best_step == 3


def test_non_gradient_models_are_refused(splits, tmp_path):
    model = AutoModelForRecommendation.for_model("ease")
    model.set_vocabs(*build_vocabs(splits["train"]))
    train = encode_interactions(splits["train"], model.user_vocab, model.item_vocab)
    with pytest.raises(NotImplementedError, match="not trained by gradient descent"):
        RecTrainer(model, RecTrainingArguments(output_dir=str(tmp_path)), train)
    with pytest.raises(TypeError, match="encode_interactions"):
        RecTrainer(model, RecTrainingArguments(output_dir=str(tmp_path)), splits["train"])


# ---------------------------------------------------------------------------------------------- checkpoints


def test_checkpoint_holds_everything_and_rotates(splits, tmp_path):
    trainer = make_trainer(splits, tmp_path, num_train_epochs=4, save_total_limit=2)
    trainer.train()
    out = tmp_path / "run"
    checkpoints = sorted((p.name for p in out.glob("checkpoint-*")), key=lambda name: int(name.split("-")[1]))
    spe = trainer.state.steps_per_epoch
    assert checkpoints == [f"checkpoint-{3 * spe}", f"checkpoint-{4 * spe}"]
    saved = verify_trainer_checkpoint(out / checkpoints[-1])
    assert set(saved["files"]) == {"model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state_0.safetensors"}
    assert (saved["global_step"], saved["epoch"], saved["step_in_epoch"]) == (4 * spe, 4, 0)
    assert not list(out.glob(".*.hfrs-*"))


def test_a_crash_while_writing_leaves_no_checkpoint_that_looks_complete(splits, tmp_path, monkeypatch):
    trainer = make_trainer(splits, tmp_path, num_train_epochs=1, save_strategy="no", eval_strategy="no")
    trainer.train()
    good = trainer.save_checkpoint()
    trainer.state.global_step += 1

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(trainer_module.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        trainer.save_checkpoint()
    out = tmp_path / "run"
    assert not (out / f"checkpoint-{trainer.state.global_step}").exists()
    assert (out / f".checkpoint-{trainer.state.global_step}.hfrs-new").is_dir()  # the partial write, hidden
    assert latest_checkpoint(out) == good
    # a damaged checkpoint is detected and skipped in favour of an older complete one
    monkeypatch.undo()
    newer = trainer.save_checkpoint()
    with open(newer / "optimizer.pt", "r+b") as f:
        f.truncate(10)
    with pytest.raises(IncompleteTrainerCheckpointError, match="optimizer.pt"):
        verify_trainer_checkpoint(newer)
    assert latest_checkpoint(out) == good


def test_resume_in_process_matches_uninterrupted(splits, tmp_path):
    from accelerate.state import AcceleratorState

    full = make_trainer(splits, tmp_path / "full", num_train_epochs=3, save_strategy="steps", save_steps=2,
                        save_total_limit=None)
    full.train()
    params = {k: v.clone() for k, v in full.unwrapped.state_dict().items()}
    AcceleratorState._reset_state(reset_partial_state=True)
    resumed = make_trainer(splits, tmp_path / "resumed", num_train_epochs=3)
    resumed.train(resume_from_checkpoint=tmp_path / "full" / "run" / "checkpoint-4")
    assert resumed.state.global_step == full.state.global_step
    assert resumed.state.best_metric == full.state.best_metric
    for name, value in resumed.unwrapped.state_dict().items():
        assert torch.equal(value, params[name]), name


# ---------------------------------------------------------------------------------------------- the command


def run_cli(*args, cwd=None):
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "hf_recsys.cli", "train", *args], capture_output=True, text=True,
                          env=env, timeout=600, cwd=cwd)


@pytest.mark.slow  # over 5 s: kept out of make test-fast (still in make test)
def test_cli_trains_logs_to_tensorboard_and_saves_a_loadable_model(tmp_path):
    out = tmp_path / "out"
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "model_type": "bprmf", "model_config": {"factors": 8}, "dataset": "synthetic", "synthetic_users": 150,
        "synthetic_items": 80, "synthetic_interactions": 2_500, "num_train_epochs": 3, "learning_rate": 0.02,
        "per_device_train_batch_size": 128, "report_to": ["tensorboard"], "logging_steps": 2, "disable_tqdm": True,
    }))
    proc = run_cli(str(config), "--output_dir", str(out), "--mixed_precision", "bf16")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((out / "train_results.json").read_text())
    assert results["num_processes"] == 1 and results["global_step"] > 0
    assert 0 <= results["test"]["ndcg@10"] <= 1 and results["test"]["num_users"] == 150
    events = list(out.rglob("events.out.tfevents.*"))
    assert events, "TensorBoard event files are written"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert {"train/loss", "eval/ndcg@10"} <= set(acc.Tags()["scalars"])
    assert len(acc.Scalars("train/loss")) >= 3
    model = AutoModelForRecommendation.from_pretrained(out)
    ids, scores = model.recommend([model.user_vocab.decode(np.array([0]))[0]], k=5)
    assert len(ids[0]) == 5 and np.all(np.diff(scores[0]) <= 0)
    assert model.config.evaluation  # the test metrics travel with the model, for its card


@pytest.mark.slow  # over 5 s: kept out of make test-fast (still in make test)
def test_cli_reports_bad_input_clearly(tmp_path):
    proc = run_cli("--model_type", "ease", "--dataset", "synthetic", "--output_dir", str(tmp_path / "o"))
    assert proc.returncode == 2 and "not trained by gradient descent" in proc.stderr
    proc = run_cli(str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and "not found" in proc.stderr
    help_text = run_cli("--help")
    assert help_text.returncode == 0 and "--per_device_train_batch_size" in help_text.stdout


def test_transformers_trainer_does_not_rescale_our_losses(tmp_path):
    """Our forward() returns a mean loss: the HF Trainer must divide by the accumulation steps itself."""
    from transformers import Trainer, TrainingArguments

    model = AutoModelForRecommendation.for_model("bprmf", num_users=5, num_items=4)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[], gradient_accumulation_steps=2)
    assert Trainer(model=model, args=args).model_accepts_loss_kwargs is False
