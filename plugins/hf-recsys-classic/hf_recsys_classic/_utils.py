"""Helpers shared by the classic model families: sparse views, weighting, top-k pruning, factor-model scoring."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
import torch
from hf_recsys.data.arrays import unique
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
    """L2 norm of every row of a sparse matrix (float32); the squares by one pass over the non-zeros (``power``:
    the same products as ``x.multiply(x)``, without its sparse element-wise product)."""
    return np.sqrt(np.asarray(x.power(2).sum(axis=1)).ravel()).astype(np.float32)


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
    kernel: str = "auto",
    counts: np.ndarray | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` neighbours (in ``right``'s rows) of every row of ``left`` under cosine (or dot) similarity.

    ``sim(a, b) = <a, b> / (|a| |b| + shrink)`` (``<a, b>`` without ``normalize``). ``kernel="numba"`` computes
    each row's similarities from the co-occurrences only and keeps its top ``k`` with a heap
    (:func:`hf_recsys_classic._knn_sparse.sparse_top_k`, on torch's number of threads); ``"torch"`` by blocks of
    rows (sparse-times-dense products over cache-sized column slabs, on torch's number of threads, and a
    ``torch.topk`` per block), so memory stays at ``block_size x len(right)``; ``"auto"`` the numba loops when numba
    is installed and the co-occurrences are fewer than the dense products' multiplications (on ml-latest-small's
    items: 61M against 980M), else the torch path. Both give the same values (tied neighbours may come in another
    order). ``counts`` (binary rows, ``left`` is ``right``: an integer array of zeros, at least ``(n, n)``) receives
    the co-occurrence counts ``<a, b>`` of every pair, as :func:`knn_count_update` keeps them (the numba loops,
    whatever ``kernel`` says).

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
    if counts is not None or _use_sparse_knn(kernel, left, right):
        from hf_recsys_classic import _knn_sparse  # imported where used: looking up one family imports only it

        right_t = right.T.tocsr()
        unit = normalize and shrink == 0
        return _knn_sparse.sparse_top_k(
            left, right_t, k, exclude_self, left_norm, right_norm, shrink, divide, counts=counts, unit_rows=unit
        )
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


def _kernel_choice(kernel: str, caller: str) -> str | None:
    """``"numba"`` or ``"torch"`` when ``kernel`` says so, ``None`` for ``"auto"`` with numba installed (the caller
    decides), ``"torch"`` for ``"auto"`` without it; a clear error for a bad value or ``"numba"`` without numba."""
    if kernel not in ("auto", "numba", "torch"):
        raise ValueError(f'kernel must be one of "auto", "numba", "torch", got {kernel!r}.')
    from hf_recsys_classic import _knn_kernel

    if kernel == "numba" and not _knn_kernel.available():
        raise ImportError(f'{caller}(kernel="numba") needs numba: pip install "hf-recsys-classic[fast]".')
    if kernel == "auto":
        return None if _knn_kernel.available() else "torch"
    return kernel


def _use_sparse_knn(kernel: str, left: sp.csr_matrix, right: sp.csr_matrix) -> bool:
    """Whether :func:`knn_prune` runs the numba co-occurrence loops (see its ``kernel``)."""
    choice = _kernel_choice(kernel, "knn_prune")
    if choice is not None:
        return choice == "numba"
    d = left.shape[1]
    pairs = np.bincount(left.indices, minlength=d).astype(np.float64) @ np.bincount(right.indices, minlength=d)
    return pairs < float(left.nnz) * right.shape[0]


def _similarity_rows(
    scaled: sp.csr_matrix, norms: np.ndarray, rows: np.ndarray, shrink: float, compiled: bool = False
) -> torch.Tensor:
    """Dense ``(n, len(rows))`` similarities of every row of ``scaled`` to its ``rows``, as :func:`knn_prune`
    computes them (``scaled`` holds unit rows when ``shrink == 0``; else raw rows, divided by ``|a| |b| + shrink``:
    in one compiled pass when ``compiled``), each row's similarity to itself ``-inf``. One sparse-times-dense product
    over ``scaled``'s non-zeros."""
    sims = torch.from_numpy(np.ascontiguousarray(scaled @ scaled[rows].T.toarray(), dtype=np.float32))
    if shrink > 0 and compiled:
        from hf_recsys_classic import _knn_kernel  # imported where used: looking up one family imports only it

        _knn_kernel.divide(sims, norms, rows, shrink)
    elif shrink > 0:  # by blocks of rows: no second matrix of this size
        norms_t = torch.from_numpy(norms)
        of_rows = norms_t[torch.from_numpy(rows)]
        for start in range(0, len(sims), 4096):
            sims[start : start + 4096].div_(torch.outer(norms_t[start : start + 4096], of_rows).add_(shrink))
    sims[torch.from_numpy(rows), torch.arange(len(rows))] = -torch.inf
    return sims


def _top_k_positive(values: torch.Tensor, indices: torch.Tensor | None, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` largest ``values`` per row (their ``indices``, or column positions), non-positive slots zeroed as in
    :func:`knn_prune`."""
    val, pos = torch.topk(values, k, dim=1)
    idx = pos if indices is None else torch.gather(indices, 1, pos)
    keep = val > 0
    return torch.where(keep, idx, torch.zeros_like(idx)), torch.where(keep, val, torch.zeros_like(val))


def _padded(t: torch.Tensor, width: int) -> torch.Tensor:
    return torch.cat([t, t.new_zeros(len(t), width - t.shape[1])], dim=1) if t.shape[1] < width else t


#: hits (row, touched column) found at once by ``knn_prune_update``'s merge: 16M, 256 MB of indices at most
_HIT_BUDGET = 1 << 24


def _merge_slab(cross, t, rows_in, threshold, stale, is_touched, lists, block_size: int) -> torch.Tensor:
    """Merge into the kept lists of the untouched rows ``rows_in`` (a slice) their new similarities that reach
    their bound (one comparison over the slab of ``cross``), in blocks of rows with similar hit counts (narrow
    merges); the lists ``(idx, val, bound)`` are updated in place. Returns the rows merged."""
    out_idx, out_val, bound = lists
    depth, lo = out_idx.shape[1], rows_in.start
    hit_row, hit_col = torch.nonzero(cross[rows_in] >= threshold[rows_in, None], as_tuple=True)  # grouped by row
    counts = torch.bincount(hit_row, minlength=rows_in.stop - lo)
    changed = torch.nonzero((stale[rows_in].any(1) | (counts > 0)) & ~is_touched[rows_in]).ravel()
    changed = changed[torch.argsort(counts[changed], stable=True)]
    first_hit = torch.cumsum(counts, 0) - counts
    for start in range(0, len(changed), block_size):
        local_rows = changed[start : start + block_size]
        rows = local_rows + lo
        kept_val, kept_idx, b = out_val[rows].clone(), out_idx[rows], bound[rows]
        kept_val[(kept_val <= 0) | stale[rows]] = -torch.inf
        c = counts[local_rows]
        local = torch.repeat_interleave(torch.arange(len(rows)), c)  # this block's hits, row by row
        slot = torch.arange(len(local)) - (torch.cumsum(c, 0) - c)[local]
        at = first_hit[local_rows][local] + slot
        width = max(1, int(c.max()))
        hit_val = torch.full((len(rows), width), -torch.inf)
        hit_val[local, slot] = cross[hit_row[at] + lo, hit_col[at]]
        hit_idx = torch.zeros((len(rows), width), dtype=torch.long)
        hit_idx[local, slot] = t[hit_col[at]]
        val, pos = torch.topk(torch.cat([kept_val, hit_val], dim=1), depth + 1, dim=1)
        idx = torch.gather(torch.cat([kept_idx, hit_idx], dim=1), 1, pos)
        keep = val[:, :depth] > 0
        out_val[rows] = torch.where(keep, val[:, :depth], torch.zeros_like(val[:, :depth]))
        out_idx[rows] = torch.where(keep, idx[:, :depth], torch.zeros_like(idx[:, :depth]))
        bound[rows] = torch.maximum(b, torch.where(torch.isfinite(val[:, depth]), val[:, depth], torch.zeros_like(b)))
    return changed + lo


#: entries of the ``(n, |T|)`` block from which ``kernel="auto"`` runs the compiled loops: below, the torch path
#: takes a few ms, less than loading the compiled loops once in a new process (0.1-0.5 s)
_KERNEL_MIN_BLOCK = 1 << 20


def _use_knn_kernel(kernel: str, block: int) -> bool:
    """Whether ``knn_prune_update`` runs its compiled loops (``kernel``: ``"auto"``, ``"numba"`` or ``"torch"``) on
    a block of ``block`` entries."""
    choice = _kernel_choice(kernel, "knn_prune_update")
    return choice == "numba" if choice is not None else block >= _KERNEL_MIN_BLOCK


def _unit_rows(x: sp.csr_matrix, norms: np.ndarray) -> sp.csr_matrix:
    """``x`` (float32 CSR) with every row divided by its norm, by one pass over the non-zeros: the float32 products
    of ``sp.diags(1 / norms) @ x`` (which :func:`knn_prune` uses) without a sparse product, the indices in ``x``'s
    order (a product may reorder them within rows: on binary rows, as the updates use, the sums are the same)."""
    out = x.copy()
    out.data *= np.repeat(1.0 / np.maximum(norms, 1e-12), np.diff(x.indptr))
    return out


def knn_prune_update(
    x: sp.csr_matrix,
    k: int,
    shrink: float,
    touched: np.ndarray,
    old_idx: torch.Tensor,
    old_val: torch.Tensor,
    old_bound: torch.Tensor | None = None,
    depth: int | None = None,
    block_size: int = 2048,
    kernel: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
    """The neighbour lists of ``knn_prune(x, x, k, shrink)`` after only the rows ``touched`` of ``x`` changed (and
    rows were appended past ``len(old_idx)``), updated from the lists before the change: the top ``k`` are exact.

    Each row keeps a list of up to ``depth >= k`` neighbours and a bound: no row outside its list is more similar
    than the bound (a fresh top-``depth`` list: its last value). The touched rows' similarities to every row are
    recomputed with one sparse product (their new lists, and every other row's new similarities to them). An
    untouched row's new list is the top of its old neighbours outside the touched set and its new similarities to
    the touched set that reach its bound; the bound rises to the best candidate left out. Its top ``k`` is then
    exact when the ``k``-th value reaches the bound (or the bound is 0: every positive similarity is listed); the
    rows where it does not are recomputed in full. Ties at the ``k``-th value may keep another of the tied rows
    than a rebuild does: both are top-k lists of the same similarities.

    Args:
        x: the new (weighted) row matrix, ``(n, d)``; rows other than ``touched`` and the new ones unchanged.
        k, shrink: as :func:`knn_prune` (normalised, self excluded).
        touched: indices of the rows that changed.
        old_idx, old_val: the lists before the change, ``(n_old, w)`` with ``w >= k`` (``knn_prune``'s output, or
            this function's).
        old_bound: the rows' bounds before the change (default: the last value of each list, as for a fresh one).
        depth: neighbours kept per row (default ``w``); more than ``k`` leaves room for neighbours to drop out
            before a row needs a full recomputation.
        block_size: rows merged at once (torch path) and rows recomputed at once.
        kernel: ``"numba"`` (the touched rows' top-k and the merge as compiled loops, one pass over the block
            each: ``pip install "hf-recsys-classic[fast]"``), ``"torch"`` (``torch.topk`` and batched merges) or
            ``"auto"`` (numba when installed and the block has at least ``_KERNEL_MIN_BLOCK`` entries); the same
            lists up to ties.

    Memory: one dense ``(n, len(touched))`` float32 block; when it would pass ``DENSE_BUDGET`` entries (or when
    more than half the rows changed) the lists are rebuilt by :func:`knn_prune` instead.

    Returns:
        ``(indices, values, bounds, recomputed)``: the new ``(n, depth)`` lists (best first; ``[:, :k]`` is the
        top ``k``), their bounds and the number of untouched rows recomputed in full.
    """
    n, n_old = x.shape[0], old_idx.shape[0]
    k = max(0, min(k, n - 1))
    depth = max(k, min(depth or old_idx.shape[1], n - 1))
    touched = np.union1d(np.asarray(touched, dtype=np.int64), np.arange(n_old, n))
    # the width changed, most rows moved, or the (n, touched) block would pass DENSE_BUDGET: a rebuild (by blocks)
    if old_idx.shape[1] < k or 2 * len(touched) > n or n * len(touched) > DENSE_BUDGET or k == 0:
        idx, val = knn_prune(x, x, depth, shrink)
        return idx, val, val[:, -1].clone() if depth else torch.zeros(n), n
    bound = torch.zeros(n)
    bound[:n_old] = old_val[:, -1] if old_bound is None else old_bound
    if old_idx.shape[1] > depth:  # lists cut shorter: what is cut off is left out
        bound[:n_old] = torch.maximum(bound[:n_old], old_val[:, depth])
    out_idx = torch.zeros(n, depth, dtype=torch.long)
    out_val = torch.zeros(n, depth, dtype=torch.float32)
    out_idx[:n_old], out_val[:n_old] = _padded(old_idx, depth)[:, :depth], _padded(old_val, depth)[:, :depth]
    if len(touched) == 0:  # nothing changed
        return out_idx, out_val, bound, 0
    x = x.tocsr().astype(np.float32)
    norms = row_norms(x)
    scaled = _unit_rows(x, norms) if shrink == 0 else x
    compiled = _use_knn_kernel(kernel, n * len(touched))
    if compiled:
        from hf_recsys_classic import _knn_kernel
    cross = _similarity_rows(scaled, norms, touched, shrink, compiled)  # (n, |T|)
    t = torch.from_numpy(touched)
    if compiled:  # the touched rows' new lists; any `depth` rows bound the depth-th similarity: the old neighbours
        old_nb, full = out_idx[t], (out_val[t] > 0).all(1)
        floor = torch.where(full, cross[old_nb, torch.arange(len(t))[:, None]].amin(1), 0.0)
        out_idx[t], out_val[t] = _knn_kernel.touched_top_k(cross, depth, floor)
    else:  # on the transposed view (no copy)
        out_idx[t], out_val[t] = _top_k_positive(cross.T, None, depth)
    bound[t] = out_val[t, -1]
    is_touched = torch.zeros(n, dtype=torch.bool)
    is_touched[t] = True
    threshold = torch.clamp(bound, min=torch.finfo(torch.float32).tiny).masked_fill_(is_touched, torch.inf)
    if compiled:
        merged = [_knn_kernel.merge_rows(cross, t, threshold, is_touched, out_idx, out_val, bound)]
    else:
        stale = is_touched[out_idx] & (out_val > 0)  # kept neighbours whose similarity moved
        slab = max(block_size, _HIT_BUDGET // max(len(touched), 1))  # rows whose hits are found at once
        lists = (out_idx, out_val, bound)
        merged = [
            _merge_slab(cross, t, slice(lo, min(lo + slab, n)), threshold, stale, is_touched, lists, block_size)
            for lo in range(0, n, slab)
        ]
    redo = torch.cat(merged)
    redo = redo[(bound[redo] > 0) & (out_val[redo, k - 1] < bound[redo])]  # k-th below the bound: recomputed
    if len(redo):
        redo_np = redo.numpy()
        for start in range(0, len(redo_np), block_size):  # full rows: their similarities to every row
            rows = redo_np[start : start + block_size]
            r = torch.from_numpy(rows)
            sims = _similarity_rows(scaled, norms, rows, shrink, compiled).T.contiguous()
            out_idx[r], out_val[r] = _top_k_positive(sims, None, depth)
            bound[r] = out_val[r, -1]
    return out_idx, out_val, bound, len(redo)


class NeighbourUpdateMixin:
    """What ItemKNN and UserKNN share for exact incremental updates: each row's neighbour list is built
    ``k + ceil(update_reserve * k)`` deep and kept in memory with its bound (not saved: after loading, the saved
    top ``k`` lists are the start), so that an update can let neighbours drop out of a list before the row needs a
    full recomputation; the model's ``neighbor_ids`` / ``neighbor_sims`` are the top ``k``. With ``update_cache``
    the fit also keeps the dense co-occurrence counts of its rows, and updates run :func:`knn_count_update` (only
    the new pairs' work); otherwise :func:`knn_prune_update` (the touched rows' similarities by a sparse product)."""

    def _neighbour_depth(self) -> int:
        cfg = self.config
        return cfg.k + int(np.ceil(getattr(cfg, "update_reserve", 0.0) * cfg.k))

    def _keeps_counts(self) -> bool:
        cfg = self.config
        return bool(getattr(cfg, "update_cache", False)) and cfg.weighting == "none" and cfg.k > 0

    def _added_pairs(self, new_pairs, seen_before: sp.csr_matrix | None, users: np.ndarray):
        """The ``(user, item)`` pairs an update added to ``seen_items``: ``new_pairs`` where ``partial_fit`` found
        them, else the difference from ``seen_before`` over the rows ``users`` (:func:`new_seen_pairs`); ``None``
        when neither tells."""
        if new_pairs is not None or seen_before is None:
            return new_pairs
        return new_seen_pairs(seen_before, self.seen_items, users)

    def _build_neighbour_lists(self, weighted: sp.csr_matrix, show_progress: bool, desc: str) -> None:
        """The fit's lists: ``k`` deep with a weighting (updates rebuild them), ``_neighbour_depth()`` without; with
        ``update_cache`` the co-occurrence counts are kept beside them."""
        cfg = self.config
        depth = self._neighbour_depth() if cfg.weighting == "none" else cfg.k
        if self._keeps_counts():
            from hf_recsys_classic import _knn_kernel

            if not _knn_kernel.available():
                raise ImportError(
                    f'{type(self).__name__}: update_cache=True needs numba: pip install "hf-recsys-classic[fast]".'
                )
        counts = _new_counts(weighted.shape[0], weighted.shape[1]) if self._keeps_counts() else None
        idx, val = knn_prune(
            weighted, weighted, depth, cfg.shrink, show_progress=show_progress, desc=desc, counts=counts
        )
        self._set_neighbour_lists(idx, val)
        self._count_state = (self.neighbor_ids, counts) if counts is not None and idx.shape[1] else None
        if self._count_state is not None:  # the update's compiled loops loaded now, not in the first update
            from hf_recsys_classic import _knn_counts

            _knn_counts.warm_up(counts.dtype)

    def _set_neighbour_lists(self, idx: torch.Tensor, val: torch.Tensor, bound: torch.Tensor | None = None) -> None:
        k = min(self.config.k, idx.shape[1])
        self.neighbor_ids = idx[:, :k].contiguous()
        self.neighbor_sims = torch.nn.Parameter(val[:, :k].contiguous(), requires_grad=False)
        if bound is None:
            bound = val[:, -1].clone() if val.shape[1] else torch.zeros(len(val))
        self._neighbour_state = (self.neighbor_ids, idx, val, bound)  # valid while neighbor_ids is this tensor

    def _update_neighbour_lists(self, rows, touched: np.ndarray, pairs=None, columns=None, shape=None) -> int:
        """Update the lists after the rows ``touched`` of the binary row matrix changed; returns the number of rows
        recomputed in full.

        Args:
            rows: a callable returning the row matrix after the update (CSR; called only where it is needed).
            touched: the rows that may have changed.
            pairs: ``(row, column)`` arrays of the pairs added to it (each once, none there before), or ``None``.
            columns: for the kept counts, a callable returning the rows of the given columns after the update
                (see :func:`knn_count_update`).
            shape: the row matrix's shape after the update (with ``pairs`` and ``columns``).
        """
        state = getattr(self, "_neighbour_state", None)
        if state is not None and state[0] is self.neighbor_ids:
            old = state[1:]
        else:  # after loading (or a table replaced by hand): the saved top-k lists, bounded by their k-th values
            old = (self.neighbor_ids.cpu(), self.neighbor_sims.detach().cpu(), None)
        cfg, depth = self.config, self._neighbour_depth()
        counts_state = getattr(self, "_count_state", None)
        kept = counts_state is not None and counts_state[0] is self.neighbor_ids
        if self._keeps_counts() and kept and pairs is not None:
            counts, (idx, val, bound, recomputed) = knn_count_update(
                counts_state[1], shape, pairs, columns, cfg.k, cfg.shrink, *old, depth=depth
            )
        elif self._keeps_counts():  # no counts yet (after loading): rebuilt with them, at the cost of a refit
            x = rows()
            counts = _new_counts(x.shape[0], x.shape[1])
            idx, val = knn_prune(x, x, depth, cfg.shrink, counts=counts)
            bound, recomputed = None, x.shape[0]
        else:
            counts = None
            idx, val, bound, recomputed = knn_prune_update(rows(), cfg.k, cfg.shrink, touched, *old, depth=depth)
        self._set_neighbour_lists(idx, val, bound)
        self._count_state = (self.neighbor_ids, counts) if counts is not None and idx.shape[1] else None
        return recomputed


def _count_dtype(n_columns: int):
    """The integer type of the kept counts: no count exceeds the number of columns."""
    return np.uint16 if n_columns < np.iinfo(np.uint16).max else np.int32


def _new_counts(n: int, n_columns: int, old: np.ndarray | None = None) -> np.ndarray:
    """A zeroed ``(cap, cap)`` count matrix with room for about 12% more rows than ``n`` (rows joining later land
    there without a copy), holding ``old`` in its corner."""
    cap = n + max(64, n // 8)
    dtype = _count_dtype(n_columns) if old is None else np.promote_types(old.dtype, _count_dtype(n_columns))
    counts = np.zeros((cap, cap), dtype=dtype)
    if old is not None:
        counts[: len(old), : len(old)] = old
    return counts


def new_seen_pairs(before: sp.csr_matrix, after: sp.csr_matrix, users: np.ndarray):
    """The ``(user, item)`` pairs of the seen-items matrix ``after`` that ``before`` lacks, from the rows ``users``
    (the users of the new interactions: every other row is the same); ``None`` when a pair of ``before`` is gone."""
    from hf_recsys.online.partial_fit import pad_csr

    users = unique(np.asarray(users, dtype=np.int64))
    diff = (after[users] - pad_csr(before, after.shape)[users]).tocoo()
    if (diff.data < 0).any():
        return None
    keep = diff.data > 0
    return users[diff.row[keep]], diff.col[keep].astype(np.int64)


def knn_count_update(
    counts: np.ndarray,
    shape: tuple[int, int],
    pairs: tuple[np.ndarray, np.ndarray],
    columns,
    k: int,
    shrink: float,
    old_idx: torch.Tensor,
    old_val: torch.Tensor,
    old_bound: torch.Tensor | None = None,
    depth: int | None = None,
):
    """The neighbour lists of ``knn_prune(x, x, k, shrink)`` for a binary row matrix ``x`` after the ``pairs`` were
    added to it, from its kept co-occurrence counts (updated in place, or grown into a new array when rows joined
    past its room): the new pairs' work (each new pair ``(r, c)`` meets the rows of column ``c``) and the merge of
    the lists that may move; no sparse product and no pass over ``x``. The top ``k`` are exact (ties at the
    ``k``-th value may keep another of the tied rows than a rebuild does).

    Args:
        counts: ``<x_a, x_b>`` for every pair of rows before the update, ``(>= n_old, >= n_old)`` integers
            (:func:`knn_prune`'s ``counts``, or this function's).
        shape: ``x``'s shape after the update.
        pairs: ``(rows, columns)`` of the added pairs, each once, none in ``x`` before.
        columns: a callable taking the sorted distinct columns of ``pairs`` and returning the rows of each after
            the update, CSR-style ``(ptr, rows)`` (e.g. ``indptr`` / ``indices`` of ``x.T`` restricted to them).
        k, shrink, old_idx, old_val, old_bound, depth: as :func:`knn_prune_update`.

    Returns:
        ``(counts, (indices, values, bounds, recomputed))``: the counts after the update and the new ``(n, depth)``
        lists (best first), their bounds and the number of rows recomputed in full from their counts.
    """
    from hf_recsys_classic import _knn_counts  # imported where used: needs numba

    (n, n_columns), n_old = shape, old_idx.shape[0]
    depth = max(k, min(depth or old_idx.shape[1], n - 1))
    if n > counts.shape[0] or np.iinfo(counts.dtype).max <= n_columns:
        counts = _new_counts(n, n_columns, old=counts[:n_old, :n_old])
    rows, cols = (np.asarray(a, dtype=np.int64) for a in pairs)
    old_counts = np.zeros(n, dtype=np.int64)
    old_counts[:n_old] = counts.diagonal()[:n_old]
    old_norms = np.sqrt(old_counts.astype(np.float32))
    norms = np.sqrt((old_counts + np.bincount(rows, minlength=n)).astype(np.float32))
    touched = np.zeros(n, dtype=bool)
    touched[rows] = True
    touched[n_old:] = True
    bound = old_val[:, -1] if old_bound is None else old_bound
    idx, val, new_bound, recomputed = _knn_counts.update(
        counts, (rows, cols), columns, max(k, 1), depth, shrink, norms, old_norms, touched,
        old_idx.numpy(), np.ascontiguousarray(old_val.detach().numpy(), dtype=np.float32),
        bound.numpy().astype(np.float32),
    )  # fmt: skip
    return counts, (torch.from_numpy(idx), torch.from_numpy(val), torch.from_numpy(new_bound), recomputed)


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
    "knn_prune_update",
    "knn_count_update",
    "new_seen_pairs",
    "NeighbourUpdateMixin",
    "neighbours_to_csr",
    "padded_rows",
    "row_norms",
    "sparse_dense_mm",
    "to_torch_csr",
    "torch_threads",
    "uniform_negatives",
    "weight_rows",
]
