"""Saving a fusion: members in sub-folders (each loadable alone), no weight stored twice, clear member errors."""

import json
import os

import numpy as np
import pytest
import torch
from fusion_test_utils import fixed_members
from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import encode_interactions
from hf_recsys.serialization import MANIFEST_KEY, IncompleteCheckpointError
from hf_recsys.testing_utils import tiny_log
from safetensors import safe_open

from hf_recsys_fusion import MemberLoadError, RankFusion, WeightedFusion


@pytest.fixture(scope="module")
def fusion():
    return WeightedFusion.from_members(fixed_members(tiny_log()), weights=[1.0, 0.5, 2.0], normalization="zscore")


def test_union_vocabulary_keeps_first_member_order(fusion):
    first = fusion.members["m0"].item_vocab.ids.tolist()
    assert fusion.item_vocab.ids.tolist()[: len(first)] == first
    union = set().union(*(m.item_vocab.ids.tolist() for m in fusion.members.values()))
    assert set(fusion.item_vocab.ids.tolist()) == union and len(fusion.item_vocab) == len(union)


def test_save_load_identical_and_members_stand_alone(fusion, tmp_path):
    users = fusion.user_vocab.ids[:6].tolist()
    expected = fusion.recommend(users, k=5)
    fusion.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert list(f.keys()) == ["fusion_weights"], "member weights must not be stored in the fusion's file"
    loaded = AutoModelForRecommendation.from_pretrained(tmp_path)
    assert type(loaded) is WeightedFusion and loaded.config.normalization == "zscore"
    np.testing.assert_array_equal(loaded.fusion_weights.numpy(), [1.0, 0.5, 2.0])
    got = loaded.recommend(users, k=5)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)
    for name, m in fusion.members.items():
        alone = AutoModelForRecommendation.from_pretrained(tmp_path / "members" / name)
        assert alone.item_vocab == m.item_vocab
        np.testing.assert_array_equal(alone.table.numpy(), m.table.numpy())
    assert [p for p, _ in loaded.named_parameters()] == ["fusion_weights"]


def test_member_that_fails_to_load_is_named(fusion, tmp_path):
    fusion.save_pretrained(tmp_path)
    os.remove(tmp_path / "members" / "m1" / "model.safetensors")
    # the fusion's manifest covers the members' files: the damage is found before anything is loaded
    with pytest.raises(IncompleteCheckpointError, match="missing: members/m1/model.safetensors"):
        AutoModelForRecommendation.from_pretrained(tmp_path)
    top = tmp_path / "config.json"
    top.write_text(json.dumps({k: v for k, v in json.loads(top.read_text()).items() if k != MANIFEST_KEY}))
    with pytest.raises(MemberLoadError, match="'m1'.*test_fixed_scores"):  # a save without a top-level manifest
        AutoModelForRecommendation.from_pretrained(tmp_path)
    cfg = tmp_path / "members" / "m2" / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "model_type": "no_such_model"}))
    with pytest.raises(MemberLoadError, match="'m1'|'m2'"):
        AutoModelForRecommendation.from_pretrained(tmp_path)


def test_weighted_scores_match_a_numpy_reference(fusion):
    """min-max / z-score per user over unseen items the member knows; unknown or seen items get the lowest value."""
    u = 3
    got = fusion.score_users(torch.tensor([u]))[0].numpy()
    seen = set(fusion.seen_items[u].indices.tolist())
    want = np.zeros(len(fusion.item_vocab))
    for w, (name, m) in zip([1.0, 0.5, 2.0], fusion.members.items()):
        raw = m.table[fusion.alignment(name)[0][u]].numpy().astype(np.float64)
        pos = m.item_vocab.encode(fusion.item_vocab.ids, unknown="mask")
        col = np.full(len(pos), np.nan)
        col[pos >= 0] = raw[pos[pos >= 0]]
        elig = ~np.isnan(col) & ~np.isin(np.arange(len(col)), list(seen))
        z = (col - col[elig].mean()) / col[elig].std()
        want += w * np.where(elig, z, z[elig].min())
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_tune_weights_prefers_the_informative_member():
    """One member knows the validation items (an oracle), the others are noise: tuning must weight the oracle."""
    log = tiny_log()
    members = fixed_members(log, item_fracs=(1.0, 1.0, 1.0))
    val = log.groupby("user_id").tail(2)
    train = log.drop(val.index)
    oracle = members["m1"]
    oracle.table.data.zero_()
    u = oracle.user_vocab.encode(val["user_id"].to_numpy())
    i = oracle.item_vocab.encode(val["item_id"].to_numpy())
    oracle.table.data[torch.as_tensor(u), torch.as_tensor(i)] = 10.0
    fusion = WeightedFusion.from_members(members, weight_grid=[0.0, 1.0, 4.0])
    fusion.seen_items = encode_interactions(train, fusion.user_vocab, fusion.item_vocab).to_csr("binary")
    before = fusion.validation_metric(fusion.validation_cache(val, show_progress=False), "ndcg@2")
    out = fusion.tune(val, metric="ndcg@2", show_progress=False)
    assert out["ndcg@2"] == pytest.approx(1.0) and before < 1.0
    w = out["weights"]
    assert w["m1"] > max(w["m0"], w["m2"])
    after = fusion.validation_metric(fusion.validation_cache(val, show_progress=False), "ndcg@2")
    assert after == pytest.approx(out["ndcg@2"]), "the tuning shortcut must agree with fuse()"


def test_members_of_another_id_type_are_refused():
    log = tiny_log()
    members = fixed_members(log, item_fracs=(1.0,))
    other = log.assign(item_id=log["item_id"].astype(str))
    members["str"] = type(members["m0"])(members["m0"].config.__class__(seed=5)).fit(other, show_progress=False)
    with pytest.raises(TypeError, match="'str'"):
        RankFusion.from_members(members)
