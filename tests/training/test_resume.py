"""Stop a training run with a real signal (SIGKILL, SIGTERM), resume it, and end exactly where an uninterrupted run
ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

CONFIG = {
    "model_type": "causal_sequential",
    # a tiny GPT-2 with dropout and a sampled softmax: both draw from the global RNG, which resume must restore
    "model_config": {
        "hidden_size": 32,
        "num_layers": 1,
        "num_heads": 2,
        "max_sequence_length": 12,
        "dropout": 0.2,
        "loss": "sampled",
        "num_negatives": 20,
    },
    "dataset": "synthetic",
    "synthetic_users": 300,
    "synthetic_items": 120,
    "synthetic_interactions": 4_000,
    "num_train_epochs": 12,
    "per_device_train_batch_size": 16,
    "learning_rate": 0.003,
    "eval_strategy": "steps",
    "eval_steps": 40,
    "save_strategy": "steps",
    "save_steps": 20,
    "save_total_limit": 3,
    "logging_steps": 20,
    "disable_tqdm": True,
    "seed": 7,
}


def train_cmd(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hf_recsys.cli", "train", str(config), *extra]


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return e


def write_config(tmp_path: Path, output_dir: Path) -> Path:
    path = tmp_path / f"{output_dir.name}.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "output_dir": str(output_dir)}))
    return path


def final_state(output_dir: Path) -> tuple[dict, dict]:
    return load_file(output_dir / "model.safetensors"), json.loads((output_dir / "train_results.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the same configuration trained without interruption."""
    tmp_path = tmp_path_factory.mktemp("full")
    full_dir = tmp_path / "full"
    full = subprocess.run(
        train_cmd(write_config(tmp_path, full_dir)), capture_output=True, text=True, env=env(), timeout=600
    )
    assert full.returncode == 0, full.stderr[-4000:]
    return full_dir


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_stopped_run_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted, sig):
    full_dir, killed_dir = uninterrupted, tmp_path / "killed"
    total_steps = json.loads((full_dir / "train_results.json").read_text())["global_step"]
    assert total_steps >= 150

    # the same run, stopped once its second checkpoint exists. SIGKILL gives it no chance to clean up; on SIGTERM (a
    # preempted job) it checkpoints after the current step and exits with 143.
    config = write_config(tmp_path, killed_dir)
    proc = subprocess.Popen(train_cmd(config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.time() + 300
    while not (killed_dir / "checkpoint-40").is_dir():
        assert proc.poll() is None, f"run ended before it could be stopped:\n{proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, "no checkpoint-40 within 300 s"
        time.sleep(0.02)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert not (killed_dir / "train_results.json").exists(), "the run was stopped mid-way, not finished"
    saved = sorted(int(p.name.split("-")[1]) for p in killed_dir.glob("checkpoint-*"))
    assert saved and max(saved) < total_steps
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 143, stderr[-3000:]
        assert f"stopped by SIGTERM after step {max(saved)}" in stderr  # its own checkpoint, at the step it stopped

    resumed = subprocess.run(
        train_cmd(config, "--resume_from_checkpoint", "latest"), capture_output=True, text=True, env=env(), timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert f"resumed from {killed_dir}/checkpoint-{max(saved)}" in resumed.stderr

    params_full, results_full = final_state(full_dir)
    params_resumed, results_resumed = final_state(killed_dir)
    assert params_full.keys() == params_resumed.keys()
    for name in params_full:
        assert torch.equal(params_full[name], params_resumed[name]), name
    for results in (results_full, results_resumed):
        results.pop("train_seconds")  # wall-clock times, the only fields that may differ
        results.pop("train_seconds_this_run")
        for row in results["history"]:  # per-epoch times, and the mean logged loss: a stop between two logging
            row.pop("seconds")  # steps loses the partial running loss, so the first loss logged after the resume
            row.pop("loss", None)  # averages fewer steps (the parameters and metrics are compared exactly)
    assert results_resumed == results_full  # same best step, best metric and test metrics, exactly
