"""evaluate_model: full ranking against an independent numpy + ranx reference, masking, unknown ids, coverage,
RMSE/MAE, the sampled protocol and the result object."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hf_recsys import MostPopularConfig, MostPopularModel
from hf_recsys.data import encode_interactions
from hf_recsys.evaluation import EvaluationResult, evaluate_model

NUM_USERS, NUM_ITEMS = 60, 40


def random_setup(seed=0):
    """A score-table model with continuous random scores, a train log and a test log that includes unknown users
    and unknown items."""
    rng = np.random.default_rng(seed)
    users = [f"u{u}" for u in range(NUM_USERS)]
    items = list(range(100, 100 + NUM_ITEMS))
    scores = rng.normal(size=(NUM_USERS, NUM_ITEMS))
    seen = rng.random((NUM_USERS, NUM_ITEMS)) < 0.3
    test_mask = (rng.random((NUM_USERS, NUM_ITEMS)) < 0.1) & ~seen
    test_mask[np.arange(NUM_USERS), np.argmin(np.where(seen, 1, 0), axis=1)] = True  # every user has a test item
    su, si = np.nonzero(seen)
    tu, ti = np.nonzero(test_mask)
    train = pd.DataFrame({"user_id": [users[u] for u in su], "item_id": [items[i] for i in si]})
    test = pd.DataFrame(
        {"user_id": [users[u] for u in tu], "item_id": [items[i] for i in ti], "rating": rng.integers(1, 6, len(tu))}
    )
    extra = pd.DataFrame(
        {"user_id": ["u3", "u3", "u5", "stranger", "stranger"], "item_id": [999, 998, 999, 100, 101], "rating": 3}
    )
    return scores, users, items, train, pd.concat([test, extra], ignore_index=True)


def reference(scores, users, items, train, test, k):
    """Independent top-K: numpy argsort of the masked table; relevant sets straight from the test log."""
    s = scores.copy()
    pos_u = {u: j for j, u in enumerate(users)}
    pos_i = {i: j for j, i in enumerate(items)}
    s[[pos_u[u] for u in train.user_id], [pos_i[i] for i in train.item_id]] = -np.inf
    known = test[test.user_id.isin(pos_u)]
    ranked, relevant = {}, {}
    for u, grp in known.groupby("user_id"):
        row = s[pos_u[u]]
        order = np.argsort(-row, kind="stable")[:k]
        ranked[u] = [items[j] for j in order if np.isfinite(row[j])]
        relevant[u] = sorted(set(grp.item_id))
    return ranked, relevant


@pytest.mark.slow  # over 5 s (the ranx JIT compile): kept out of make test-fast (still in make test)
def test_full_ranking_matches_numpy_and_ranx(make_table_model, ranx_reference, metric_names):
    scores, users, items, train, test = random_setup()
    model = make_table_model(scores, users, items)
    ks = (1, 5, 10)
    result = evaluate_model(model, train, test, ks=ks, batch_size=7, show_progress=False, keep_topk=True)
    ranked, relevant = reference(scores, users, items, train, test, max(ks))
    assert sorted(result.users.tolist()) == sorted(ranked)
    for u, row in zip(result.users, result.topk_items):
        assert row.tolist() == ranked[u]
    expected = ranx_reference(ranked, relevant, metric_names(ks))
    for name, values in expected.items():
        ref = np.array([values[u] for u in result.users])
        np.testing.assert_allclose(result.per_user[name], ref, rtol=0, atol=1e-6, err_msg=name)
        assert result.summary[name] == pytest.approx(ref.mean(), abs=1e-9)
    for k in ks:
        covered = {i for r in ranked.values() for i in r[:k]}
        assert result.summary[f"coverage@{k}"] == pytest.approx(len(covered) / NUM_ITEMS)


def test_batch_size_and_encoded_inputs_give_the_same_numbers(make_table_model):
    scores, users, items, train, test = random_setup(seed=1)
    model = make_table_model(scores, users, items)
    a = evaluate_model(model, train, test, ks=(5,), batch_size=1, show_progress=False)
    b = evaluate_model(model, train, test, ks=(5,), batch_size=4096, show_progress=False)
    known_test = test[test.user_id.isin(users)]
    enc_train = encode_interactions(train, model.user_vocab, model.item_vocab)
    enc_test = encode_interactions(known_test, model.user_vocab, model.item_vocab, unknown_items="mask")
    c = evaluate_model(model, enc_train, enc_test, ks=(5,), show_progress=False)
    for other in (b, c):
        assert other.summary.keys() == a.summary.keys()
        for name in a.per_user:
            np.testing.assert_allclose(other.per_user[name], a.per_user[name], err_msg=name)


def test_datasets_inputs_give_the_same_numbers_as_dataframes(make_table_model):
    import datasets

    scores, users, items, train, test = random_setup(seed=5)
    model = make_table_model(scores, users, items)
    a = evaluate_model(model, train, test, ks=(5,), rating_metrics=True, show_progress=False)
    b = evaluate_model(
        model,
        datasets.Dataset.from_pandas(train, preserve_index=False),
        datasets.Dataset.from_pandas(test, preserve_index=False),
        ks=(5,),
        rating_metrics=True,
        show_progress=False,
    )
    assert b.summary == a.summary and b.users.tolist() == a.users.tolist()
    assert b.skipped_users.tolist() == a.skipped_users.tolist() == ["stranger"]


def test_seen_items_are_masked(make_table_model):
    # every user's training items score highest and the test item next: masked -> the test item ranks first
    users, items = ["a", "b"], [1, 2, 3, 4]
    scores = np.array([[9.0, 8.0, 7.0, 0.0], [0.0, 9.0, 8.0, 7.0]])
    train = pd.DataFrame({"user_id": ["a", "a", "b", "b"], "item_id": [1, 2, 2, 3]})
    test = pd.DataFrame({"user_id": ["a", "b"], "item_id": [3, 4]})
    model = make_table_model(scores, users, items)
    masked = evaluate_model(model, train, test, ks=(1, 2), show_progress=False, keep_topk=True)
    assert masked.summary["hit_rate@1"] == 1.0
    assert masked.topk_items.tolist() == [[3, 4], [4, 1]]
    unmasked = evaluate_model(model, train, test, ks=(1, 2), exclude_seen=False, show_progress=False)
    assert unmasked.summary["hit_rate@2"] == 0.0
    assert "not masked" in unmasked.protocol and "masked" in masked.protocol
    # train=None masks the model's stored training items
    model.seen_items = encode_interactions(train, model.user_vocab, model.item_vocab).to_csr()
    stored = evaluate_model(model, None, test, ks=(1,), show_progress=False)
    assert stored.summary["hit_rate@1"] == 1.0


def test_a_test_item_also_seen_in_train_is_masked_and_counted(make_table_model):
    model = make_table_model(np.array([[3.0, 2.0, 1.0]]), ["a"], [1, 2, 3])
    train = pd.DataFrame({"user_id": ["a"], "item_id": [1]})
    test = pd.DataFrame({"user_id": ["a", "a"], "item_id": [1, 2]})
    r = evaluate_model(model, train, test, ks=(2,), show_progress=False)
    assert r.metadata["num_masked_relevant_pairs"] == 1
    assert r.per_user["recall@2"].tolist() == [0.5]


def test_unknown_users_are_skipped_and_unknown_items_stay_relevant(make_table_model, caplog):
    users, items = ["a", "b", "c"], [1, 2, 3]
    scores = np.array([[3.0, 2.0, 1.0]] * 3)
    test = pd.DataFrame(
        {"user_id": ["a", "a", "b", "c", "c", "zz", "zz"], "item_id": [1, 77, 88, 1, 1, 1, 2]}
    )  # a: one hit + one unknown item; b: only an unknown item; c: a duplicated row
    model = make_table_model(scores, users, items)
    with caplog.at_level("WARNING"):
        r = evaluate_model(model, None, test, ks=(3,), exclude_seen=False, show_progress=False)
    assert r.skipped_users.tolist() == ["zz"] and r.num_skipped == 1 and r.num_users == 3
    assert "Skipped 1 test users" in caplog.text and "unknown to the model" in caplog.text
    assert r.users.tolist() == users
    assert r.per_user["recall@3"].tolist() == [0.5, 0.0, 1.0]
    assert r.per_user["precision@3"].tolist() == pytest.approx([1 / 3, 0.0, 1 / 3])
    assert r.metadata["num_unknown_item_pairs"] == 2


def test_coverage_of_most_popular_is_k_over_catalogue():
    from hf_recsys.testing_utils import tiny_log

    log = tiny_log()
    model = MostPopularModel(MostPopularConfig()).fit(log, show_progress=False)
    r = evaluate_model(model, log, log, ks=(3, 5), exclude_seen=False, show_progress=False)
    n_items = len(model.item_vocab)
    assert r.summary["coverage@3"] == pytest.approx(3 / n_items)
    assert r.summary["coverage@5"] == pytest.approx(5 / n_items)
    masked = evaluate_model(model, log, log, ks=(5,), show_progress=False)
    assert masked.summary["coverage@5"] > 5 / n_items  # masking diversifies the lists


def test_rmse_mae_match_numpy(make_table_model):
    scores, users, items, train, test = random_setup(seed=2)
    scores = 1 + 4 * (scores - scores.min()) / (scores.max() - scores.min())
    model = make_table_model(scores, users, items)
    r = evaluate_model(model, train, test, ks=(5,), rating_metrics=True, show_progress=False)
    rated = test[test.user_id.isin(users) & test.item_id.isin(items)]
    pred = scores[[users.index(u) for u in rated.user_id], [items.index(i) for i in rated.item_id]]
    err = pred - rated.rating.to_numpy(float)
    assert r.summary["rmse"] == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-6)
    assert r.summary["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-6)
    per_user = pd.Series(err**2).groupby(rated.user_id.to_numpy()).mean() ** 0.5
    np.testing.assert_allclose(r.per_user["rmse"], per_user.loc[r.users].to_numpy(), rtol=1e-6)
    low, high = r.confidence_interval("rmse")
    assert low < r.summary["rmse"] < high
    with pytest.raises(ValueError, match="rating"):
        evaluate_model(model, train, test.drop(columns="rating"), rating_metrics=True, show_progress=False)


def test_sampled_mode_is_labelled_everywhere_and_ranks_only_candidates(make_table_model):
    scores, users, items, train, test = random_setup(seed=3)
    model = make_table_model(scores, users, items)
    r = evaluate_model(model, train, test, ks=(5, 20), sampled_negatives=5, show_progress=False, keep_topk=True)
    assert r.is_sampled and r.protocol.startswith("SAMPLED")
    assert all(k.endswith("_sampled5") for k in r.summary) and all(k.endswith("_sampled5") for k in r.per_user)
    assert "SAMPLED" in r.to_markdown() and "ndcg@5_sampled5" in r.to_markdown()
    d = r.to_dict()
    assert d["sampled_negatives"] == 5 and "SAMPLED" in d["protocol"]
    assert all(k.endswith("_sampled5") for k in d["summary"])
    # candidates = the known relevant items + 5 negatives: K=20 reaches all of them, so every known item is hit
    seen = set(zip(train.user_id, train.item_id))
    for u, row in zip(r.users, r.topk_items):
        rel = set(test.item_id[(test.user_id == u) & test.item_id.isin(items)])
        got = [i for i in row if i is not None]
        assert rel <= set(got) and len(got) == len(rel) + 5
        assert not seen & {(u, i) for i in got}
    known_share = r.per_user["recall@20_sampled5"]
    assert np.all((known_share > 0) | (r.users == "u5"))  # u5's only extra test item is unknown
    again = evaluate_model(model, train, test, ks=(5,), sampled_negatives=5, show_progress=False)
    assert again.summary["ndcg@5_sampled5"] == r.summary["ndcg@5_sampled5"]  # seeded


def test_result_serialises_and_bootstraps(make_table_model):
    scores, users, items, train, test = random_setup(seed=4)
    r = evaluate_model(make_table_model(scores, users, items), train, test, ks=(10,), show_progress=False)
    assert isinstance(r, EvaluationResult)
    json.dumps(r.to_dict(per_user=True))
    low, high = r.confidence_interval("ndcg@10", n_boot=500)
    assert low <= r.summary["ndcg@10"] <= high
    with pytest.raises(KeyError, match="catalogue-level"):
        r.confidence_interval("coverage@10")
    md = r.to_markdown(confidence=True)
    assert "full-ranking over all 40 items" in md and "| ndcg@10 |" in md


def test_bad_inputs_are_clear_errors(make_table_model):
    scores, users, items, train, test = random_setup()
    model = make_table_model(scores, users, items)
    with pytest.raises(ValueError, match="Unknown ranking metric"):
        evaluate_model(model, train, test, metrics=["auc"], show_progress=False)
    with pytest.raises(ValueError, match="sampled_negatives"):
        evaluate_model(model, train, test, sampled_negatives=0, show_progress=False)
    other = make_table_model(np.zeros((2, 3)), ["x", "y"], [1, 2, 3])
    enc = encode_interactions(pd.DataFrame({"user_id": ["x"], "item_id": [1]}), other.user_vocab, other.item_vocab)
    with pytest.raises(ValueError, match="model's vocabularies"):
        evaluate_model(model, enc, test, show_progress=False)
    with pytest.raises(ValueError, match="'user_id' and 'item_id'"):
        evaluate_model(model, train, test.rename(columns={"item_id": "movie"}), show_progress=False)


@pytest.mark.slow  # over 5 s: kept out of make test-fast (still in make test)
def test_k_beyond_the_catalogue_and_filler_match_ranx(make_table_model, ranx_reference, metric_names):
    model = make_table_model(np.random.default_rng(0).random((3, 4)), ["a", "b", "c"], [1, 2, 3, 4])
    train = pd.DataFrame({"user_id": ["a"], "item_id": [2]})
    test = pd.DataFrame({"user_id": ["a", "b", "b"], "item_id": [1, 9, 3]})
    r = evaluate_model(model, train, test, ks=(2, 10), keep_topk=True, show_progress=False)
    assert r.topk_items.shape == (2, 4) and r.topk_items[0, -1] is None  # user a has 3 rankable items
    ranked = {u: [i for i in row if i is not None] for u, row in zip(r.users, r.topk_items)}
    expected = ranx_reference(ranked, {"a": [1], "b": [9, 3]}, metric_names((2, 10)))
    for name, values in expected.items():
        np.testing.assert_allclose(r.per_user[name], [values[u] for u in r.users], atol=1e-9, err_msg=name)


def test_no_evaluable_user_gives_nan_not_an_error(make_table_model):
    model = make_table_model(np.zeros((1, 2)), ["a"], [1, 2])
    r = evaluate_model(model, None, pd.DataFrame({"user_id": ["zz"], "item_id": [1]}), show_progress=False)
    assert r.num_users == 0 and r.num_skipped == 1 and np.isnan(r.summary["ndcg@10"])
