"""User-based collaborative filtering: ``score(u, j) = sum_{v in neighbours(u)} sim(u, v) x_vj``."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from hf_recsys.data.arrays import unique
from hf_recsys.data.views import Interactions
from hf_recsys.modeling_utils import RecPreTrainedModel
from torch import nn

from .._utils import (
    NeighbourUpdateMixin,
    knn_prune,
    neighbours_to_csr,
    torch_threads,
    weight_rows,
)
from .configuration_user_knn import UserKNNConfig


class UserKNNPreTrainedModel(RecPreTrainedModel):
    config_class = UserKNNConfig
    base_model_prefix = "user_knn"
    supports_history = True
    trainable = False


class UserKNNModel(NeighbourUpdateMixin, UserKNNPreTrainedModel):
    """User-user collaborative filtering with cosine similarity, shrinkage, TF-IDF/BM25 weighting and pruning.

    The fitted state is each user's ``k`` nearest users (``neighbor_ids`` buffer, ``neighbor_sims`` frozen
    parameter) plus the binary training matrix saved with every model (``seen_items``). A user unseen at fit time
    is compared with every training user through their history (weighted with the training statistics), and
    scored from their ``k`` nearest ones.

    Example:
        ```python
        >>> from hf_recsys_classic import UserKNNConfig, UserKNNModel
        >>> from hf_recsys.testing_utils import tiny_log
        >>> model = UserKNNModel(UserKNNConfig(k=10)).fit(tiny_log(), show_progress=False)
        >>> ids, scores = model.recommend(["u1"], k=3)
        ```
    """

    def __init__(self, config: UserKNNConfig):
        super().__init__(config)
        k = min(config.k, max(config.num_users - 1, 0))
        self.register_buffer("neighbor_ids", torch.zeros(config.num_users, k, dtype=torch.long), persistent=True)
        self.neighbor_sims = nn.Parameter(torch.zeros(config.num_users, k), requires_grad=False)
        self._weighted_cache: tuple | None = None
        self.post_init()

    def _weighted(self, x: sp.csr_matrix, ref: sp.csr_matrix | None = None) -> sp.csr_matrix:
        cfg = self.config
        return weight_rows(x, cfg.weighting, cfg.bm25_k1, cfg.bm25_b, ref=ref)

    def _fit(
        self, interactions: Interactions, show_progress: bool = True, num_threads: int | None = None, **kwargs
    ) -> None:
        """Build the pruned similarities with ``num_threads`` torch threads (``None``: torch's setting, all cores).
        On an idle 2-core machine two threads took 0.6x the time of one; on a contended one they took 1.6x, so
        ``num_threads=1`` is the choice when other jobs share the cores (``benchmarks/classic/speed_bpr_knn.md``)."""
        weighted = self._weighted(interactions.to_csr("binary"))
        with torch_threads(num_threads):
            self._build_neighbour_lists(weighted, show_progress, "UserKNN")

    def _partial_fit(
        self, interactions: Interactions, seen_before=None, show_progress: bool = False, new_pairs=None
    ) -> None:
        """``partial_fit``, exact. With ``weighting="none"`` only the touched users' rows change: their similarities
        are recomputed and merged into the other users' kept lists (from the kept co-occurrence counts with
        ``update_cache``: :func:`knn_count_update`; else :func:`knn_prune_update`), the rows that cannot be proved
        exact recomputed in full. ``"tfidf"`` / ``"bm25"`` weights depend on global statistics
        (the number of users, each item's count, the mean length) that move with every update: those rebuild the
        similarities from the seen items (the cost of a refit, without re-reading the old log)."""
        from hf_recsys.online import seen_interactions

        cfg = self.config
        if cfg.weighting != "none":
            return self._fit(seen_interactions(self), show_progress=show_progress)
        seen = self.seen_items

        def columns(items: np.ndarray):  # the kept-counts path only (numba)
            from hf_recsys_classic import _knn_counts

            return _knn_counts.column_rows(seen, items)

        self._update_neighbour_lists(
            lambda: seen,
            unique(interactions.user_idx),
            pairs=self._added_pairs(new_pairs, seen_before, interactions.user_idx),
            columns=columns,
            shape=seen.shape,
        )

    def _training_matrix(self) -> sp.csr_matrix:
        if self.seen_items is None:
            raise RuntimeError("UserKNNModel scores from the training matrix: fit it first.")
        return self.seen_items

    def _scores_from_neighbours(self, idx: torch.Tensor, val: torch.Tensor) -> torch.Tensor:
        weights = neighbours_to_csr(idx.cpu(), val.detach().cpu(), self.config.num_users)
        scores = np.asarray((weights @ self._training_matrix()).toarray(), dtype=np.float32)
        return torch.from_numpy(scores).to(self.device)

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self._scores_from_neighbours(self.neighbor_ids[user_idx], self.neighbor_sims[user_idx])

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        train = self._training_matrix()
        key = id(train)
        if self._weighted_cache is None or self._weighted_cache[0] != key:
            self._weighted_cache = (key, self._weighted(train))
        train_w = self._weighted_cache[1]
        hist = histories.tocsr().astype(np.float32)
        hist.data[:] = 1.0
        hist_w = self._weighted(hist, ref=train)
        idx, val = knn_prune(hist_w, train_w, self.config.k, self.config.shrink, exclude_self=False)
        return self._scores_from_neighbours(idx, val)


__all__ = ["UserKNNModel", "UserKNNPreTrainedModel"]
