"""SwitchingFusion routes cold users and cold items to the fallback; StackingFusion learns from validation."""

import numpy as np
import pytest
import torch
from fusion_test_utils import content_features
from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import temporal_user_split
from hf_recsys.testing_utils import tiny_log

from hf_recsys_fusion import ItemContentConfig, ItemContentModel, StackingFusion, SwitchingFusion


@pytest.fixture(scope="module")
def members():
    log = tiny_log()
    ids, feats = content_features(log)  # item 99999 has features but no interaction: a cold item
    ease = AutoModelForRecommendation.for_model("ease", l2=10.0).fit(log, show_progress=False)
    content = ItemContentModel(ItemContentConfig()).fit(log, item_ids=ids, item_features=feats, show_progress=False)
    return log, ease, content


def test_content_member_knows_cold_items(members):
    _, ease, content = members
    assert 99_999 in content.item_vocab and 99_999 not in ease.item_vocab


def test_cold_items_get_the_weighted_fallback_score(members):
    log, ease, content = members
    user = log["user_id"].iloc[0]
    unseen = [i for i in content.item_vocab.ids.tolist() if i not in set(log.loc[log.user_id == user, "item_id"])]
    raw = content.score([user], unseen)[0].astype(np.float64)
    minmax = (raw - raw.min()) / (raw.max() - raw.min())
    want = minmax[unseen.index(99_999)]
    assert want > 0
    for w in (0.0, 0.3, 1.0):
        fusion = SwitchingFusion.from_members({"cf": ease, "content": content}, cold_item_weight=w)
        assert fusion.score([user], [99_999])[0, 0] == pytest.approx(w * want, abs=1e-6)
        warm = fusion.score([user], [i for i in unseen if i != 99_999])[0]
        assert warm.min() == pytest.approx(0.0) and warm.max() == pytest.approx(1.0)


def test_cold_users_get_the_fallback_ranking(members):
    _, ease, content = members
    fusion = SwitchingFusion.from_members({"cf": ease, "content": content}, min_user_interactions=3)
    hist = {"new": [7, 27]}  # two items: a cold user, served by the content member alone
    ids, _ = fusion.recommend(["new"], k=5, histories=hist)
    want, _ = content.recommend(["new"], k=5, histories=hist)
    np.testing.assert_array_equal(ids, want)


def test_switching_tune_picks_a_weight_on_a_grid(members):
    log, ease, content = members
    split = temporal_user_split(log, test_ratio=0.25)
    fusion = SwitchingFusion.from_members({"cf": ease, "content": content})
    ids, feats = content_features(log)
    fusion.fit(
        split["train"].to_pandas(),
        show_progress=False,
        member_fit_kwargs={"content": {"item_ids": ids, "item_features": feats}},
    )
    out = fusion.tune(split["test"].to_pandas(), metric="recall@5", grid=(0.0, 0.5, 1.0), show_progress=False)
    assert out["cold_item_weight"] in (0.0, 0.5, 1.0)
    assert out["recall@5"] == max(out["all"].values())


def test_stacking_learns_and_roundtrips(tmp_path):
    log = tiny_log()
    split = temporal_user_split(log, test_ratio=0.25)
    specs = [{"name": "ease", "model_type": "ease", "l2": 10.0}, {"name": "pop", "model_type": "most_popular"}]
    fusion = AutoModelForRecommendation.for_model("stacking_fusion", members=specs, top_n=10, max_iter=50)
    out = fusion.fit(
        split["train"].to_pandas(), validation=split["test"].to_pandas(), metric="ndcg@5", show_progress=False
    )
    assert out is fusion and fusion.meta_weights.abs().sum() > 0
    fusion.save_pretrained(tmp_path)
    loaded = AutoModelForRecommendation.from_pretrained(tmp_path)
    assert type(loaded) is StackingFusion
    idx = torch.arange(5)
    torch.testing.assert_close(loaded.score_users(idx), fusion.score_users(idx))
