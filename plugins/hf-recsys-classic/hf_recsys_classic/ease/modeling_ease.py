"""EASE^R: a closed-form item-item model, ``B = I - P diagMat(1 / diag(P))`` with ``P = (X^T X + lambda I)^-1``."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from hf_recsys.data.arrays import unique
from hf_recsys.data.views import Interactions
from hf_recsys.modeling_utils import RecPreTrainedModel
from torch import nn

from .._utils import DENSE_BUDGET, csr_rows_dense, sparse_dense_mm
from .configuration_ease import EASEConfig


def gram_matrix(x: sp.csr_matrix, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``X^T X`` as a dense torch matrix, accumulated over row chunks with a sparse-times-dense product."""
    n_items = x.shape[1]
    chunk_rows = max(1, DENSE_BUDGET // max(n_items, 1))
    gram = torch.zeros(n_items, n_items, dtype=torch.float32)
    for start in range(0, x.shape[0], chunk_rows):
        block = x[start : start + chunk_rows]
        gram += sparse_dense_mm(block.T.tocsr(), csr_rows_dense(block))
    return gram.to(dtype)


def _tril_inverse(chol: torch.Tensor, block: int) -> torch.Tensor:
    """``L^-1`` of a lower-triangular ``L`` by block substitution: every product skips the zero blocks, so the
    work is about ``n^3 / 3`` flops, in matrix-matrix products."""
    n = chol.shape[0]
    inv = torch.zeros_like(chol)
    starts = list(range(0, n, block))
    for i0 in starts:
        i1 = min(i0 + block, n)
        eye = torch.eye(i1 - i0, dtype=chol.dtype)
        diag_inv = torch.linalg.solve_triangular(chol[i0:i1, i0:i1], eye, upper=False)
        inv[i0:i1, i0:i1] = diag_inv
        for j0 in starts[: starts.index(i0)]:
            j1 = j0 + block  # X_ij = -X_ii sum_{j <= k < i} L_ik X_kj
            inv[i0:i1, j0:j1] = -diag_inv @ (chol[i0:i1, j0:i0] @ inv[j0:i0, j0:j1])
    return inv


def _lower_gram(inv: torch.Tensor, block: int) -> torch.Tensor:
    """``X^T X`` for a lower-triangular ``X`` (LAPACK's ``lauum``), block by block: about ``n^3 / 3`` flops."""
    n = inv.shape[0]
    out = torch.empty_like(inv)
    for i0 in range(0, n, block):
        for j0 in range(i0, n, block):
            part = inv[j0:, i0 : i0 + block].T @ inv[j0:, j0 : j0 + block]  # rows k < j0 of block j0 are zero
            out[i0 : i0 + block, j0 : j0 + block] = part
            if j0 != i0:
                out[j0 : j0 + block, i0 : i0 + block] = part.T
    return out


def ease_weights(
    gram: torch.Tensor, l2: float, block: int = 1024, return_diagonal: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The EASE item-item matrix from a Gram matrix: ``P = (G + l2 I)^-1``, then ``B = -P / diag(P)`` (column-wise)
    with a zero diagonal. Overwrites ``gram``. With ``return_diagonal``, also ``diag(P)``: with ``B`` it gives ``P``
    back in ``O(n^2)`` (``P_ij = -B_ij P_jj``), what ``partial_fit`` updates.

    ``P = L^-T L^-1`` from the Cholesky factor ``L``, with the triangular inverse and product done block-wise in
    matrix-matrix products (about ``n^3`` flops in all, against ``2 n^3`` for ``np.linalg.inv``); LAPACK's own
    ``potri`` (``torch.cholesky_inverse``) measured several times slower here.
    """
    gram.diagonal().add_(l2)
    chol, info = torch.linalg.cholesky_ex(gram)
    if int(info) != 0:
        raise ValueError(f"EASE: X^T X + l2 I is not positive definite (l2={l2}); use a larger l2.")
    del gram
    inv = _tril_inverse(chol, block)
    del chol
    precision = _lower_gram(inv, block)
    del inv
    diagonal = precision.diagonal().clone()
    weights = precision.div_(-diagonal.unsqueeze(0))
    weights.diagonal().zero_()
    return (weights, diagonal) if return_diagonal else weights


def _coo(m: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    coo = m.tocoo()
    return coo.row.astype(np.int64), coo.col.astype(np.int64)


class EASEPreTrainedModel(RecPreTrainedModel):
    config_class = EASEConfig
    base_model_prefix = "ease"
    supports_history = True
    trainable = False


class EASEModel(EASEPreTrainedModel):
    """EASE^R (Steck, WWW 2019): ``scores = X_u B`` with ``B`` the ``(num_items, num_items)`` closed-form solution.

    Fitting forms ``X^T X`` with a sparse-times-dense product, then inverts ``X^T X + l2 I`` through a Cholesky
    factorisation and a block-wise triangular inverse and product (float32 by default). A history is scored
    exactly like a training user, so users unseen at fit time are served directly.

    Example:
        ```python
        >>> from hf_recsys_classic import EASEConfig, EASEModel
        >>> from hf_recsys.testing_utils import tiny_log
        >>> model = EASEModel(EASEConfig(l2=10.0)).fit(tiny_log())
        >>> ids, scores = model.recommend(["new"], k=3, histories={"new": [7, 27]})
        ```
    """

    def __init__(self, config: EASEConfig):
        super().__init__(config)
        self.item_weights = nn.Parameter(torch.zeros(config.num_items, config.num_items), requires_grad=False)
        self.post_init()

    def _fit(self, interactions: Interactions, show_progress: bool = True, **kwargs) -> None:
        dtype = torch.float64 if self.config.solver_dtype == "float64" else torch.float32
        gram = gram_matrix(interactions.to_csr("binary"), dtype=dtype)
        # row-major: the solve leaves B column-major, and torch's sparse @ dense ran ~48x slower on that layout
        weights, diagonal = ease_weights(gram, self.config.l2, return_diagonal=True)
        self.item_weights = nn.Parameter(weights.float().contiguous(), requires_grad=False)
        self._precision_diagonal = (self.item_weights, diagonal.double())  # in memory: partial_fit's P from B

    def _partial_fit(self, interactions: Interactions, seen_before=None, show_progress: bool = False) -> None:
        """``partial_fit``, exact: the Gram matrix changes by ``X_T'^T X_T' - X_T^T X_T`` over the touched users
        ``T`` (rank ``r <= 2 |T|``), so ``P = (X^T X + l2 I)^-1`` is updated by the Woodbury identity in float64,
        new items entering with ``1 / l2`` on the diagonal, then ``B = -P / diag(P)``. Cost ``O(n^2 r + r^2 n)``
        against the refit's ``O(n^3)``. ``P`` is kept in memory between updates (float64, with room for new items);
        the first update after ``fit`` gets it from ``B`` and ``diag(P)`` (kept by ``fit``) in ``O(n^2)``, after
        loading from ``B`` and one Gram matrix (``P = (I - B) diag(p)``, ``p_j = 1 / [(G + l2 I)(I - B)]_jj``).
        When ``r > n / 4`` a full solve is cheaper and is done instead."""
        from hf_recsys.online import pad_csr

        n = self.config.num_items
        touched = unique(interactions.user_idx)
        new_rows = self.seen_items[touched]
        old_rows = seen_before[touched[touched < seen_before.shape[0]]]
        old_rows = old_rows[np.diff(old_rows.indptr) > 0]
        u = sp.vstack([new_rows, pad_csr(old_rows, (old_rows.shape[0], n))]).tocsr()
        if u.shape[0] > n / 4:  # a full solve is cheaper
            return self._fit(Interactions(*_coo(self.seen_items), None, None, *self.seen_items.shape))
        prec = self._precision_buffer(seen_before, n)  # (capacity, capacity): P, zero past n
        self._precision = None  # updated in place below
        sign = torch.cat([torch.ones(new_rows.shape[0]), -torch.ones(old_rows.shape[0])]).double()
        coo = u.tocoo()
        idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
        ut = torch.sparse_coo_tensor(idx, coo.data.astype(np.float64), (u.shape[0], len(prec)), check_invariants=False)
        w = torch.sparse.mm(ut, prec)  # U P, (r, capacity): a sum of rows of P per row of U
        middle = torch.diag(sign) + torch.sparse.mm(ut, w.T).T  # S^-1 + U P U^T, S = diag(sign)
        prec.addmm_(w.T, torch.linalg.solve(middle, w), alpha=-1.0)  # P - (U P)^T M^-1 (U P), in place
        if self.item_weights.shape == (n, n):  # no new items: B is rewritten in place (no new n x n matrix)
            weights = self.item_weights.data.copy_(prec[:n, :n])
        else:
            weights = prec[:n, :n].float()
        weights.div_(-weights.diagonal().clone().unsqueeze(0))
        weights.diagonal().zero_()
        if weights is not self.item_weights.data:
            self.item_weights = nn.Parameter(weights, requires_grad=False)
        self._precision = (self.item_weights, prec)  # valid while these weights are the model's

    def _precision_buffer(self, seen_before: sp.csr_matrix, n: int) -> torch.Tensor:
        """``P`` of the model before the update, in a float64 ``(capacity, capacity)`` buffer (zero past the items),
        grown to hold ``n`` items (new ones with ``1 / l2`` on the diagonal; the capacity grows by a margin, so that
        new items rarely copy the ``n x n`` matrix)."""
        cached = getattr(self, "_precision", None)
        prec = cached[1] if cached is not None and cached[0] is self.item_weights else None
        old_n = seen_before.shape[1]
        if prec is None:
            prec = self._recovered_precision(seen_before, old_n, capacity=n + max(128, n // 32))
        if n > len(prec):
            grown = torch.zeros(n + max(128, n // 32), n + max(128, n // 32), dtype=torch.float64)
            grown[:old_n, :old_n] = prec[:old_n, :old_n]
            prec = grown
        prec.diagonal()[old_n:n] = 1.0 / self.config.l2
        return prec

    def _recovered_precision(self, seen_before: sp.csr_matrix, old_n: int, capacity: int, block: int = 1024):
        """``P`` from ``B``: ``P_ij = -B_ij p_j``, ``P_jj = p_j``, with ``p = diag(P)`` kept by ``fit`` or else
        ``p_j = 1 / [(G + l2 I)(I - B)]_jj`` from one Gram matrix; symmetrised (``B`` holds float32 rounding)."""
        prec = torch.zeros(capacity, capacity, dtype=torch.float64)
        p_view = prec[:old_n, :old_n]
        p_view.copy_(self.item_weights.detach()[:old_n, :old_n]).neg_()
        p_view.diagonal().add_(1.0)  # I - B
        kept = getattr(self, "_precision_diagonal", None)
        if kept is not None and kept[0] is self.item_weights:
            p = kept[1]
        else:  # after loading
            gram = gram_matrix(seen_before)  # counts: exact in float32
            p = torch.empty(old_n, dtype=torch.float64)
            for i in range(0, old_n, block):  # p_j = 1 / [(G + l2 I)(I - B)]_jj, row block by row block
                p[i : i + block] = (gram[i : i + block].double() * p_view[:, i : i + block].T).sum(1)
            p = 1.0 / (p + self.config.l2 * p_view.diagonal())
        p_view.mul_(p.unsqueeze(0))
        for i in range(0, old_n, block):  # symmetrise
            for j in range(i, old_n, block):
                avg = (p_view[i : i + block, j : j + block] + p_view[j : j + block, i : i + block].T) / 2
                p_view[i : i + block, j : j + block] = avg
                p_view[j : j + block, i : i + block] = avg.T
        return prec

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        hist = histories.tocsr().astype(np.float32)
        hist.data[:] = 1.0
        return sparse_dense_mm(hist, self.item_weights.detach().cpu()).to(self.device)

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        if self.seen_items is None:
            raise RuntimeError("EASEModel scores users from their training histories: fit it first.")
        return self.score_histories(self.seen_items[user_idx.cpu().numpy()])

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        return self.item_weights[item_idx].detach().clone()


__all__ = ["EASEModel", "EASEPreTrainedModel", "ease_weights", "gram_matrix"]
