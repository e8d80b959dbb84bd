"""The plugin's models work through the core's ``hf-recsys`` command line: fit, evaluate, recommend."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hf_recsys.testing_utils import tiny_log

cli = pytest.importorskip("hf_recsys.cli")


@pytest.mark.parametrize("model_type, options", [("ease", ["l2=10"]), ("item_knn", ["k=10"]), ("als", ["factors=4"])])
def test_fit_evaluate_recommend_from_the_command_line(model_type, options, tmp_path, capsys):
    log = tiny_log()
    test = log.groupby("user_id").tail(1)
    train = log.drop(test.index)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    out = tmp_path / "model"
    assert cli.main(["plugins"]) == 0
    assert model_type in capsys.readouterr().out
    fit = ["fit", "--model-type", model_type, "--train", str(tmp_path / "train.csv"), "--output", str(out)]
    assert cli.main(fit + ["--set", *options]) == 0
    metrics = tmp_path / "metrics.json"
    evaluate = ["evaluate", "--model", str(out), "--train", str(tmp_path / "train.csv"), "--test"]
    assert cli.main(evaluate + [str(tmp_path / "test.csv"), "--k", "5", "--output", str(metrics)]) == 0
    assert "ndcg@5" in json.dumps(json.loads(metrics.read_text()))
    recs = tmp_path / "recs.csv"
    assert cli.main(["recommend", "--model", str(out), "--users", "u1", "u2", "--k", "3", "--output", str(recs)]) == 0
    table = pd.read_csv(recs)
    assert len(table) == 6 and set(table["user_id"]) == {"u1", "u2"}
