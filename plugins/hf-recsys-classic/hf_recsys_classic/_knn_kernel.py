"""The loops of :func:`~hf_recsys_classic._utils.knn_prune_update` compiled with numba (the plugin's ``fast``
extra); the torch path in ``_utils`` computes the same lists (tested equal: same values and bounds, tied indices may
differ).

Each reads the dense ``(n, |T|)`` block of new similarities (every row to the touched rows) once, row by row:

- :func:`touched_top_k`: the touched rows' top-``depth`` lists, one min-heap of ``depth`` slots per touched column
  (a value enters only when it beats the column's current ``depth``-th, or a floor that ``depth`` of the column's
  values are known to reach), where ``torch.topk`` along the block's columns ranks every element.
- :func:`merge_rows`: each untouched row's new list, from its kept neighbours that did not move and its new
  similarities to the touched rows that reach its bound (found in the same pass over the row), merged as two
  best-first lists, with its raised bound; no index arrays of the hits, no padded blocks.
- :func:`divide`: the shrunk cosine's division by ``|a| |b| + shrink``, in place.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import torch

_HAS_NUMBA = importlib.util.find_spec("numba") is not None


def available() -> bool:
    """Whether numba is installed (``pip install "hf-recsys-classic[fast]"``)."""
    return _HAS_NUMBA


def _touched_top_k(cross, depth, lo, hv, hi):
    n, m = cross.shape
    mins = lo.copy()  # per column: what a value must pass to enter (its heap's root, or the column's floor)
    for r in range(n):
        row = cross[r]
        for j in range(m):
            v = row[j]
            if v > mins[j]:  # the heaps start full of zeros: only positive values enter; the root is replaced
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
                mins[j] = max(hv[j, 0], lo[j])
    for j in range(m):  # best first; slots left at 0 keep index 0 (as the torch path's non-positive slots)
        order = np.argsort(-hv[j], kind="mergesort")
        hv[j] = hv[j][order]
        hi[j] = hi[j][order]


def _merge_rows(cross, t, threshold, is_touched, out_idx, out_val, bound, changed):
    n, m = cross.shape
    depth = out_idx.shape[1]
    kept_v = np.empty(depth, dtype=np.float32)
    kept_i = np.empty(depth, dtype=np.int64)
    hit_v = np.empty(m, dtype=np.float32)
    hit_i = np.empty(m, dtype=np.int64)
    for r in range(n):
        if is_touched[r]:
            continue
        n_kept, n_hit, moved = 0, 0, False
        for s in range(depth):  # the kept list, best first, without the neighbours that moved
            v = out_val[r, s]
            if v > 0:
                if is_touched[out_idx[r, s]]:
                    moved = True  # its new similarity is a hit or below the bound
                else:
                    kept_v[n_kept], kept_i[n_kept] = v, out_idx[r, s]
                    n_kept += 1
        thr, row = threshold[r], cross[r]
        for j in range(m):
            if row[j] >= thr:
                hit_v[n_hit], hit_i[n_hit] = row[j], t[j]
                n_hit += 1
        if not moved and n_hit == 0:
            continue
        changed[r] = True
        order = np.argsort(-hit_v[:n_hit], kind="mergesort")
        a = b = 0
        for s in range(depth + 1):  # merge the two best-first lists; slot ``depth`` is the best one left out
            if a < n_kept and (b >= n_hit or kept_v[a] >= hit_v[order[b]]):
                v, c = kept_v[a], kept_i[a]
                a += 1
            elif b < n_hit:
                v, c = hit_v[order[b]], hit_i[order[b]]
                b += 1
            else:
                v, c = np.float32(0.0), 0
            if s < depth:
                out_val[r, s], out_idx[r, s] = v, c
            elif v > bound[r]:
                bound[r] = v


def _divide(cross, norms, of_rows, shrink):
    n, m = cross.shape
    for r in range(n):
        a = norms[r]
        row = cross[r]
        for j in range(m):
            row[j] /= a * of_rows[j] + shrink


_compiled = None


def _kernels():
    """The jitted loops (compiled once, then loaded from numba's on-disk cache)."""
    global _compiled
    if _compiled is None:
        from numba import njit

        jit = njit(cache=True, nogil=True)
        _compiled = (jit(_touched_top_k), jit(_merge_rows), jit(_divide))
    return _compiled


def touched_top_k(cross: torch.Tensor, depth: int, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The top-``depth`` positive values of each column of ``cross`` ``(n, m)`` float32 (C order), best first, and
    their row indices; ``(m, depth)`` each, slots without a positive value 0 (index 0).

    ``floor`` ``(m,)``: for each column a value that at least ``depth`` of its entries reach (0 when unknown); only
    entries reaching it are ranked (the top ``depth`` do)."""
    m = cross.shape[1]
    hv = np.zeros((m, depth), dtype=np.float32)
    hi = np.zeros((m, depth), dtype=np.int64)
    f = floor.numpy().astype(np.float32)
    lo = np.where(f > 0, np.nextafter(f, np.float32(-np.inf)), np.float32(0)).astype(np.float32)  # v > lo: v >= f
    _kernels()[0](cross.numpy(), depth, lo, hv, hi)
    return torch.from_numpy(hi), torch.from_numpy(hv)


def divide(cross: torch.Tensor, norms: np.ndarray, rows: np.ndarray, shrink: float) -> None:
    """``cross[r, j] /= norms[r] * norms[rows[j]] + shrink`` in place (float32, as the torch path)."""
    norms = norms.astype(np.float32)
    _kernels()[2](cross.numpy(), norms, np.ascontiguousarray(norms[rows]), np.float32(shrink))


def merge_rows(cross, t, threshold, is_touched, out_idx, out_val, bound) -> torch.Tensor:
    """Merge into the kept lists ``(out_idx, out_val, bound)`` of every untouched row (updated in place) its new
    similarities in ``cross`` to the touched rows ``t`` that reach its ``threshold``; returns the rows changed."""
    changed = np.zeros(len(out_idx), dtype=np.bool_)
    arrays = (cross, t, threshold, is_touched, out_idx, out_val, bound)
    _kernels()[1](*(a.numpy() for a in arrays), changed)
    return torch.from_numpy(np.nonzero(changed)[0])


__all__ = ["available", "divide", "merge_rows", "touched_top_k"]
