"""The most-popular baseline: every user gets the items with the most interactions in training."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ...data.arrays import unique
from ...data.views import Interactions
from ...modeling_utils import RecPreTrainedModel
from .configuration_most_popular import MostPopularConfig


class MostPopularPreTrainedModel(RecPreTrainedModel):
    config_class = MostPopularConfig
    base_model_prefix = "most_popular"
    supports_history = True
    empty_history_ok = True  # the popular items are the answer for a user without history
    trainable = False


class MostPopularModel(MostPopularPreTrainedModel):
    """Recommends the globally most popular items (not already seen). Cold users need no history at all, but a
    given history is used to exclude seen items.

    Example:
        ```python
        >>> from hf_recsys import MostPopularConfig, MostPopularModel
        >>> from hf_recsys.data import generate_interactions
        >>> log, _ = generate_interactions(num_users=50, num_items=30, num_interactions=500, seed=0)
        >>> model = MostPopularModel(MostPopularConfig()).fit(log)
        >>> ids, scores = model.recommend([log[0]["user_id"]], k=3)
        >>> ids.shape
        (1, 3)
        ```
    """

    def __init__(self, config: MostPopularConfig):
        super().__init__(config)
        self.item_scores = nn.Parameter(torch.zeros(config.num_items), requires_grad=False)
        self.post_init()

    def _fit(self, interactions: Interactions, **kwargs) -> None:
        inter = interactions.known()
        weights = np.ones(len(inter), dtype=np.float64)
        if self.config.weighting == "rating":
            if inter.rating is None:
                raise ValueError("MostPopularConfig(weighting='rating') needs a 'rating' column.")
            weights = inter.rating.astype(np.float64)
        if self.config.half_life_days is not None:
            if inter.timestamp is None:
                raise ValueError("MostPopularConfig(half_life_days=...) needs a 'timestamp' column.")
            age_days = (inter.timestamp.max() - inter.timestamp) / 86400.0
            weights = weights * 0.5 ** (age_days / self.config.half_life_days)
        if self.config.weighting == "users":
            # one count per (user, item) pair: keep the largest (most recent) weight of a repeated pair
            key = inter.user_idx * inter.num_items + inter.item_idx
            order = np.lexsort((weights, key))
            last = np.r_[key[order][1:] != key[order][:-1], True]
            sel = order[last]
            counts = np.bincount(inter.item_idx[sel], weights=weights[sel], minlength=inter.num_items)
        else:
            counts = np.bincount(inter.item_idx, weights=weights, minlength=inter.num_items)
        self.item_scores = nn.Parameter(torch.as_tensor(counts, dtype=torch.float32), requires_grad=False)

    def _partial_fit(self, interactions: Interactions, seen_before=None, show_progress: bool = False) -> None:
        """``partial_fit``: the exact update of the counts (new items start at 0). With ``half_life_days`` the old
        scores decay by the time the log's last timestamp moved; ``weighting="users"`` counts only pairs new to
        the seen items."""
        cfg, inter = self.config, interactions.known()
        if cfg.weighting == "users" and cfg.half_life_days is not None:
            raise NotImplementedError(
                "MostPopular(weighting='users', half_life_days=...) keeps the newest weight of a repeated pair, which "
                "the fitted model does not store: partial_fit cannot update it exactly; refit it on the whole log."
            )
        scores = np.zeros(inter.num_items, dtype=np.float64)  # in numpy: the same float64 sums, less per-call cost
        scores[: len(self.item_scores)] = self.item_scores.detach().cpu().numpy()
        weights = np.ones(len(inter), dtype=np.float64)
        if cfg.weighting == "rating":
            weights = inter.rating.astype(np.float64)
        if cfg.half_life_days is not None:
            last = (getattr(cfg, "fitted_log", None) or {}).get("last_timestamp")
            if last is None:
                raise ValueError("partial_fit with half_life_days needs the fitted log's last timestamp: refit first.")
            now = max(int(last), int(inter.timestamp.max()))
            scores *= 0.5 ** ((now - last) / 86400.0 / cfg.half_life_days)
            weights = weights * 0.5 ** ((now - inter.timestamp) / 86400.0 / cfg.half_life_days)
        if cfg.weighting == "users":  # one count per pair not seen before
            key = inter.user_idx * inter.num_items + inter.item_idx
            _, first = unique(key, return_index=True)
            coo = seen_before.tocoo()
            first = first[~np.isin(key[first], coo.row.astype(np.int64) * inter.num_items + coo.col)]
            inter_items, weights = inter.item_idx[first], weights[first]
        else:
            inter_items = inter.item_idx
        scores += np.bincount(inter_items, weights=weights, minlength=inter.num_items)
        self.item_scores = nn.Parameter(torch.from_numpy(scores.astype(np.float32)), requires_grad=False)

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self.item_scores.unsqueeze(0).expand(len(user_idx), -1).clone()

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        return self.item_scores.unsqueeze(0).expand(histories.shape[0], -1).clone()


__all__ = ["MostPopularModel", "MostPopularPreTrainedModel"]
