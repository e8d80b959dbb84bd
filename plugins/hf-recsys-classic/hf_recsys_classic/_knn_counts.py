"""Incremental neighbour lists from kept co-occurrence counts: the loops of
:func:`~hf_recsys_classic._utils.knn_count_update`, compiled with numba (the plugin's ``fast`` extra; imported only
where used).

The state is the dense matrix ``counts[a, b] = <x_a, x_b>`` of the binary row matrix ``x`` (``counts[a, a]`` is row
``a``'s length, so the norms are on its diagonal), which :func:`~hf_recsys_classic._utils.knn_prune` fills during a
fit at the cost of writing each co-occurring pair once. An update that adds the pairs ``D`` to ``x`` runs
:func:`update`, one pass over the rows (split across threads; each row's counts and list are its own):

- row ``r``'s counts get its row of ``D x'^T + x D^T``: for each column ``c`` of ``r`` that has new pairs, every row
  of ``c`` when ``(r, c)`` is new, else the rows new to ``c`` (the new pairs' work, not the touched rows': no
  sparse product);
- its list is rebuilt only when a pair moved or a listed row's norm moved, from the kept entries (still best
  first), the recomputed ones and the moved pairs that reach the row's bound (every row left out of a list is at
  most as similar as its bound; a touched row's norm grew, so its unmoved pairs only fell, by at most
  ``(|a| + s) / (|a'| + s)``), merged as best-first lists;
- a row whose ``k``-th value falls below its bound is recomputed in full from its row of ``counts`` (a dense scan).

Similarities are ``c / (|a| |b| + shrink)`` in float32, as the fit's divided path computes them.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hf_recsys.data.arrays import unique
from numba import njit, prange

from ._knn_sparse import _offer


@njit(cache=True, nogil=True)
def _sim(c, a, b, shrink):
    return np.float32(c) / (a * b + shrink)


@njit(cache=True, nogil=True)
def _part(
    counts, start, stop, n_old, k, shrink, rc_ptr, rc_slots, c_ptr, c_rows, nr_ptr, nr_slots, nc_ptr, nc_rows, norms,
    old_norms, touched, idx, val, bound, out_idx, out_val, out_bound,
):  # fmt: skip
    """Rows ``start .. stop``: each row's counts, then its list (see :func:`update`)."""
    n = len(norms)
    width, depth = idx.shape[1], out_idx.shape[1]
    stamp = np.full(n, -1, dtype=np.int64)  # a row's moved pairs, once each
    new_col = np.full(len(nc_ptr) - 1, -1, dtype=np.int64)  # the touched columns of a row's new pairs
    moved = np.empty(n, dtype=np.int64)
    keep_v = np.empty(width, dtype=np.float32)
    keep_i = np.empty(width, dtype=np.int64)
    chg_v = np.empty(width + n, dtype=np.float32)
    chg_i = np.empty(width + n, dtype=np.int64)
    small_perm = np.empty(32, dtype=np.int64)
    hv = np.empty(depth, dtype=np.float32)
    hi = np.empty(depth, dtype=np.int64)
    redone = 0
    for r in range(start, stop):
        for p in range(nr_ptr[r], nr_ptr[r + 1]):
            new_col[nr_slots[p]] = r
        n_moved = 0
        for p in range(rc_ptr[r], rc_ptr[r + 1]):  # row r of D x'^T + x D^T: its columns with new pairs
            c = rc_slots[p]
            if new_col[c] == r:  # (r, c) is new: r now meets every row of column c
                lo, hi_, rows_of = c_ptr[c], c_ptr[c + 1], c_rows
            else:  # r had c: it meets the rows new to column c
                lo, hi_, rows_of = nc_ptr[c], nc_ptr[c + 1], nc_rows
            for q in range(lo, hi_):
                b = rows_of[q]
                counts[r, b] += 1
                if stamp[b] != r and b != r:
                    stamp[b] = r
                    moved[n_moved] = b
                    n_moved += 1
        lists = r < n_old
        need = touched[r] or n_moved > 0
        if lists and not need:
            for s in range(width):
                if val[r, s] > 0 and touched[idx[r, s]]:
                    need = True
                    break
        if not need:
            for s in range(depth):
                out_idx[r, s], out_val[r, s] = (idx[r, s], val[r, s]) if s < width else (0, np.float32(0.0))
            out_bound[r] = bound[r]
            continue
        a = norms[r]
        base = np.float32(0.0)
        if lists and old_norms[r] > 0:  # a touched row's unmoved pairs fell by at most (|a_old| + s) / (|a| + s)
            base = bound[r] if not touched[r] else np.float32(bound[r] * ((old_norms[r] + shrink) / (a + shrink)))
        n_keep = n_chg = 0  # the kept entries that did not move (still best first), and the moved candidates
        if lists:
            for s in range(width):
                v, j = val[r, s], idx[r, s]
                if v <= 0:
                    continue
                stamp[j] = -2 - r  # listed: not a moved candidate again
                if touched[r] or touched[j]:  # a norm moved (and maybe the count): the value recomputed
                    chg_v[n_chg], chg_i[n_chg] = _sim(counts[r, j], a, norms[j], shrink), j
                    n_chg += 1
                else:
                    keep_v[n_keep], keep_i[n_keep] = v, j
                    n_keep += 1
        for t in range(n_moved):  # moved pairs left out of the list: only those reaching the bound can enter
            j = moved[t]
            if stamp[j] == -2 - r:
                continue
            v = _sim(counts[r, j], a, norms[j], shrink)
            if v > 0 and v >= base:
                chg_v[n_chg], chg_i[n_chg] = v, j
                n_chg += 1
        if n_chg == 0 and not touched[r]:  # nothing entered or moved: the list stands
            for s in range(depth):
                out_idx[r, s], out_val[r, s] = (idx[r, s], val[r, s]) if s < width else (0, np.float32(0.0))
            out_bound[r] = bound[r]
            continue
        if n_chg > 32:
            perm = np.argsort(-chg_v[:n_chg], kind="mergesort")
        else:  # a few: insertion sort, no allocation
            perm = small_perm
            for t in range(n_chg):
                v, pos = chg_v[t], t
                while pos > 0 and chg_v[perm[pos - 1]] < v:
                    perm[pos] = perm[pos - 1]
                    pos -= 1
                perm[pos] = t
        p_keep = p_chg = 0
        b = base
        for s in range(depth + 1):  # merge the two best-first lists; slot ``depth`` is the best one left out
            if p_keep < n_keep and (p_chg >= n_chg or keep_v[p_keep] >= chg_v[perm[p_chg]]):
                v, j = keep_v[p_keep], keep_i[p_keep]
                p_keep += 1
            elif p_chg < n_chg:
                v, j = chg_v[perm[p_chg]], chg_i[perm[p_chg]]
                p_chg += 1
            else:
                v, j = np.float32(0.0), 0
            if s < depth:
                out_val[r, s], out_idx[r, s] = v, j
            elif v > b:
                b = v
        out_bound[r] = b
        if b > 0 and out_val[r, k - 1] < b:  # the k-th may not be exact: the whole row from its counts
            redone += 1
            filled = 0
            for j in range(n):
                c = counts[r, j]
                if c > 0 and j != r:
                    filled = _offer(hv, hi, filled, _sim(c, a, norms[j], shrink), j)
            order = np.argsort(-hv[:filled], kind="mergesort")
            for s in range(depth):
                if s < filled:
                    out_val[r, s], out_idx[r, s] = hv[order[s]], hi[order[s]]
                else:
                    out_val[r, s], out_idx[r, s] = np.float32(0.0), 0
            out_bound[r] = out_val[r, depth - 1] if filled == depth else np.float32(0.0)
    return redone


@njit(cache=True, nogil=True, parallel=True)
def _all(
    counts, n_old, k, shrink, rc_ptr, rc_slots, c_ptr, c_rows, nr_ptr, nr_slots, nc_ptr, nc_rows, norms, old_norms,
    touched, idx, val, bound, out_idx, out_val, out_bound, n_parts,
):  # fmt: skip
    n = len(norms)
    redone = np.zeros(n_parts, dtype=np.int64)
    for part in prange(n_parts):
        start, stop = part * n // n_parts, (part + 1) * n // n_parts
        redone[part] = _part(
            counts, start, stop, n_old, k, shrink, rc_ptr, rc_slots, c_ptr, c_rows, nr_ptr, nr_slots, nc_ptr,
            nc_rows, norms, old_norms, touched, idx, val, bound, out_idx, out_val, out_bound,
        )  # fmt: skip
    return redone.sum()


@njit(cache=True, nogil=True)
def _group(keys, values, size):
    """``values`` grouped by ``keys`` in ``0 .. size`` (a counting sort, stable): CSR-style ``(ptr, values)``."""
    ptr = np.zeros(size + 1, dtype=np.int64)
    for key in keys:
        ptr[key + 1] += 1
    for i in range(size):
        ptr[i + 1] += ptr[i]
    fill = ptr[:-1].copy()
    out = np.empty(len(keys), dtype=np.int64)
    for i in range(len(keys)):
        out[fill[keys[i]]] = values[i]
        fill[keys[i]] += 1
    return ptr, out


@njit(cache=True, nogil=True)
def _column_rows(indptr, indices, slot, n_slots):
    ptr = np.zeros(n_slots + 1, dtype=np.int64)
    for p in range(len(indices)):
        if slot[indices[p]] >= 0:
            ptr[slot[indices[p]] + 1] += 1
    for i in range(n_slots):
        ptr[i + 1] += ptr[i]
    fill = ptr[:-1].copy()
    out = np.empty(ptr[-1], dtype=np.int64)
    for r in range(len(indptr) - 1):
        for p in range(indptr[r], indptr[r + 1]):
            s = slot[indices[p]]
            if s >= 0:
                out[fill[s]] = r
                fill[s] += 1
    return ptr, out


def column_rows(m, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows of each of the ``columns`` of the CSR matrix ``m``, CSR-style ``(ptr, rows)``, by one pass over its
    non-zeros (no transposed copy)."""
    slot = np.full(m.shape[1], -1, dtype=np.int64)
    slot[columns] = np.arange(len(columns))
    return _column_rows(m.indptr, m.indices, slot, len(columns))


def update(counts, pairs, columns, k, depth, shrink, norms, old_norms, touched, idx, val, bound):
    """Add the new ``pairs`` to ``counts`` and rebuild the lists they may move, row by row (rows split across
    torch's number of threads; each row's counts and list are its own).

    Args:
        counts: the ``(>= n, >= n)`` integer co-occurrence matrix before the pairs (updated in place).
        pairs: ``(rows, columns)`` of the pairs added to the binary row matrix (each once, none there before).
        columns: a callable taking the sorted distinct columns of ``pairs`` and returning the rows of each after the
            update, CSR-style ``(ptr, rows)``.
        k, depth, shrink: the top ``k`` kept exact in ``depth``-deep lists; the cosine's shrinkage.
        norms, old_norms: float32 row norms after and before (0 for a row that was empty or new), ``(n,)``.
        touched: bool per row: the rows with new pairs.
        idx, val, bound: the old lists (``(n_old, width)``, best first) and bounds.

    Returns:
        ``(idx, val, bound, recomputed)``: numpy ``(n, depth)`` lists, their bounds and the rows recomputed from
        their counts in full.
    """
    import numba
    import torch

    n = len(norms)
    rows, cols = (np.asarray(a, dtype=np.int64) for a in pairs)
    used, slots = unique(cols, return_inverse=True)
    c_ptr, c_rows = (np.asarray(a, dtype=np.int64) for a in columns(used))
    if len(c_ptr) != len(used) + 1:
        raise ValueError(f"update: {len(c_ptr) - 1} columns given for the pairs' {len(used)}.")
    nr_ptr, nr_slots = _group(rows, slots, n)
    nc_ptr, nc_rows = _group(slots, rows, len(used))
    rc_ptr, rc_slots = _group(c_rows, np.repeat(np.arange(len(used)), np.diff(c_ptr)), n)
    out_idx = np.zeros((n, depth), dtype=np.int64)
    out_val = np.zeros((n, depth), dtype=np.float32)
    out_bound = np.zeros(n, dtype=np.float32)
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        redone = _all(
            counts, len(idx), k, np.float32(shrink), rc_ptr, rc_slots, c_ptr, c_rows, nr_ptr, nr_slots, nc_ptr,
            nc_rows, norms, old_norms, touched, idx, val, bound, out_idx, out_val, out_bound,
            max(1, min(n, 4 * threads)),
        )  # fmt: skip
    finally:
        numba.set_num_threads(previous)
    return out_idx, out_val, out_bound, int(redone)


def warm_up(dtype) -> None:
    """Load the compiled loops for counts of ``dtype`` (from numba's cache; compiled on the first use), so that the
    first update does not pay for it (about 30 ms a process)."""
    counts = np.zeros((2, 2), dtype=dtype)
    one = np.ones(1, dtype=np.int64)
    pairs, columns = (one * 0, one * 0), lambda used: (np.array([0, 1]), one * 0)
    norms = np.ones(2, dtype=np.float32)
    idx, val = np.zeros((2, 1), dtype=np.int64), np.zeros((2, 1), dtype=np.float32)
    update(counts, pairs, columns, 1, 1, 0.0, norms, norms, np.ones(2, bool), idx, val, val[:, 0])
    column_rows(sp.csr_matrix(np.ones((1, 1), dtype=np.float32)), np.zeros(1, dtype=np.int64))


__all__ = ["column_rows", "update", "warm_up"]
