"""Weighted score fusion: a weighted sum of per-user normalised member scores, weights fitted on validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from ..configuration_fusion import NORMALIZATIONS
from ..modeling_fusion import FusionBatch, FusionPreTrainedModel, ValidationCache, normalize
from .configuration_weighted_fusion import WeightedFusionConfig


def coordinate_ascent(
    model: FusionPreTrainedModel,
    cache: ValidationCache,
    metric: str,
    grid: Sequence[float],
    rounds: int,
    desc: str,
    fuse: Callable[[FusionBatch], torch.Tensor] | None = None,
) -> float:
    """Coordinate ascent on ``model.fusion_weights`` over ``grid`` (in place); returns the best metric.

    Each pass tries every grid value for each weight in turn, keeping a change only when it improves the metric
    (ties keep the current value); it stops after ``rounds`` passes or a pass without change. An all-zero weight
    vector is never tried. ``fuse`` replaces ``model.fuse`` (e.g. one reading precomputed normalised scores).
    """
    w = model.fusion_weights.data
    best = model.validation_metric(cache, metric, fuse)
    for _ in tqdm(range(rounds), desc=desc, disable=True):
        changed = False
        for j in range(len(w)):
            keep = float(w[j])
            for value in grid:
                if value == keep or (value == 0 and float(w.sum() - w[j]) == 0):
                    continue
                w[j] = value
                got = model.validation_metric(cache, metric, fuse)
                if got > best + 1e-12:
                    best, keep, changed = got, value, True
            w[j] = keep
        if not changed:
            break
    return best


class WeightedFusion(FusionPreTrainedModel):
    """Weighted score fusion over every item: ``score = sum_m w_m * normalize(score_m)``.

    Each member's scores are normalised per user over the items the user has not seen (see
    :func:`~hf_recsys_fusion.modeling_fusion.normalize`); an item a member does not know gets that member's lowest
    normalised value. ``tune`` fits the weights on a validation split by coordinate ascent on a grid, and can pick
    the normalisation too.

    Example:
        ```python
        >>> from hf_recsys_fusion import WeightedFusion
        >>> fusion = WeightedFusion.from_members({"ease": ease, "als": als})  # doctest: +SKIP
        >>> fusion.tune(validation, metric="ndcg@20")  # doctest: +SKIP
        >>> ids, scores = fusion.recommend(["u1"], k=10)  # doctest: +SKIP
        ```
    """

    config_class = WeightedFusionConfig

    def fuse(self, batch: FusionBatch) -> torch.Tensor:
        total = torch.zeros_like(batch.scores[0])
        for j, s in enumerate(batch.scores):
            w = float(self.fusion_weights[j])
            if w != 0:
                total += w * normalize(s, batch.eligible(j), self.config.normalization)
        return total

    def _tune(
        self,
        cache: ValidationCache,
        metric: str,
        show_progress: bool = True,
        normalizations: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> dict:
        """Coordinate ascent on the weights, for each normalisation in ``normalizations`` (default: the config's);
        keeps the best normalisation and weights."""
        choices = list(normalizations or [self.config.normalization])
        bad = [c for c in choices if c not in NORMALIZATIONS]
        if bad:
            raise ValueError(f"Unknown normalization(s) {bad}; choose from {NORMALIZATIONS}.")
        start = self.fusion_weights.data.clone()
        results = {}
        for norm in tqdm(choices, desc="tuning weights", disable=not show_progress):
            self.config.normalization = norm
            self.fusion_weights.data.copy_(start)
            # member normalisation does not depend on the weights: normalise each cached batch once
            normed = {
                id(b): [normalize(s, b.eligible(j), norm) for j, s in enumerate(b.scores)] for b in cache.batches
            }

            def fuse(batch: FusionBatch, normed=normed) -> torch.Tensor:
                return sum(float(w) * x for w, x in zip(self.fusion_weights, normed[id(batch)]))

            grid, rounds = self.config.weight_grid, self.config.max_rounds
            value = coordinate_ascent(self, cache, metric, grid, rounds, norm, fuse=fuse)
            results[norm] = (value, self.fusion_weights.data.clone())
        best = max(results, key=lambda n: results[n][0])
        self.config.normalization = best
        self.fusion_weights.data.copy_(results[best][1])
        self.config.weights = self.fusion_weights.tolist()
        return {
            "normalization": best,
            "weights": dict(zip(self.members, self.config.weights)),
            metric: results[best][0],
            "all": {n: v for n, (v, _) in results.items()},
        }


__all__ = ["WeightedFusion", "coordinate_ascent"]
