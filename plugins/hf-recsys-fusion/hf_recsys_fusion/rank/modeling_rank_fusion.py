"""Rank fusion over each member's top-N unseen items: RRF, Borda count, CombSUM and CombMNZ (as in ranx)."""

from __future__ import annotations

from typing import Any

import torch

from ..modeling_fusion import FusionBatch, FusionPreTrainedModel, ValidationCache, normalize
from ..weighted.modeling_weighted_fusion import coordinate_ascent
from .configuration_rank_fusion import RankFusionConfig


def member_top_lists(batch: FusionBatch, top_n: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Each member's top-``top_n`` unseen items: ``(scores, items, valid)``, each ``(batch, n)``, best first;
    ``valid`` is False where the member had fewer eligible items."""
    out = []
    for j, s in enumerate(batch.scores):
        masked = s.masked_fill(~batch.eligible(j), -torch.inf)
        top_s, top_i = torch.topk(masked, min(top_n, s.shape[1]), dim=1)
        out.append((top_s, top_i, torch.isfinite(top_s)))
    return out


def _list_values(method: str, norm: str, top_s: torch.Tensor, valid: torch.Tensor, rrf_k: float, cands: torch.Tensor):
    """The points one member's list gives its items under ``method``, ``(batch, n)``."""
    ranks = torch.arange(top_s.shape[1], dtype=torch.float64).expand_as(top_s)
    if method == "rrf":
        return 1.0 / (rrf_k + ranks + 1.0)
    if method == "borda":
        return cands[:, None] - ranks
    if norm == "rank":  # ranx rank_norm over the list: 1 - i / n
        return 1.0 - ranks / valid.sum(1, keepdim=True).clamp(min=1)
    return normalize(top_s, valid, norm)


class RankFusion(FusionPreTrainedModel):
    """Rank fusion of the members' top-``top_n`` unseen items: RRF, BordaFuse, CombSUM or CombMNZ.

    With weights all 1 the fused scores equal ``ranx.fuse`` on the same member runs (each member's top-``top_n``
    unseen items with its scores): RRF and Borda with ``norm=None``, CombSUM / CombMNZ with the matching ranx norm
    (``"min-max"`` by default). Items in no member's list get ``-inf`` (never recommended before listed items).

    Example:
        ```python
        >>> from hf_recsys_fusion import RankFusion
        >>> fusion = RankFusion.from_members({"ease": ease, "als": als}, method="rrf", top_n=100)  # doctest: +SKIP
        >>> ids, scores = fusion.recommend(["u1"], k=10)  # doctest: +SKIP
        ```
    """

    config_class = RankFusionConfig

    def fuse(self, batch: FusionBatch) -> torch.Tensor:
        cfg = self.config
        lists = member_top_lists(batch, cfg.top_n)
        shape = batch.scores[0].shape
        in_list = [torch.zeros(shape, dtype=torch.bool).scatter_(1, i, v) for _, i, v in lists]
        in_any = torch.stack(in_list).any(0)
        cands = in_any.sum(1).to(torch.float64)
        total = torch.zeros(shape, dtype=torch.float64)
        for j, (top_s, top_i, valid) in enumerate(lists):
            w = float(self.fusion_weights[j])
            points = _list_values(cfg.method, cfg.normalization, top_s, valid, cfg.rrf_k, cands)
            total.scatter_add_(1, top_i, w * points.masked_fill(~valid, 0.0))
            if cfg.method == "borda":  # candidates this member did not rank share the remaining points
                unranked = (cands - valid.sum(1) + 1.0) / 2.0
                total += w * (in_any & ~in_list[j]) * unranked[:, None]
        if cfg.method == "combmnz":
            total *= torch.stack(in_list).sum(0)
        return total.masked_fill(~in_any, -torch.inf)

    def _tune(self, cache: ValidationCache, metric: str, show_progress: bool = True, **kwargs: Any) -> dict:
        """Fit the member weights (weighted RRF / CombSUM ...) by coordinate ascent on ``weight_grid``."""
        grid = kwargs.get("weight_grid", [0.0, 0.25, 0.5, 1.0, 2.0, 4.0])
        value = coordinate_ascent(self, cache, metric, grid, kwargs.get("max_rounds", 3), "rank fusion")
        self.config.weights = self.fusion_weights.tolist()
        return {"method": self.config.method, "weights": dict(zip(self.members, self.config.weights)), metric: value}


__all__ = ["RankFusion", "member_top_lists"]
