"""Configuration of the weighted score fusion."""

from __future__ import annotations

from typing import Any

from ..configuration_fusion import FusionConfig


class WeightedFusionConfig(FusionConfig):
    """Configuration of :class:`WeightedFusion`: ``score = sum_m w_m * normalize(score_m)`` over every item.

    Args:
        members: member specs (see :class:`FusionConfig`).
        weights: one weight per member (default 1.0 each); ``tune`` fits them by coordinate ascent on a grid.
        normalization: ``"minmax"``, ``"zscore"``, ``"rank"`` or ``"none"``, per user and member, over the items
            the user has not seen.
        weight_grid: the values coordinate ascent tries for each weight.
        max_rounds: coordinate-ascent passes over the members (stops early when a pass changes nothing).
        **kwargs: passed to :class:`FusionConfig`.
    """

    model_type = "weighted_fusion"

    def __init__(
        self,
        members: list[dict[str, Any]] | None = None,
        weights: list[float] | None = None,
        normalization: str = "minmax",
        weight_grid: list[float] | None = None,
        max_rounds: int = 3,
        **kwargs,
    ):
        self.weight_grid = [float(w) for w in (weight_grid or [0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0])]
        if any(w < 0 for w in self.weight_grid):
            raise ValueError(f"WeightedFusionConfig: weight_grid values must be >= 0, got {self.weight_grid}.")
        if int(max_rounds) != max_rounds or max_rounds < 1:
            raise ValueError(f"WeightedFusionConfig: max_rounds must be a positive int, got {max_rounds!r}.")
        self.max_rounds = int(max_rounds)
        super().__init__(members=members, weights=weights, normalization=normalization, **kwargs)


__all__ = ["WeightedFusionConfig"]
