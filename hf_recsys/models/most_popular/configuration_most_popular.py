"""Configuration of the most-popular baseline."""

from __future__ import annotations

from ...configuration_utils import RecConfig, check_choice, check_positive


class MostPopularConfig(RecConfig):
    """Configuration of :class:`MostPopularModel`.

    Args:
        weighting: ``"count"`` counts interactions per item; ``"users"`` counts distinct users; ``"rating"`` sums
            ratings.
        half_life_days: if set, each interaction counts ``0.5 ** (age / half_life)`` where age is measured from the
            newest timestamp in the training log (recent popularity); needs timestamps.
        **kwargs: passed to :class:`RecConfig` (``num_users``, ``num_items``, ...).
    """

    model_type = "most_popular"

    def __init__(self, weighting: str = "count", half_life_days: float | None = None, **kwargs):
        check_choice(self, "weighting", weighting, ("count", "users", "rating"))
        if half_life_days is not None:
            check_positive(self, "half_life_days", half_life_days)
        self.weighting = weighting
        self.half_life_days = half_life_days
        super().__init__(**kwargs)


__all__ = ["MostPopularConfig"]
