"""The two selections of :func:`~hf_recsys_classic._utils.knn_prune_update` as compiled loops (numba, the plugin's
``fast`` extra); the torch path in ``_utils`` computes the same lists (tested equal up to ties).

Both read the dense ``(n, |T|)`` block of new similarities (every row to the touched rows) once, row by row:

- :func:`touched_top_k`: the touched rows' top-``depth`` lists, one min-heap of ``depth`` slots per touched column
  (a value enters only when it beats the column's current ``depth``-th): ``n |T|`` comparisons and a few thousand
  heap insertions, where ``torch.topk`` along the block's columns ranks every element.
- :func:`merge_rows`: each untouched row's new list, from its kept neighbours that did not move and its new
  similarities to the touched rows that reach its bound (found in the same pass over the row), with its raised
  bound; no index arrays of the hits, no padded blocks.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

_HAS_NUMBA = importlib.util.find_spec("numba") is not None


def available() -> bool:
    """Whether numba is installed (``pip install "hf-recsys-classic[fast]"``)."""
    return _HAS_NUMBA


def _touched_top_k(cross, depth, hv, hi):
    n, m = cross.shape
    for r in range(n):
        for j in range(m):
            v = cross[r, j]
            if v > hv[j, 0]:  # the heaps start full of zeros: only positive values enter; the root is replaced
                pos = 0
                while True:
                    child = 2 * pos + 1
                    if child >= depth:
                        break
                    if child + 1 < depth and hv[j, child + 1] < hv[j, child]:
                        child += 1
                    if hv[j, child] >= v:
                        break
                    hv[j, pos], hi[j, pos] = hv[j, child], hi[j, child]
                    pos = child
                hv[j, pos], hi[j, pos] = v, r
    for j in range(m):  # best first; slots left at 0 keep index 0 (as the torch path's non-positive slots)
        order = np.argsort(-hv[j], kind="mergesort")
        hv[j] = hv[j][order]
        hi[j] = hi[j][order]


def _merge_rows(cross, t, threshold, is_touched, out_idx, out_val, bound, changed):
    n, m = cross.shape
    depth = out_idx.shape[1]
    cand_v = np.empty(depth + m, dtype=np.float32)
    cand_i = np.empty(depth + m, dtype=np.int64)
    for r in range(n):
        if is_touched[r]:
            continue
        cnt, moved = 0, False
        for s in range(depth):
            v = out_val[r, s]
            if v > 0:
                if is_touched[out_idx[r, s]]:
                    moved = True  # a kept neighbour whose similarity changed: dropped, its new value is a hit or not
                else:
                    cand_v[cnt], cand_i[cnt] = v, out_idx[r, s]
                    cnt += 1
        thr = threshold[r]
        for j in range(m):
            v = cross[r, j]
            if v >= thr:
                cand_v[cnt], cand_i[cnt] = v, t[j]
                cnt += 1
                moved = True
        if not moved:
            continue
        changed[r] = True
        order = np.argsort(-cand_v[:cnt], kind="mergesort")
        for s in range(depth):
            if s < cnt:
                out_val[r, s], out_idx[r, s] = cand_v[order[s]], cand_i[order[s]]
            else:
                out_val[r, s], out_idx[r, s] = 0.0, 0
        if cnt > depth and cand_v[order[depth]] > bound[r]:  # the best candidate left out
            bound[r] = cand_v[order[depth]]


_compiled = None


def _kernels():
    """The jitted loops (compiled once, then loaded from numba's on-disk cache)."""
    global _compiled
    if _compiled is None:
        from numba import njit

        jit = njit(cache=True, nogil=True)
        _compiled = (jit(_touched_top_k), jit(_merge_rows))
    return _compiled


def touched_top_k(cross: torch.Tensor, depth: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``depth`` positive values of each column of ``cross`` ``(n, m)`` float32 (C order), best first, and
    their row indices; ``(m, depth)`` each, slots without a positive value 0 (index 0)."""
    m = cross.shape[1]
    hv = np.zeros((m, depth), dtype=np.float32)
    hi = np.zeros((m, depth), dtype=np.int64)
    _kernels()[0](cross.numpy(), depth, hv, hi)
    return torch.from_numpy(hi), torch.from_numpy(hv)


def merge_rows(cross, t, threshold, is_touched, out_idx, out_val, bound) -> torch.Tensor:
    """Merge into the kept lists ``(out_idx, out_val, bound)`` of every untouched row (updated in place) its new
    similarities in ``cross`` to the touched rows ``t`` that reach its ``threshold``; returns the rows changed."""
    changed = np.zeros(len(out_idx), dtype=np.bool_)
    arrays = (cross, t, threshold, is_touched, out_idx, out_val, bound)
    _kernels()[1](*(a.numpy() for a in arrays), changed)
    return torch.from_numpy(np.nonzero(changed)[0])


__all__ = ["available", "merge_rows", "touched_top_k"]
