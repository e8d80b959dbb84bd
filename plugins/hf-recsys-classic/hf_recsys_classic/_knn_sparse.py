"""The loops of :func:`~hf_recsys_classic._utils.knn_prune` (a fit's neighbour lists) compiled with numba (the
plugin's ``fast`` extra; imported only where used, when numba is installed).

:func:`sparse_top_k` accumulates each row's similarities from the rows it shares a column with (only the
co-occurrences, where the torch path multiplies every row by a dense block of all the others), then keeps its top
``k`` with a min-heap over those candidates; the rows are split across threads. The products are summed in the
same order as a sparse-times-dense product (over the row's columns, in order).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange


@njit(cache=True, nogil=True)
def _offer(hv, hi, filled, v, j):
    """Offer ``(v, j)`` to the min-heap ``hv[:filled]`` of capacity ``len(hv)``; returns the new fill."""
    k = len(hv)
    if filled < k:  # sift up from the end
        pos = filled
        while pos > 0:
            parent = (pos - 1) // 2
            if hv[parent] <= v:
                break
            hv[pos], hi[pos] = hv[parent], hi[parent]
            pos = parent
        hv[pos], hi[pos] = v, j
        return filled + 1
    if v <= hv[0]:
        return filled
    pos = 0  # replace the root, sift down
    while True:
        child = 2 * pos + 1
        if child >= k:
            break
        if child + 1 < k and hv[child + 1] < hv[child]:
            child += 1
        if hv[child] >= v:
            break
        hv[pos], hi[pos] = hv[child], hi[child]
        pos = child
    hv[pos], hi[pos] = v, j
    return filled


@njit(cache=True, nogil=True)
def _rows(
    lp, li, ld, rp, ri, rd, start, stop, k, exclude_self, lnorm, rnorm, shrink, divide, out_idx, out_val, counts, store
):
    n_right = len(rnorm)
    acc = np.zeros(n_right, dtype=np.float32)
    seen = np.zeros(n_right, dtype=np.bool_)
    cand = np.empty(n_right, dtype=np.int64)
    hv = np.empty(k, dtype=np.float32)
    hi = np.empty(k, dtype=np.int64)
    for r in range(start, stop):
        n_cand = 0
        for p in range(lp[r], lp[r + 1]):
            u, a = li[p], ld[p]
            for q in range(rp[u], rp[u + 1]):
                j = ri[q]
                if not seen[j]:
                    seen[j] = True
                    cand[n_cand] = j
                    n_cand += 1
                acc[j] += a * rd[q]
        filled = 0
        for t in range(n_cand):
            j = cand[t]
            v = acc[j]
            acc[j], seen[j] = 0.0, False
            if store == 1:  # raw dot products of binary rows: the counts themselves
                counts[r, j] = int(v + 0.5)
            elif store == 2:  # of unit rows: scaled back by the norms
                counts[r, j] = int(v * lnorm[r] * rnorm[j] + 0.5)
            if exclude_self and j == r:
                continue
            if divide:
                v = v / (lnorm[r] * rnorm[j] + shrink)
            if v > 0:
                filled = _offer(hv, hi, filled, v, j)
        order = np.argsort(-hv[:filled], kind="mergesort")  # best first; the other slots stay 0 (index 0)
        for s in range(filled):
            out_val[r, s], out_idx[r, s] = hv[order[s]], hi[order[s]]


@njit(cache=True, nogil=True, parallel=True)
def _all_rows(
    lp, li, ld, rp, ri, rd, k, exclude_self, lnorm, rnorm, shrink, divide, out_idx, out_val, n_parts, counts, store
):
    n = len(lp) - 1
    for part in prange(n_parts):
        start, stop = part * n // n_parts, (part + 1) * n // n_parts
        _rows(
            lp, li, ld, rp, ri, rd, start, stop, k, exclude_self, lnorm, rnorm, shrink, divide, out_idx, out_val,
            counts, store,
        )  # fmt: skip


def sparse_top_k(
    left,
    right_t,
    k: int,
    exclude_self: bool,
    left_norm,
    right_norm,
    shrink: float,
    divide: bool,
    counts: np.ndarray | None = None,
    unit_rows: bool = False,
):
    """Top-``k`` positive similarities of each row of ``left`` (CSR, ``(n, d)``) to the rows of the matrix whose
    transpose is ``right_t`` (CSR, ``(d, m)``): ``<a, b>``, divided by ``|a| |b| + shrink`` when ``divide``; a row's
    similarity to the right row of the same index is left out with ``exclude_self``. Runs on torch's number of
    threads. ``counts`` (an integer ``(>= n, >= m)`` array of zeros), when given, receives every co-occurring pair's
    dot product of the binary rows before any weighting, rounded: ``<a, b>`` itself, or, with ``unit_rows`` (the
    rows were divided by ``left_norm`` / ``right_norm``), ``<a, b> |a| |b|``.

    Returns:
        ``(indices, values)``, LongTensor and FloatTensor ``(n, k)``, best first; slots without a positive
        similarity hold value 0 and index 0 (as the torch path's).
    """
    n, m = left.shape[0], right_t.shape[1]
    if len(right_norm) != m or left.shape[1] != right_t.shape[0]:
        raise ValueError(f"sparse_top_k: shapes {left.shape} x {right_t.shape} with {len(right_norm)} right norms.")
    out_idx = np.zeros((n, k), dtype=np.int64)
    out_val = np.zeros((n, k), dtype=np.float32)
    if n == 0 or k == 0:
        return torch.from_numpy(out_idx), torch.from_numpy(out_val)
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        _all_rows(
            left.indptr.astype(np.int64), left.indices.astype(np.int64), left.data.astype(np.float32),
            right_t.indptr.astype(np.int64), right_t.indices.astype(np.int64), right_t.data.astype(np.float32),
            k, bool(exclude_self), np.asarray(left_norm, np.float32), np.asarray(right_norm, np.float32),
            np.float32(shrink), bool(divide), out_idx, out_val, max(1, min(n, 16 * threads)),
            np.zeros((1, 1), np.int32) if counts is None else counts, 0 if counts is None else 1 + bool(unit_rows),
        )  # fmt: skip
    finally:
        numba.set_num_threads(previous)
    return torch.from_numpy(out_idx), torch.from_numpy(out_val)


__all__ = ["sparse_top_k"]
