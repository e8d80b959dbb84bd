"""Configuration of item-based collaborative filtering (ItemKNN)."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig, check_choice, check_positive

from .._utils import WEIGHTINGS


class ItemKNNConfig(RecConfig):
    """Configuration of :class:`ItemKNNModel`.

    Args:
        k: neighbours kept per item (top-``k`` pruning of the item-item similarity; the item itself excluded).
        shrink: shrinkage term in ``sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrink)``; 0 gives plain cosine.
        weighting: ``"none"``, ``"tfidf"`` or ``"bm25"``: weighting of the item-user matrix before the cosine, as in
            implicit's ``tfidf_weight`` / ``bm25_weight`` (users play the role of terms).
        bm25_k1, bm25_b: BM25 parameters.
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "item_knn"

    def __init__(
        self,
        k: int = 100,
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


__all__ = ["ItemKNNConfig"]
