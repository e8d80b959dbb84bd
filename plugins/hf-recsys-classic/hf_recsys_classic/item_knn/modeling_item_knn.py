"""Item-based collaborative filtering: ``score(u, j) = sum_{i in history(u)} sim(i, j)`` over pruned neighbours."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from hf_recsys.data.arrays import unique
from hf_recsys.data.views import Interactions
from hf_recsys.modeling_utils import RecPreTrainedModel
from torch import nn

from .._utils import NeighbourUpdateMixin, neighbours_to_csr, torch_threads, weight_rows
from .configuration_item_knn import ItemKNNConfig


class ItemKNNPreTrainedModel(RecPreTrainedModel):
    config_class = ItemKNNConfig
    base_model_prefix = "item_knn"
    supports_history = True
    trainable = False


class ItemKNNModel(NeighbourUpdateMixin, ItemKNNPreTrainedModel):
    """Item-item collaborative filtering with cosine similarity, shrinkage, TF-IDF/BM25 weighting and top-k pruning.

    The fitted state is the neighbour list of every item: ``neighbor_ids`` (a persistent buffer) and
    ``neighbor_sims`` (a frozen parameter), both ``(num_items, k)``. A user's score for item ``j`` is the sum of
    ``sim(i, j)`` over the items ``i`` of their (binary) history for which ``j`` is among ``i``'s ``k`` neighbours,
    so users unseen at fit time are scored directly from a history.

    Example:
        ```python
        >>> from hf_recsys_classic import ItemKNNConfig, ItemKNNModel
        >>> from hf_recsys.testing_utils import tiny_log
        >>> log = tiny_log()
        >>> model = ItemKNNModel(ItemKNNConfig(k=20)).fit(log, show_progress=False)
        >>> ids, scores = model.recommend(["new"], k=3, histories={"new": [7, 27]})
        ```
    """

    def __init__(self, config: ItemKNNConfig):
        super().__init__(config)
        k = min(config.k, max(config.num_items - 1, 0))
        self.register_buffer("neighbor_ids", torch.zeros(config.num_items, k, dtype=torch.long), persistent=True)
        self.neighbor_sims = nn.Parameter(torch.zeros(config.num_items, k), requires_grad=False)
        self._sim_cache: tuple | None = None
        self.post_init()

    def _fit(
        self, interactions: Interactions, show_progress: bool = True, num_threads: int | None = None, **kwargs
    ) -> None:
        """Build the pruned similarities with ``num_threads`` torch threads (``None``: torch's setting, all cores).
        On an idle 2-core machine two threads took 0.6x the time of one; on a contended one they took 1.6x, so
        ``num_threads=1`` is the choice when other jobs share the cores (``benchmarks/classic/speed_bpr_knn.md``)."""
        cfg = self.config
        item_user = interactions.to_csr("binary").T.tocsr()
        weighted = weight_rows(item_user, cfg.weighting, cfg.bm25_k1, cfg.bm25_b)
        with torch_threads(num_threads):
            self._build_neighbour_lists(weighted, show_progress, "ItemKNN similarities")
        self._sim_cache = None

    def similarity_matrix(self) -> sp.csr_matrix:
        """The pruned ``(num_items, num_items)`` similarity matrix; row ``i`` holds item ``i``'s neighbours."""
        key = (self.neighbor_sims.data_ptr(), self.neighbor_ids.data_ptr())
        if self._sim_cache is None or self._sim_cache[0] != key:
            sim = neighbours_to_csr(self.neighbor_ids.cpu(), self.neighbor_sims.detach().cpu(), self.config.num_items)
            self._sim_cache = (key, sim)
        return self._sim_cache[1]

    def _partial_fit(
        self, interactions: Interactions, seen_before=None, show_progress: bool = False, new_pairs=None
    ) -> None:
        """``partial_fit``, exact. With ``weighting="none"`` only the touched items' vectors (and norms) change, so
        only their similarities move: with ``update_cache``, :func:`knn_count_update` adds the new pairs to the kept
        co-occurrence counts and rebuilds the lists that may move from them; otherwise :func:`knn_prune_update`
        recomputes the touched items' similarities with one sparse product and merges them into the other items'
        kept neighbour lists. Both recompute in full the rows they cannot prove exact.
        ``"tfidf"`` / ``"bm25"`` weight every pair by global statistics (the number of items, each user's count, the
        mean length) that move with every update, so every similarity can change: those rebuild them from the
        seen items (the cost of a refit, without re-reading the old log)."""
        from hf_recsys.online import seen_interactions

        cfg = self.config
        if cfg.weighting != "none":
            return self._fit(seen_interactions(self), show_progress=show_progress)
        seen = self.seen_items
        pairs = self._added_pairs(new_pairs, seen_before, interactions.user_idx)
        self._update_neighbour_lists(
            lambda: seen.T.tocsr(),
            unique(interactions.item_idx),
            pairs=None if pairs is None else pairs[::-1],  # (item, user): the items are the rows
            columns=lambda users: _rows_of(seen, users),
            shape=seen.shape[::-1],
        )
        self._sim_cache = None

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        hist = histories.tocsr().astype(np.float32)
        hist.data[:] = 1.0
        scores = np.asarray((hist @ self.similarity_matrix()).toarray(), dtype=np.float32)
        return torch.from_numpy(scores).to(self.device)

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        if self.seen_items is None:
            raise RuntimeError("ItemKNNModel scores users from their training histories: fit it first.")
        return self.score_histories(self.seen_items[user_idx.cpu().numpy()])

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        rows = self.similarity_matrix()[item_idx.cpu().numpy()]
        return torch.from_numpy(np.asarray(rows.toarray(), dtype=np.float32)).to(self.device)


def _rows_of(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``rows`` of a CSR matrix as ``(ptr, columns)``: here the items of the given users (the users' columns of
    the item x user matrix)."""
    sub = m[rows]
    return sub.indptr, sub.indices


__all__ = ["ItemKNNModel", "ItemKNNPreTrainedModel"]
