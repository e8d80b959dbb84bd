"""The hf-recsys command line, end to end on a generated log."""

import subprocess
import sys

import pandas as pd
import pytest

from hf_recsys.cli import main
from hf_recsys.data import generate_interactions


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory):
    log, _ = generate_interactions(num_users=60, num_items=40, num_interactions=900, seed=3)
    path = tmp_path_factory.mktemp("cli") / "log.csv"
    log.to_pandas().rename(columns={"user_id": "uid", "item_id": "iid"}).to_csv(path, index=False)
    return path


def test_plugins_lists_core_model(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "most_popular" in out and "hf-recsys" in out


def test_inspect_split_fit_evaluate_recommend(log_csv, tmp_path, capsys):
    cols = ["--columns", "user_id=uid", "item_id=iid"]
    assert main(["data", "inspect", str(log_csv), *cols]) == 0
    assert "interactions:  900" in capsys.readouterr().out.replace(",", "")

    split_dir = tmp_path / "split"
    assert main(["data", "split", str(log_csv), *cols, "--method", "leave_last_out", "--output", str(split_dir)]) == 0
    train, test = pd.read_parquet(split_dir / "train.parquet"), pd.read_parquet(split_dir / "test.parquet")
    assert len(train) + len(test) == 900 and test["user_id"].is_unique

    model_dir = tmp_path / "model"
    args = [
        "fit",
        "--model-type",
        "most_popular",
        "--train",
        str(split_dir / "train.parquet"),
        "--output",
        str(model_dir),
    ]
    assert main(args + ["--set", 'weighting="users"']) == 0
    capsys.readouterr()

    metrics = tmp_path / "metrics.json"
    args = ["evaluate", "--model", str(model_dir), "--train", str(split_dir / "train.parquet")]
    assert main(args + ["--test", str(split_dir / "test.parquet"), "--k", "5", "10", "--output", str(metrics)]) == 0
    assert "ndcg@10" in capsys.readouterr().out

    out = tmp_path / "recs.parquet"
    assert main(["recommend", "--model", str(model_dir), "--k", "3", "--output", str(out)]) == 0
    recs = pd.read_parquet(out)
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert len(recs) == 3 * train["user_id"].nunique()
    merged = recs.merge(train, on=["user_id", "item_id"])
    assert merged.empty, "recommendations must exclude items seen in training"

    csv = tmp_path / "recs.csv"
    first = str(train["user_id"].iloc[0])
    assert main(["recommend", "--model", str(model_dir), "--users", first, "--k", "2", "--output", str(csv)]) == 0
    assert pd.read_csv(csv)["rank"].tolist() == [1, 2]


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path / "missing.csv")]) == 2
    assert "error:" in capsys.readouterr().err


def test_module_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "hf_recsys", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "recommend" in out.stdout
