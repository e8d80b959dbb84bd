"""The recommend contract in detail, on the core MostPopular model and a tiny factor model."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from hf_recsys import (
    AutoModelForRecommendation,
    MostPopularConfig,
    MostPopularModel,
    NotFittedError,
    RecConfig,
    RecPreTrainedModel,
    UnknownIdError,
    register_model,
)
from hf_recsys.data import IdVocab


@pytest.fixture
def log():
    return pd.DataFrame(
        {"user_id": ["a", "a", "b", "c", "c", "c"], "item_id": [1, 2, 2, 3, 2, 1], "timestamp": [1, 2, 3, 4, 5, 6]}
    )


@pytest.fixture
def model(log):
    return MostPopularModel(MostPopularConfig()).fit(log)


def test_fit_sizes_config_from_vocab(model):
    assert (model.config.num_users, model.config.num_items) == (3, 3)
    assert model.user_vocab.ids.tolist() == ["a", "b", "c"]
    assert model.seen_items.shape == (3, 3) and model.seen_items.nnz == 6


def test_exclude_seen_and_filler(model):
    ids, scores = model.recommend(["a", "b"], k=3)
    assert ids[0, 0] == 3 and scores[0, 0] == 1  # 'a' saw 1 and 2: only item 3 is eligible
    assert np.isneginf(scores[0, 1:]).all(), "filler beyond the eligible items is marked -inf"
    ids, scores = model.recommend(["a"], k=2, exclude_seen=False)
    assert ids.tolist() == [[2, 1]] and scores.tolist() == [[3.0, 2.0]]


def test_k_is_capped_and_must_be_positive(model):
    assert model.recommend(["a"], k=50, exclude_seen=False)[0].shape == (1, 3)
    with pytest.raises(ValueError, match="k >= 1"):
        model.recommend(["a"], k=0)


def test_candidate_items(model):
    ids, _ = model.recommend(["b"], k=5, items=[1, 3])
    assert ids.tolist() == [[1, 3]]
    with pytest.raises(UnknownIdError, match="99"):
        model.recommend(["b"], items=[1, 99])


def test_histories_as_dict_and_list(model):
    ids, _ = model.recommend(["new", "a"], k=1, histories={"new": [2]})
    assert ids.tolist() == [[1], [3]]  # 'a' has no entry: scored from training, its seen items masked
    ids, _ = model.recommend(["x", "y"], k=1, histories=[[2, 1], []])
    assert ids.tolist() == [[3], [2]]
    with pytest.raises(ValueError, match="2 users"):
        model.recommend(["x", "y"], histories=[[1]])
    with pytest.raises(UnknownIdError, match="'zz'"):
        model.recommend(["zz"], histories={"other": [1]})
    with pytest.raises(UnknownIdError, match="item"):
        model.recommend(["x"], histories=[[12345]])


def test_unknown_user_error_names_id_and_fix(model):
    with pytest.raises(UnknownIdError) as exc:
        model.recommend(["nobody", "a"])
    assert "nobody" in str(exc.value) and "histories=" in str(exc.value)


def test_wrong_id_type_is_explained(model):
    with pytest.raises(TypeError, match="string"):
        model.recommend([1])


def test_unfitted_model_says_so():
    with pytest.raises(NotFittedError, match="fit"):
        MostPopularModel(MostPopularConfig()).recommend(["a"])


def test_empty_log_is_refused():
    with pytest.raises(ValueError, match="empty"):
        MostPopularModel(MostPopularConfig()).fit(pd.DataFrame({"user_id": [], "item_id": []}))


def test_fit_with_given_vocab_keeps_indices(log):
    users = IdVocab(["c", "b", "a", "d"], "user")
    items = IdVocab([3, 2, 1, 4], "item")
    m = MostPopularModel(MostPopularConfig()).fit(log, user_vocab=users, item_vocab=items)
    assert m.config.num_users == 4 and m.item_scores.tolist() == [1.0, 3.0, 2.0, 0.0]
    assert m.recommend(["d"], k=1)[0].tolist() == [[2]]


def test_inconsistent_checkpoint_is_refused(model, tmp_path):
    model.save_pretrained(tmp_path)
    with open(tmp_path / "id_vocab.json") as f:
        payload = json.load(f)
    payload["items"]["ids"].append(77)
    with open(tmp_path / "id_vocab.json", "w") as f:
        json.dump(payload, f)
    with pytest.raises(ValueError, match="id_vocab.json"):
        AutoModelForRecommendation.from_pretrained(tmp_path)


def test_truncated_files_are_refused(model, tmp_path):
    model.save_pretrained(tmp_path)
    path = tmp_path / "id_vocab.json"
    path.write_text(path.read_text()[:20])
    with pytest.raises(ValueError, match="id_vocab.json"):
        AutoModelForRecommendation.from_pretrained(tmp_path)
    model.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(Exception):  # noqa: B017 - safetensors/transformers raise their own error types
        AutoModelForRecommendation.from_pretrained(tmp_path)


def test_saved_files_are_safe_formats(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert sorted(os.listdir(tmp_path)) == [
        "config.json",
        "id_vocab.json",
        "model.safetensors",
        "seen_items.safetensors",
    ]


class _DotConfig(RecConfig):
    model_type = "test_dot_product"


class _DotModel(RecPreTrainedModel):
    """A minimal factor model: exercises score_pairs_idx's default and similar_items."""

    config_class = _DotConfig

    def __init__(self, config):
        super().__init__(config)
        g = torch.Generator().manual_seed(0)
        self.users = nn.Parameter(torch.randn(config.num_users, 4, generator=g))
        self.items = nn.Parameter(torch.randn(config.num_items, 4, generator=g))
        self.post_init()

    def score_users(self, user_idx):
        return self.users[user_idx] @ self.items.T

    def item_similarity(self, item_idx):
        return self.items[item_idx] @ self.items.T


def test_score_pairs_default_and_similar_items():
    register_model("test_dot_product", _DotConfig, _DotModel)
    m = _DotModel(_DotConfig(num_users=1500, num_items=7))
    m.set_vocabs(IdVocab(np.arange(1500) * 2, "user"), IdVocab(list("abcdefg"), "item"))
    users = np.array([0, 2998, 4, 0])
    items = ["a", "g", "c", "b"]
    full = (m.users @ m.items.T).detach().numpy()
    expected = full[users // 2, [0, 6, 2, 1]]
    np.testing.assert_allclose(m.score_pairs(users, items), expected, rtol=1e-6)
    np.testing.assert_allclose(m.score(users[:2], items), full[[0, 1499]][:, [0, 6, 2, 1]], rtol=1e-6)
    ids, sims = m.similar_items(["a"], k=6)
    assert "a" not in ids[0] and sorted(ids[0].tolist()) == list("bcdefg")
    assert np.all(np.diff(sims[0]) <= 0)
    with pytest.raises(ValueError, match="as many"):
        m.score_pairs([0], ["a", "b"])
