"""Helpers shared by the classic model families: sparse views, weighting, top-k pruning, factor-model scoring."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch
from hf_recsys.data.views import Interactions
from hf_recsys.training.engine import EngineTrainedMixin, torch_threads
from tqdm.auto import tqdm

WEIGHTINGS = ("none", "tfidf", "bm25")
DENSE_BUDGET = 250_000_000  # entries of a dense float32 helper matrix (1 GB) before falling back to sparse products


def to_torch_csr(m: sp.spmatrix) -> torch.Tensor:
    """A scipy CSR matrix as a ``torch.sparse_csr_tensor`` (float32)."""
    m = m.tocsr()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the kernels used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32, copy=False)),
            size=m.shape,
            check_invariants=False,
        )


def sparse_dense_mm(m: sp.spmatrix, dense: torch.Tensor) -> torch.Tensor:
    """``m @ dense`` for a scipy sparse ``m`` and a dense torch matrix (COO kernel: the fastest on CPU here)."""
    coo = m.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    values = torch.from_numpy(coo.data.astype(np.float32, copy=False))
    t = torch.sparse_coo_tensor(idx, values, m.shape, check_invariants=False)
    return torch.sparse.mm(t._coalesced_(True), dense)


def csr_rows_dense(m: sp.spmatrix, rows: np.ndarray | None = None) -> torch.Tensor:
    """Rows of a sparse matrix as a dense float32 torch tensor."""
    sub = m if rows is None else m[rows]
    return torch.from_numpy(np.ascontiguousarray(sub.toarray(), dtype=np.float32))


def weight_rows(x: sp.csr_matrix, scheme: str, k1: float = 1.2, b: float = 0.75, ref: sp.csr_matrix | None = None):
    """Weight a (documents x terms) matrix row-wise, as implicit's ``tfidf_weight`` / ``bm25_weight`` do.

    Args:
        x: the CSR matrix to weight (rows = the entities compared, e.g. items for ItemKNN).
        scheme: ``"none"``, ``"tfidf"`` (``sqrt(x) * idf``) or ``"bm25"`` (``x (k1+1) / (k1 len_norm + x) * idf``).
        k1, b: BM25 parameters.
        ref: the matrix whose statistics (idf per term, mean row length) are used; ``x`` itself by default (pass
            the training matrix when weighting new rows, e.g. a cold user's history).

    Returns:
        A weighted CSR copy of ``x``.
    """
    x = x.tocsr().astype(np.float32, copy=True)
    if scheme == "none":
        return x
    ref = x if ref is None else ref.tocsr()
    n_docs = float(ref.shape[0])
    idf = (np.log(n_docs) - np.log1p(np.bincount(ref.indices, minlength=ref.shape[1]))).astype(np.float32)
    cols = x.indices
    if scheme == "tfidf":
        x.data = np.sqrt(x.data) * idf[cols]
        return x
    if scheme != "bm25":
        raise ValueError(f"Unknown weighting {scheme!r}; use one of {WEIGHTINGS}.")
    avg_len = max(float(np.asarray(ref.sum(axis=1)).mean()), 1e-12)
    length_norm = (1.0 - b) + b * np.asarray(x.sum(axis=1)).ravel() / avg_len
    row_of = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
    x.data = x.data * (k1 + 1.0) / (k1 * length_norm[row_of] + x.data) * idf[cols]
    return x


def row_norms(x: sp.csr_matrix) -> np.ndarray:
    """L2 norm of every row of a sparse matrix (float32)."""
    return np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()).astype(np.float32)


def knn_prune(
    left: sp.csr_matrix,
    right: sp.csr_matrix,
    k: int,
    shrink: float = 0.0,
    normalize: bool = True,
    exclude_self: bool = True,
    block_size: int = 2048,
    show_progress: bool = False,
    desc: str = "similarities",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` neighbours (in ``right``'s rows) of every row of ``left`` under cosine (or dot) similarity.

    ``sim(a, b) = <a, b> / (|a| |b| + shrink)`` (``<a, b>`` without ``normalize``). Computed by blocks of rows
    (sparse-times-dense products over cache-sized column slabs, on torch's number of threads, and a
    ``torch.topk`` per block), so memory stays at ``block_size x len(right)``.

    Returns:
        ``(indices, values)``: LongTensor and FloatTensor of shape ``(len(left), k)``, best first; slots without a
        positive similarity hold value 0 and index 0.
    """
    n_left, n_right = left.shape[0], right.shape[0]
    k = max(0, min(k, n_right - (1 if exclude_self else 0)))
    out_idx = torch.zeros(n_left, k, dtype=torch.long)
    out_val = torch.zeros(n_left, k, dtype=torch.float32)
    if k == 0:
        return out_idx, out_val
    left, right = left.tocsr().astype(np.float32), right.tocsr().astype(np.float32)
    left_norm, right_norm = row_norms(left), row_norms(right)
    if normalize and shrink == 0:  # plain cosine: normalise the rows once, no per-block division
        left = sp.diags(1.0 / np.maximum(left_norm, 1e-12)) @ left
        right = sp.diags(1.0 / np.maximum(right_norm, 1e-12)) @ right
    divide = normalize and shrink > 0
    dense_ok = right.shape[0] * right.shape[1] <= DENSE_BUDGET
    if dense_ok:  # column slabs of right^T small enough to stay in cache while a block of rows streams over them
        right_t = right.T.toarray()
        slabs = [np.ascontiguousarray(right_t[:, c : c + block_size]) for c in range(0, n_right, block_size)]
    else:
        right_t = right.T.tocsc()
    left_norm_t, right_norm_t = torch.from_numpy(left_norm), torch.from_numpy(right_norm)
    pool = ThreadPoolExecutor(min(torch.get_num_threads(), -(-n_right // block_size))) if dense_ok else None
    for start in tqdm(range(0, n_left, block_size), desc=desc, disable=not show_progress, leave=False):
        stop = min(start + block_size, n_left)
        rows = left[start:stop]
        if dense_ok:  # scipy CSR x dense: the fastest kernel here, and it releases the GIL
            buf = np.empty((stop - start, n_right), dtype=np.float32)

            def product(c: int, rows=rows, buf=buf) -> None:
                buf[:, c : c + block_size] = rows @ slabs[c // block_size]

            list(pool.map(product, range(0, n_right, block_size)))
            sims = torch.from_numpy(buf)
        else:
            sims = torch.from_numpy(np.ascontiguousarray((rows @ right_t).toarray(), dtype=np.float32))
        if divide:
            sims.div_(torch.outer(left_norm_t[start:stop], right_norm_t).add_(shrink))
        if exclude_self:
            diag = torch.arange(stop - start)
            sims[diag, diag + start] = -torch.inf
        val, idx = torch.topk(sims, k, dim=1)
        keep = val > 0
        out_val[start:stop] = torch.where(keep, val, torch.zeros_like(val))
        out_idx[start:stop] = torch.where(keep, idx, torch.zeros_like(idx))
    if pool is not None:
        pool.shutdown()
    return out_idx, out_val


def neighbours_to_csr(idx: torch.Tensor, val: torch.Tensor, n_cols: int) -> sp.csr_matrix:
    """``(n, k)`` neighbour lists as an ``(n, n_cols)`` CSR matrix (zero-valued slots dropped)."""
    n, k = idx.shape
    if k == 0:  # one item (or one user): nobody has a neighbour
        return sp.csr_matrix((n, n_cols), dtype=np.float32)
    m = sp.csr_matrix(
        (val.detach().numpy().ravel(), idx.numpy().ravel(), np.arange(0, n * k + 1, k)), shape=(n, n_cols)
    )
    m.eliminate_zeros()
    return m


def fitted_matrix(interactions: Interactions, feedback: str = "binary") -> sp.csr_matrix:
    """The user-item CSR matrix of the training log with ``binary``, ``count`` or ``rating`` values."""
    return interactions.to_csr(feedback)


def uniform_negatives(
    n: int, num_items: int, generator: torch.Generator, popularity: torch.Tensor | None = None
) -> torch.LongTensor:
    """``n`` negative items: uniform, or drawn in proportion to ``popularity`` (an interaction-count vector)."""
    if popularity is None:
        return torch.randint(num_items, (n,), generator=generator)
    return torch.multinomial(popularity, n, replacement=True, generator=generator)


def shrink_rows(table: torch.Tensor, indices: torch.Tensor, rate: float) -> torch.Tensor | None:
    """The summed L2 steps ``-rate * row`` of the rows ``indices`` of ``table`` (one per occurrence, all at the
    rows' current values) applied in place as one scaling, ``row *= 1 - rate * count``, when the table has at most
    twice as many rows as ``indices`` (one pass over a small table instead of the terms riding every gathered row
    and the scatter).

    Args:
        table: ``(rows, ...)`` parameter table, updated in place.
        indices: the rows' occurrences in a batch (``(n,)`` int64).
        rate: the step per occurrence (``2 * regularization * learning_rate`` for ``regularization * ||row||^2``).

    Returns:
        The ``(rows,)`` scale applied (reuse it for a table indexed alike, e.g. item biases), or ``None`` when the
        table is larger: then nothing was done and the caller adds the terms to its per-row steps.
    """
    if table.shape[0] > 2 * len(indices):
        return None
    scale = torch.bincount(indices, minlength=table.shape[0]).to(table.dtype).mul_(-rate).add_(1.0)
    table.mul_(scale.view(-1, *(1,) * (table.dim() - 1)))
    return scale


def positive_pairs(interactions) -> tuple[torch.LongTensor, torch.LongTensor, sp.csr_matrix]:
    """Every distinct (user, item) pair of the log as index tensors, and the binary user x item matrix."""
    csr = interactions.to_csr("binary")
    coo = csr.tocoo()
    return torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(coo.col.astype(np.int64)), csr


def padded_rows(m: sp.csr_matrix) -> tuple[torch.LongTensor, torch.Tensor, torch.Tensor]:
    """The rows of a CSR matrix as padded ``(n, max_len)`` column indices, values and a 0/1 mask."""
    m = m.tocsr()
    lengths = np.diff(m.indptr)
    width = max(int(lengths.max(initial=0)), 1)
    pos = np.arange(m.nnz) - np.repeat(m.indptr[:-1], lengths)
    rows = np.repeat(np.arange(m.shape[0]), lengths)
    idx = torch.zeros(m.shape[0], width, dtype=torch.long)
    val = torch.zeros(m.shape[0], width)
    mask = torch.zeros(m.shape[0], width)
    idx[rows, pos] = torch.from_numpy(m.indices.astype(np.int64))
    val[rows, pos] = torch.from_numpy(m.data.astype(np.float32))
    mask[rows, pos] = 1.0
    return idx, val, mask


class SGDFactorMixin(EngineTrainedMixin):
    """What BPRMF and BiasedMF share: training by the engine (with their closed-form ``sgd_step`` hook when the
    config's optimizer is ``"sgd"``, autograd on ``forward``'s loss otherwise), one torch thread during ``fit`` (small
    tensors: on a shared 2-core machine the steps ran up to 10x slower with 2 threads; ``fit(..., num_threads=n)``
    overrides it) and scoring through ``forward``."""

    fit_num_threads = 1

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self.forward(user_idx).scores

    def score_pairs_idx(self, user_idx: torch.LongTensor, item_idx: torch.LongTensor) -> torch.Tensor:
        return self.forward(user_idx, item_idx).scores

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        emb = torch.nn.functional.normalize(self.item_embeddings.weight, dim=-1)
        return emb[item_idx] @ emb.T


__all__ = [
    "WEIGHTINGS",
    "SGDFactorMixin",
    "positive_pairs",
    "shrink_rows",
    "csr_rows_dense",
    "fitted_matrix",
    "knn_prune",
    "neighbours_to_csr",
    "padded_rows",
    "row_norms",
    "sparse_dense_mm",
    "to_torch_csr",
    "torch_threads",
    "uniform_negatives",
    "weight_rows",
]
