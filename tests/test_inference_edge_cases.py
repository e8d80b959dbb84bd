"""Edge cases of the id-space API (issues 15.10, 15.11, 16.4, 16.5): single ids, k, batch sizes, duplicate
candidates, empty and partly unknown histories, and score() in bounded batches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch

from hf_recsys import MostPopularConfig, MostPopularModel, RecConfig, RecPreTrainedModel, UnknownIdError


class CoocConfig(RecConfig):
    model_type = "test_cooc"


class CoocModel(RecPreTrainedModel):
    """Item-item co-occurrence: a history model whose answer depends on the history (unlike MostPopular)."""

    config_class = CoocConfig
    supports_history = True
    trainable = False

    def __init__(self, config):
        super().__init__(config)
        self.dummy = torch.nn.Parameter(torch.zeros(1), requires_grad=False)
        self.batches: list[int] = []
        self.post_init()

    def _fit(self, interactions, **kwargs):
        x = interactions.to_csr("binary")
        self.cooc = torch.as_tensor((x.T @ x).toarray(), dtype=torch.float32)

    def score_users(self, user_idx):
        self.batches.append(len(user_idx))
        return torch.as_tensor(self.seen_items[user_idx.numpy()].toarray()) @ self.cooc

    def score_histories(self, histories: sp.csr_matrix):
        return torch.as_tensor(histories.toarray()) @ self.cooc

    def item_similarity(self, item_idx):
        return self.cooc[item_idx]


@pytest.fixture
def log():
    return pd.DataFrame(
        {
            "user_id": ["cust-0001", "cust-0001", "cust-0002", "cust-0003", "cust-0003", "cust-0003", "cust-0004"],
            "item_id": [1, 2, 2, 3, 2, 1, 4],
        }
    )


@pytest.fixture
def cooc(log):
    return CoocModel(CoocConfig()).fit(log)


@pytest.fixture
def popular(log):
    return MostPopularModel(MostPopularConfig()).fit(log)


# ---------------------------------------------------------------------------------------- 16.4: a single id
def test_a_single_string_id_is_one_user(cooc):
    ids, scores = cooc.recommend("cust-0001", k=2)  # was split into 'c', 'u', 's', ...
    assert ids.shape == (1, 2)
    np.testing.assert_array_equal(ids, cooc.recommend(["cust-0001"], k=2)[0])
    assert cooc.score("cust-0002", [1, 3]).shape == (1, 2)


def test_a_single_int_id_is_one_user_and_one_item():
    log = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [10, 11, 11, 12]})
    model = CoocModel(CoocConfig()).fit(log)
    assert model.recommend(1, k=1)[0].shape == (1, 1)  # was: 'int' object is not iterable
    assert model.recommend(np.int64(2), k=1)[0].shape == (1, 1)
    assert model.similar_items(10, k=1)[0].tolist() == [[11]]
    assert model.score_pairs(1, 10).shape == (1,)


def test_k_below_one_is_refused_by_recommend_and_similar_items_alike(cooc):
    for call in (lambda: cooc.recommend(["cust-0001"], k=0), lambda: cooc.similar_items([1], k=0)):
        with pytest.raises(ValueError, match="k >= 1"):
            call()


# ---------------------------------------------------------------------------------------- 15.10
@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_a_batch_size_below_one_is_refused(cooc, batch_size):
    for call in (cooc.recommend, cooc.score):
        with pytest.raises(ValueError, match="batch_size"):
            call(["cust-0001"], **({"k": 1} if call == cooc.recommend else {"items": [1]}), batch_size=batch_size)


def test_duplicate_candidates_are_refused_by_name(cooc):
    with pytest.raises(ValueError, match=r"more than once: 2\b"):
        cooc.recommend(["cust-0002"], k=3, items=[2, 3, 2], exclude_seen=False)


def test_an_empty_history_is_refused_unless_the_model_answers_without_one(cooc, popular):
    with pytest.raises(ValueError, match="empty item history: 'new'"):
        cooc.recommend(["new"], k=2, histories={"new": []})
    ids, scores = popular.recommend(["new"], k=2, histories={"new": []})  # MostPopular: the popular items
    assert ids.tolist() == [[2, 1]] and np.isfinite(scores).all()


# ---------------------------------------------------------------------------------------- 16.5: unknown items
def test_unknown_history_items_raise_by_default_and_can_be_ignored(cooc):
    with pytest.raises(UnknownIdError, match="1 unknown item id"):
        cooc.recommend(["new"], k=2, histories={"new": [3, 999]})
    recs = cooc.recommend(["new", "cust-0001"], k=2, histories={"new": [3, 999, 998]}, ignore_unknown_items=True)
    ids, scores = recs  # still unpacks as a pair
    assert recs.ignored_items == {"new": [999, 998]} and recs.num_ignored_items == 2
    expected = cooc.recommend(["new"], k=2, histories={"new": [3]})[0]
    np.testing.assert_array_equal(ids[:1], expected)  # the same as if only the known item had been given


def test_the_answer_pickles_and_copies(cooc):
    import copy
    import pickle

    recs = cooc.recommend(["new"], k=2, histories={"new": [3, 999]}, ignore_unknown_items=True)
    for again in (pickle.loads(pickle.dumps(recs)), copy.deepcopy(recs)):
        np.testing.assert_array_equal(again.item_ids, recs.item_ids)
        assert again.ignored_items == {"new": [999]} and len(again) == 2


def test_a_history_of_only_unknown_items_says_so(cooc):
    with pytest.raises(ValueError, match="after dropping their unknown items"):
        cooc.recommend(["new"], k=2, histories={"new": [998, 999]}, ignore_unknown_items=True)


# ---------------------------------------------------------------------------------------- 15.11: score batched
def test_score_calls_the_model_in_bounded_batches(cooc):
    users = ["cust-0001", "cust-0002", "cust-0003", "cust-0004"] * 5
    full = cooc.score(users, [1, 2, 3, 4], batch_size=len(users))
    cooc.batches.clear()
    batched = cooc.score(users, [1, 2, 3, 4], batch_size=3)
    assert cooc.batches and max(cooc.batches) <= 3 and sum(cooc.batches) == len(users)
    np.testing.assert_array_equal(batched, full)
