"""Real runs over ml-latest-small: every per-user metric of the evaluator against ranx to 1e-6."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hf_recsys import MostPopularConfig, MostPopularModel
from hf_recsys.evaluation import evaluate_model

KS = (1, 5, 10, 20)


def leave_last_n_out(ml_folder, n_test=5):
    """Each user's last ``n_test`` ratings by time form the test set (ties broken by item id), the rest train."""
    ratings = pd.read_csv(ml_folder / "ratings.csv").rename(columns={"userId": "user_id", "movieId": "item_id"})
    ratings = ratings.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    test = ratings.groupby("user_id").tail(n_test)
    return ratings.drop(test.index), test


def masked_matrix(model, scores, train):
    s = scores.astype(np.float64).copy()
    u = model.user_vocab.encode(train.user_id.to_numpy())
    i = model.item_vocab.encode(train.item_id.to_numpy())
    s[u, i] = -np.inf
    return s


def assert_matches_ranx(result, ranked, relevant, ranx_reference, metric_names):
    expected = ranx_reference(ranked, relevant, metric_names(KS))
    for name, values in expected.items():
        ref = np.array([values[str(u)] for u in result.users])
        np.testing.assert_allclose(result.per_user[name], ref, rtol=0, atol=1e-6, err_msg=name)
        assert result.summary[name] == pytest.approx(ref.mean(), abs=1e-9)


@pytest.mark.slow
def test_most_popular_on_movielens_matches_ranx(ml_latest_small, ranx_reference, metric_names):
    train, test = leave_last_n_out(ml_latest_small)
    model = MostPopularModel(MostPopularConfig()).fit(train, show_progress=False)
    result = evaluate_model(model, train, test, ks=KS, keep_topk=True, show_progress=False)
    assert result.num_users == test.user_id.nunique() and result.num_skipped == 0
    assert result.metadata["num_unknown_item_pairs"] > 0  # items first rated in a user's last ratings exist
    # MostPopular ties a lot: check the top-K score values against numpy, then feed ranx the evaluator's own order
    s = masked_matrix(model, model.item_scores.numpy()[None, :].repeat(len(model.user_vocab), 0), train)
    rows = s[model.user_vocab.encode(result.users)]
    top_values = -np.sort(-rows, axis=1)[:, : max(KS)]
    got_values = rows[
        np.arange(len(rows))[:, None], model.item_vocab.encode(result.topk_items.ravel()).reshape(rows.shape[0], -1)
    ]
    np.testing.assert_array_equal(got_values, top_values)
    ranked = {str(u): list(row) for u, row in zip(result.users, result.topk_items)}
    relevant = {str(u): g.tolist() for u, g in test.groupby("user_id").item_id}
    assert_matches_ranx(result, ranked, relevant, ranx_reference, metric_names)
    for k in KS:
        covered = {i for row in result.topk_items for i in row[:k]}
        assert result.summary[f"coverage@{k}"] == pytest.approx(len(covered) / len(model.item_vocab))


@pytest.mark.slow
def test_random_scores_on_movielens_match_ranx(ml_latest_small, make_table_model, ranx_reference, metric_names):
    train, test = leave_last_n_out(ml_latest_small)
    pop = MostPopularModel(MostPopularConfig()).fit(train, show_progress=False)  # only for the vocabularies
    users, items = pop.user_vocab.ids, pop.item_vocab.ids
    scores = np.random.default_rng(0).random((len(users), len(items)), dtype=np.float32)
    model = make_table_model(scores, users, items)
    result = evaluate_model(model, train, test, ks=KS, batch_size=256, show_progress=False)
    # independent ranking: numpy argsort of the masked score table
    s = masked_matrix(model, scores, train)
    order = np.argsort(-s, axis=1, kind="stable")[:, : max(KS)]
    ranked = {str(u): [items[j] for j in order[r] if np.isfinite(s[r, j])] for r, u in enumerate(users)}
    relevant = {str(u): g.tolist() for u, g in test.groupby("user_id").item_id}
    ranked = {u: ranked[u] for u in relevant}
    assert_matches_ranx(result, ranked, relevant, ranx_reference, metric_names)


@pytest.mark.slow
def test_data_layer_leave_last_out_datasets_match_ranx(ml_latest_small, ranx_reference, metric_names):
    from hf_recsys.data import leave_last_out, load_movielens

    log, _ = load_movielens(ml_latest_small)
    splits = leave_last_out(log, n_test=3)
    train, test = splits["train"], splits["test"]
    model = MostPopularModel(MostPopularConfig()).fit(train, show_progress=False)
    result = evaluate_model(model, train, test, ks=KS, keep_topk=True, show_progress=False)
    same = evaluate_model(model, train.to_pandas(), test.to_pandas(), ks=KS, show_progress=False)
    for name, values in result.per_user.items():
        np.testing.assert_array_equal(same.per_user[name], values, err_msg=name)
    test_df = test.to_pandas()
    relevant = {str(u): g.tolist() for u, g in test_df.groupby("user_id").item_id}
    ranked = {str(u): list(row) for u, row in zip(result.users, result.topk_items)}
    assert set(ranked) == set(relevant)
    assert_matches_ranx(result, ranked, relevant, ranx_reference, metric_names)
