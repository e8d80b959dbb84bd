"""The metric arithmetic against ranx on generated runs, and the small helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_recsys.evaluation import RANKING_METRICS, ranking_metrics_from_hits, ranking_metrics_from_lists, rating_errors
from hf_recsys.evaluation.metrics import check_ks, check_metrics, hits_from_lists

KS = (1, 3, 5, 10, 25)


def generated_run(num_users=150, num_items=60, seed=0):
    """Ranked lists of varied length (some shorter than the largest K) and relevant sets of varied size, some with
    items never ranked by anyone."""
    rng = np.random.default_rng(seed)
    ranked, relevant = {}, {}
    for u in range(num_users):
        length = int(rng.choice([2, 7, 20, 30]))
        ranked[f"q{u}"] = [f"d{i}" for i in rng.permutation(num_items)[:length]]
        n_rel = int(rng.integers(1, 12))
        relevant[f"q{u}"] = [f"d{i}" for i in rng.choice(num_items + 10, size=n_rel, replace=False)]
    return ranked, relevant


@pytest.mark.slow  # over 5 s: kept out of make test-fast (still in make test)
def test_every_ranking_metric_matches_ranx(ranx_reference, metric_names):
    ranked, relevant = generated_run()
    users = list(ranked)
    _, per_user = ranking_metrics_from_lists([ranked[u] for u in users], [relevant[u] for u in users], ks=KS)
    expected = ranx_reference(ranked, relevant, metric_names(KS))
    assert set(per_user) == set(expected)
    for name, values in per_user.items():
        ref = np.array([expected[name][u] for u in users])
        np.testing.assert_allclose(values, ref, rtol=0, atol=1e-6, err_msg=name)


def test_integer_ids_and_mean_summary(ranx_reference, metric_names):
    ranked, relevant = generated_run(num_users=40, seed=3)
    to_int = {u: [int(i[1:]) for i in v] for u, v in ranked.items()}
    rel_int = {u: [int(i[1:]) for i in v] for u, v in relevant.items()}
    summary, _ = ranking_metrics_from_lists(list(to_int.values()), list(rel_int.values()), ks=(5, 10))
    expected = ranx_reference(ranked, relevant, metric_names((5, 10)))
    for name, value in summary.items():
        assert value == pytest.approx(np.mean(list(expected[name].values())), abs=1e-9), name


def test_hits_tensor_path_matches_list_path():
    ranked, relevant = generated_run(num_users=30, seed=1)
    hits, n_rel, _, _ = hits_from_lists(list(ranked.values()), list(relevant.values()))
    from_tensor = ranking_metrics_from_hits(torch.from_numpy(hits), torch.from_numpy(n_rel), (5,), RANKING_METRICS)
    _, from_lists = ranking_metrics_from_lists(list(ranked.values()), list(relevant.values()), ks=5)
    for name in from_lists:
        np.testing.assert_allclose(from_tensor[name].numpy(), from_lists[name])


def test_repeated_prediction_counts_once_and_relevant_sets_dedupe():
    hits, n_rel, _, _ = hits_from_lists([["a", "a", "b"]], [["a", "a", "c"]])
    assert hits.tolist() == [[True, False, False]]
    assert n_rel.tolist() == [2]


def test_coverage_from_lists_counts_distinct_items_in_top_k():
    rng = np.random.default_rng(2)
    preds = [list(rng.permutation(50)[:10]) for _ in range(20)]
    refs = [[0]] * 20
    summary, per_user = ranking_metrics_from_lists(preds, refs, ks=(3, 10), num_items=80)
    for k in (3, 10):
        expected = len({i for p in preds for i in p[:k]}) / 80
        assert summary[f"coverage@{k}"] == pytest.approx(expected)
        assert f"coverage@{k}" not in per_user
    with pytest.raises(ValueError, match="num_items"):
        ranking_metrics_from_lists(preds, refs, ks=3, metrics=["coverage"])


def test_rating_errors_match_numpy():
    rng = np.random.default_rng(0)
    pred, true = rng.normal(3, 1, 500), rng.integers(1, 6, 500).astype(float)
    got = rating_errors(pred, true)
    assert got["rmse"] == pytest.approx(np.sqrt(np.mean((pred - true) ** 2)))
    assert got["mae"] == pytest.approx(np.mean(np.abs(pred - true)))
    with pytest.raises(ValueError, match="same length"):
        rating_errors([1.0], [1.0, 2.0])


def test_bad_names_and_cutoffs_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown ranking metric"):
        check_metrics(["ndcg", "auc"])
    with pytest.raises(ValueError, match="positive integers"):
        check_ks([0, 5])
    assert check_ks([10, 5, 10]) == (5, 10)
