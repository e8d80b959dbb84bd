"""The example configs, launched as a user would with `accelerate launch`, on the real ml-latest-small (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hf_recsys import AutoModelForRecommendation

REPO = Path(__file__).resolve().parents[2]


def accelerate_launch(accelerate_config: str, train_config: str, *overrides: str, data: Path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_RECSYS_ML_LATEST_SMALL=str(data), OMP_NUM_THREADS="1")
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(REPO / "examples" / "accelerate" / accelerate_config),
        "-m", "hf_recsys.cli", "train", str(REPO / "examples" / "train" / train_config), *overrides,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd=REPO)


def check_saved_model(out: Path, model_type: str) -> dict:
    results = json.loads((out / "train_results.json").read_text())
    model = AutoModelForRecommendation.from_pretrained(out)
    assert model.config.model_type == model_type
    assert model.config.num_users == 610
    ids, scores = model.recommend([1, 2], k=10)
    assert ids.shape == (2, 10) and np.all(np.isfinite(scores))
    assert model.config.dataset_info["name"] == "ml-latest-small"
    return results


@pytest.mark.slow
@pytest.mark.parametrize(
    "accelerate_config, train_config, model_type, processes, epochs",
    [
        ("cpu_single.yaml", "gpt_sequential_ml_latest_small.yaml", "causal_sequential", 1, 3),
        ("cpu_2proc.yaml", "bprmf_ml_latest_small.yaml", "bprmf", 2, 2),
    ],
    ids=["gpt-sequential-1-process", "bprmf-2-processes"],
)
def test_accelerate_launch_trains_an_example_config(
    ml_latest_small, tmp_path, accelerate_config, train_config, model_type, processes, epochs
):
    out = tmp_path / model_type
    proc = accelerate_launch(
        accelerate_config, train_config,
        "--output_dir", str(out), "--num_train_epochs", str(epochs), "--report_to", "none", "--disable_tqdm", "true",
        data=ml_latest_small,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = check_saved_model(out, model_type)
    assert results["num_processes"] == processes and results["epochs_completed"] == epochs
    assert results["test"]["num_users"] == 610 and results["test"]["ndcg@10"] > 0
