"""Configuration of user-based collaborative filtering (UserKNN)."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig, check_choice, check_positive

from .._utils import WEIGHTINGS


class UserKNNConfig(RecConfig):
    """Configuration of :class:`UserKNNModel`.

    Args:
        k: neighbours kept per user (the user itself excluded).
        shrink: shrinkage in ``sim(u, v) = <x_u, x_v> / (|x_u| |x_v| + shrink)``.
        weighting: ``"none"``, ``"tfidf"`` or ``"bm25"`` weighting of the user-item matrix (items act as terms).
        bm25_k1, bm25_b: BM25 parameters.
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "user_knn"

    def __init__(
        self,
        k: int = 50,
        shrink: float = 0.0,
        weighting: str = "none",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        **kwargs,
    ):
        check_positive(self, "k", k)
        check_positive(self, "shrink", shrink, allow_zero=True)
        check_choice(self, "weighting", weighting, WEIGHTINGS)
        check_positive(self, "bm25_k1", bm25_k1)
        check_positive(self, "bm25_b", bm25_b, allow_zero=True)
        self.k = int(k)
        self.shrink = float(shrink)
        self.weighting = weighting
        self.bm25_k1 = float(bm25_k1)
        self.bm25_b = float(bm25_b)
        super().__init__(**kwargs)


__all__ = ["UserKNNConfig"]
