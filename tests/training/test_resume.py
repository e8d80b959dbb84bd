"""Kill a training run with a real signal, resume it, and end exactly where an uninterrupted run ends."""

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


@pytest.mark.slow
def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    full_dir, killed_dir = tmp_path / "full", tmp_path / "killed"
    full = subprocess.run(
        train_cmd(write_config(tmp_path, full_dir)), capture_output=True, text=True, env=env(), timeout=600
    )
    assert full.returncode == 0, full.stderr[-4000:]
    total_steps = json.loads((full_dir / "train_results.json").read_text())["global_step"]
    assert total_steps >= 150

    # the same run, killed (SIGKILL: no chance to clean up) once its second checkpoint exists
    config = write_config(tmp_path, killed_dir)
    proc = subprocess.Popen(train_cmd(config), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env())
    deadline = time.time() + 300
    while not (killed_dir / "checkpoint-40").is_dir():
        assert proc.poll() is None, f"run ended before it could be killed:\n{proc.stderr.read()[-3000:]}"
        assert time.time() < deadline, "no checkpoint-40 within 300 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run was killed mid-way, not finished"
    assert not (killed_dir / "train_results.json").exists()
    saved = sorted(int(p.name.split("-")[1]) for p in killed_dir.glob("checkpoint-*"))
    assert saved and max(saved) < total_steps

    resumed = subprocess.run(
        train_cmd(config, "--resume_from_checkpoint", "latest"), capture_output=True, text=True, env=env(), timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-4000:]
    assert f"resumed from {killed_dir}/checkpoint-" in resumed.stderr

    params_full, results_full = final_state(full_dir)
    params_resumed, results_resumed = final_state(killed_dir)
    assert params_full.keys() == params_resumed.keys()
    for name in params_full:
        assert torch.equal(params_full[name], params_resumed[name]), name
    for results in (results_full, results_resumed):
        results.pop("train_seconds")  # wall-clock time, the only field that may differ
    assert results_resumed == results_full  # same best step, best metric and test metrics, exactly
