"""`hf-recsys ope LOG --model MODEL --policy NAME` on a logged slate file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hf_recsys.cli import main
from hf_recsys.data import generate_interactions
from hf_recsys.policies import EpsilonGreedyPolicy, SoftmaxPolicy, evaluate_policy

classic = pytest.importorskip("hf_recsys_classic")


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ope")
    log, _ = generate_interactions(num_users=30, num_items=25, num_interactions=300, seed=0)
    model = classic.ALSModel(classic.ALSConfig(factors=4, iterations=3)).fit(log, show_progress=False)
    model.save_pretrained(folder / "als")
    users = np.repeat(model.user_vocab.ids, 4)
    served = EpsilonGreedyPolicy(model, epsilon=0.4, seed=0).sample(users, k=3)
    rewards = (np.random.default_rng(0).random((len(users), 3)) < 0.2).astype(float)
    served.to_dataset(rewards=rewards).to_parquet(str(folder / "log.parquet"))
    single = EpsilonGreedyPolicy(model, epsilon=0.4, seed=1).sample(users, k=1)
    single.to_dataset(rewards=rewards[:, :1]).to_csv(str(folder / "single.csv"), index=False)
    return folder, model


def test_ope_command_prints_and_writes_the_estimates(saved, capsys):
    folder, model = saved
    out = folder / "ope.json"
    argv = [
        "ope",
        str(folder / "log.parquet"),
        "--model",
        str(folder / "als"),
        "--policy",
        "softmax",
        "--policy-args",
        "temperature=0.5",
        "n_samples=50",
        "--bootstrap",
        "100",
        "--output",
        str(out),
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| rips |" in text and "| iips |" in text
    result = json.loads(out.read_text())
    assert result["k"] == 3 and result["num_rounds"] == 120 and result["policy_args"]["temperature"] == 0.5
    import pandas as pd

    same = evaluate_policy(
        pd.read_parquet(folder / "log.parquet"),
        SoftmaxPolicy(model, temperature=0.5, n_samples=50, seed=0),
        n_bootstrap=100,
    )
    assert [r["value"] for r in result["estimates"]] == pytest.approx([r["value"] for r in same.rows])


def test_ope_command_names_a_bad_log(saved, tmp_path, capsys):
    folder, _ = saved
    import pandas as pd

    pd.read_parquet(folder / "log.parquet").drop(columns="propensity").to_csv(tmp_path / "bad.csv", index=False)
    assert main(["ope", str(tmp_path / "bad.csv"), "--model", str(folder / "als"), "--policy", "softmax"]) == 2
    assert "no 'propensity' column" in capsys.readouterr().err


def test_ope_command_with_a_reward_model_on_single_item_logs(saved, capsys):
    folder, _ = saved
    argv = [
        "ope",
        str(folder / "single.csv"),
        "--model",
        str(folder / "als"),
        "--policy",
        "epsilon_greedy",
        "--policy-args",
        "epsilon=0.1",
        "--reward-model",
        str(folder / "als"),
        "--bootstrap",
        "50",
    ]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert all(f"| {name} |" in text for name in ("ips", "snips", "dm", "dr", "sndr", "switch_dr"))
