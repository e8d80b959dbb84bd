"""Configuration of stacking fusion (a learned meta-ranker over member scores)."""

from __future__ import annotations

from typing import Any

from hf_recsys.configuration_utils import check_positive

from ..configuration_fusion import FusionConfig


class StackingFusionConfig(FusionConfig):
    """Configuration of :class:`StackingFusion`.

    Args:
        members: member specs (see :class:`FusionConfig`).
        top_n: candidates are the union of each member's top-``top_n`` unseen items.
        l2: L2 penalty of the logistic-regression meta-ranker.
        max_iter: L-BFGS iterations when training the meta-ranker.
        **kwargs: passed to :class:`FusionConfig`.
    """

    model_type = "stacking_fusion"

    def __init__(
        self,
        members: list[dict[str, Any]] | None = None,
        top_n: int = 100,
        l2: float = 1e-3,
        max_iter: int = 200,
        **kwargs,
    ):
        check_positive(self, "top_n", top_n)
        check_positive(self, "l2", l2, allow_zero=True)
        check_positive(self, "max_iter", max_iter)
        self.top_n = int(top_n)
        self.l2 = float(l2)
        self.max_iter = int(max_iter)
        super().__init__(members=members, **kwargs)

    @property
    def num_features(self) -> int:
        """Per member: min-max score and reciprocal rank in its top-N; then item popularity and user activity."""
        return 2 * len(self.members) + 2


__all__ = ["StackingFusionConfig"]
