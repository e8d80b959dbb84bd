"""The metrics as `evaluate` modules, loaded offline from their folders."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from hf_recsys.metrics import list_metrics, metric_path


@pytest.fixture
def offline_evaluate(tmp_path, monkeypatch):
    """``evaluate`` with its module cache under a temporary HF_HOME (it copies metric scripts there)."""
    import evaluate

    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setattr(evaluate.config, "HF_MODULES_CACHE", tmp_path / "modules")
    for name in [m for m in sys.modules if m.startswith("evaluate_modules")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return lambda name: evaluate.load(metric_path(name), cache_dir=str(tmp_path / "cache"))


@pytest.mark.slow  # over 5 s: kept out of make test-fast (still in make test)
def test_ranking_module_matches_ranx(offline_evaluate, ranx_reference, metric_names):
    rng = np.random.default_rng(0)
    ranked = {f"q{u}": [int(i) for i in rng.permutation(30)[:12]] for u in range(50)}
    relevant = {
        f"q{u}": [int(i) for i in rng.choice(35, size=int(rng.integers(1, 6)), replace=False)] for u in range(50)
    }
    module = offline_evaluate("recsys_ranking")
    got = module.compute(predictions=list(ranked.values()), references=list(relevant.values()), k=[5, 10])
    expected = ranx_reference(ranked, relevant, metric_names((5, 10)))
    assert set(got) == set(expected)
    for name, value in got.items():
        assert value == pytest.approx(np.mean([expected[name][q] for q in ranked]), abs=1e-6), name


def test_ranking_module_takes_string_ids_and_coverage(offline_evaluate):
    module = offline_evaluate("recsys_ranking")
    got = module.compute(predictions=[["a", "b"], ["b", "c"]], references=[["b"], ["x"]], k=1, num_items=4)
    assert got["hit_rate@1"] == 0.0 and got["coverage@1"] == pytest.approx(2 / 4)
    got = module.compute(predictions=[["a", "b"]], references=[["b"]], k=2, metrics=["mrr"])
    assert got == {"mrr@2": 0.5}


def test_rating_module_matches_numpy(offline_evaluate):
    rng = np.random.default_rng(1)
    pred, true = rng.normal(3, 1, 100), rng.integers(1, 6, 100).astype(float)
    got = offline_evaluate("recsys_rating").compute(predictions=pred.tolist(), references=true.tolist())
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((pred - true) ** 2)))
    assert got["mae"] == pytest.approx(np.mean(np.abs(pred - true)))


def test_metric_path_lists_and_refuses_unknown_names():
    assert {"recsys_ranking", "recsys_rating"} <= set(list_metrics())
    with pytest.raises(ValueError, match="recsys_ranking"):
        metric_path("accuracy")
