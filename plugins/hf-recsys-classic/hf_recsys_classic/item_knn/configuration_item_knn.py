"""Configuration of item-based collaborative filtering (ItemKNN), and the options it shares with UserKNN."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig, check_choice, check_positive

from .._utils import WEIGHTINGS


class NeighbourhoodConfig(RecConfig):
    """Options shared by the neighbourhood models (:class:`ItemKNNConfig`, ``UserKNNConfig``).

    Args:
        k: neighbours kept per item (ItemKNN) or user (UserKNN), the item or user itself excluded.
        shrink: shrinkage term in ``sim(a, b) = <x_a, x_b> / (|x_a| |x_b| + shrink)``; 0 gives plain cosine.
        weighting: ``"none"``, ``"tfidf"`` or ``"bm25"``: weighting of the interaction matrix before the cosine, as in
            implicit's ``tfidf_weight`` / ``bm25_weight`` (for ItemKNN users act as terms, for UserKNN items).
        bm25_k1, bm25_b: BM25 parameters.
        update_reserve: extra neighbours per row kept in memory, as a fraction of ``k`` (``0.5``: ``1.5 k`` in all),
            so that ``partial_fit`` can prove more rows' top ``k`` exact without recomputing them. Set it (``0.5``)
            on a model meant for online updates: its fits then cost a little more (deeper lists; ItemKNN on
            ml-latest-small, k=50, shrink=10, one thread: 0.73-0.76 s vs 0.66-0.75 s; 1.4x with the older block
            fit), and its updates need far fewer exact recomputations.
            ``0`` (the default): ``k`` lists, the fastest fit; updates stay exact. Not saved: a loaded model starts
            from its ``k`` lists.
        update_cache: keep the dense co-occurrence counts of the compared rows in memory (``weighting="none"``
            only; needs numba, ``pip install "hf-recsys-classic[fast]"``), so that ``partial_fit`` costs the work of
            the new interactions instead of the touched rows' (ml-latest-small, 10 monthly updates: ItemKNN
            0.07-0.09 of a refit's time against 0.2 without, UserKNN 0.09-0.10 against 0.13;
            ``benchmarks/online/partial_fit.md``). The counts take ``(1.13 n)^2`` 2-byte integers for ``n`` items
            (ItemKNN) or users (UserKNN): 240 MB for ml-latest-small's 9.7k items, 1.8 GB for 27k items; the fit
            writes each co-occurring pair once and touches that memory (ItemKNN on ml-latest-small, one thread:
            1.0 s against 0.75 s with ``update_reserve=0.5`` alone). Not saved: the first update after loading
            rebuilds the counts (the cost of a refit). ``False`` (the default): no counts kept.
        **kwargs: passed to :class:`RecConfig`.
    """

    def __init__(
        self,
        k: int = 100,
        shrink: float = 0.0,
        weighting: str = "none",
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        update_reserve: float = 0.0,
        update_cache: bool = False,
        **kwargs,
    ):
        check_positive(self, "k", k)
        check_positive(self, "shrink", shrink, allow_zero=True)
        check_choice(self, "weighting", weighting, WEIGHTINGS)
        check_positive(self, "bm25_k1", bm25_k1)
        check_positive(self, "bm25_b", bm25_b, allow_zero=True)
        check_positive(self, "update_reserve", update_reserve, allow_zero=True)
        self.k = int(k)
        self.shrink = float(shrink)
        self.weighting = weighting
        self.bm25_k1 = float(bm25_k1)
        self.bm25_b = float(bm25_b)
        self.update_reserve = float(update_reserve)
        if not isinstance(update_cache, bool):
            raise TypeError(f"{type(self).__name__}: update_cache must be True or False, got {update_cache!r}.")
        self.update_cache = update_cache
        super().__init__(**kwargs)


class ItemKNNConfig(NeighbourhoodConfig):
    """Configuration of :class:`ItemKNNModel`: top-``k`` pruned item-item cosine (see :class:`NeighbourhoodConfig`
    for every option). ``k`` defaults to 100."""

    model_type = "item_knn"

    def __init__(self, k: int = 100, **kwargs):  # an own __init__: transformers 5 makes config subclasses dataclasses
        super().__init__(k=k, **kwargs)


__all__ = ["ItemKNNConfig", "NeighbourhoodConfig"]
