"""Test helpers: a member with fixed random scores (no ties), registered under a test-only model type."""

from __future__ import annotations

import numpy as np
import torch
from hf_recsys import register_model
from hf_recsys.configuration_utils import RecConfig
from hf_recsys.modeling_utils import RecPreTrainedModel
from torch import nn


class FixedScoresConfig(RecConfig):
    model_type = "test_fixed_scores"

    def __init__(self, seed: int = 0, **kwargs):
        self.seed = int(seed)
        super().__init__(**kwargs)


class FixedScoresModel(RecPreTrainedModel):
    """Scores are a fixed random table (continuous, so no ties): a member whose runs are easy to rebuild."""

    config_class = FixedScoresConfig
    trainable = False

    def __init__(self, config: FixedScoresConfig):
        super().__init__(config)
        self.table = nn.Parameter(torch.zeros(config.num_users, config.num_items), requires_grad=False)
        self.post_init()

    def _fit(self, interactions, **kwargs) -> None:
        gen = torch.Generator().manual_seed(self.config.seed)
        self.table = nn.Parameter(torch.rand(interactions.num_users, interactions.num_items, generator=gen) * 5 - 1)

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self.table[user_idx].detach().clone()


def register_fixed_scores() -> None:
    register_model("test_fixed_scores", FixedScoresConfig, FixedScoresModel)


def fixed_members(log, item_fracs=(1.0, 0.8, 0.6)):
    """Fitted FixedScores members on different item subsets of ``log`` (so their item vocabularies differ)."""
    register_fixed_scores()
    items = np.sort(log["item_id"].unique())
    members = {}
    for j, frac in enumerate(item_fracs):
        keep = (
            items[: max(2, int(round(frac * len(items))))] if j % 2 == 0 else items[-int(round(frac * len(items))) :]
        )
        sub = log[log["item_id"].isin(keep)]
        members[f"m{j}"] = FixedScoresModel(FixedScoresConfig(seed=j)).fit(sub, show_progress=False)
    return members


def content_features(log):
    """Item ids and 3-d features of the tiny log's items (its taste groups are item id parity), plus a cold item."""
    ids = np.append(np.sort(log["item_id"].unique()), 99_999)
    group = ((ids - 7) // 10) % 2
    rng = np.random.default_rng(0)
    feats = np.stack([group, 1 - group, rng.random(len(ids)) * 0.1], axis=1).astype(np.float32)
    return ids, feats


__all__ = ["FixedScoresConfig", "FixedScoresModel", "content_features", "fixed_members", "register_fixed_scores"]
