"""Switching fusion: the cold-start fallback. Cold users go to a fallback member; cold items are scored by it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..modeling_fusion import FusionBatch, FusionPreTrainedModel, ValidationCache, normalize
from .configuration_switching_fusion import SwitchingFusionConfig


class SwitchingFusion(FusionPreTrainedModel):
    """Routes by condition between a ``primary`` member (e.g. EASE) and a ``fallback`` member (e.g. a content
    model):

    - users with fewer than ``min_user_interactions`` seen items get the fallback's ranking;
    - for the others, items the primary can score keep the primary's min-max normalised score, and *cold items*
      (unknown to the primary, or without any training interaction in it) get ``cold_item_weight`` times the
      fallback's min-max normalised score (over every item the user has not seen), so both lie in ``[0, 1]``.

    Example:
        ```python
        >>> from hf_recsys_fusion import SwitchingFusion
        >>> fusion = SwitchingFusion.from_members({"ease": ease, "content": content})  # doctest: +SKIP
        >>> fusion.tune(validation, metric="recall@20")  # doctest: +SKIP
        ```
    """

    config_class = SwitchingFusionConfig

    def _primary_warm_items(self) -> torch.Tensor:
        """Bool ``(num_items,)``: items the primary knows and saw in training."""
        name = self.config.primary
        m = self.members[name]
        item_map = self.alignment(name)[1]
        warm = item_map >= 0
        if m.seen_items is not None:
            counts = torch.as_tensor(np.asarray(m.seen_items.sum(0)).ravel() > 0)
            warm[warm.clone()] = counts[item_map[warm]]
        return warm

    def fuse(self, batch: FusionBatch) -> torch.Tensor:
        names = list(self.members)
        p, f = names.index(self.config.primary), names.index(self.config.fallback)
        warm_items = self._primary_warm_items()[None, :]
        prim_ok = batch.eligible(p) & warm_items
        cold_ok = batch.eligible(f) & ~warm_items
        primary = normalize(batch.scores[p], prim_ok, "minmax")
        fallback = normalize(batch.scores[f], batch.eligible(f), "minmax")
        mixed = torch.where(warm_items, primary, self.config.cold_item_weight * fallback)
        mixed = mixed.masked_fill(~(prim_ok | cold_ok), -torch.inf)
        fallback = fallback.masked_fill(~batch.eligible(f), -torch.inf)
        cold_user = (batch.activity < self.config.min_user_interactions)[:, None]
        return torch.where(cold_user, fallback, mixed)

    def _tune(
        self,
        cache: ValidationCache,
        metric: str,
        show_progress: bool = True,
        grid: Sequence[float] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
        tolerance: float = 0.0,
        **kwargs: Any,
    ) -> dict:
        """Pick ``cold_item_weight`` on ``grid``: the largest weight whose validation metric is within ``tolerance``
        of the best one (cold items get as much exposure as the validation metric allows)."""
        results = {}
        for w in grid:
            self.config.cold_item_weight = float(w)
            results[float(w)] = self.validation_metric(cache, metric)
        top = max(results.values())
        best = max(w for w, v in results.items() if v >= top - tolerance)
        self.config.cold_item_weight = best
        return {"cold_item_weight": best, metric: results[best], "all": results}


__all__ = ["SwitchingFusion"]
