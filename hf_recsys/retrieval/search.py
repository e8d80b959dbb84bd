"""Top-k from an index, with ``exclude_seen``, candidate filters and any ``k`` honoured exactly.

An ANN index answers "the ``f`` nearest items"; a recommender must answer "the ``k`` best *eligible* items"
(not seen, in the candidate set). :func:`topk_eligible` over-fetches ``f = (k + most seen items in the batch)``
scaled by the inverse share of allowed items, takes the model's exact score of what came back (faiss' inner
products where they are exact, a re-scoring where the index approximates: PQ codes, the L2 reduction), drops the
ineligible, and for rows still short of ``k`` fetches 4x more, twice; rows still short after that (or once the
fetch covers the catalogue) are scored exactly over every item. So a row gets fewer than ``k`` items only when
fewer than ``k`` items are eligible at all; the missing places hold ``-inf`` (the contract of ``recommend``) and
a warning says how many rows were short.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from ..data.arrays import unique
from .embeddings import RetrievalEmbeddings
from .index import FaissIndex

logger = logging.getLogger(__name__)

EXACT_CANDIDATES = 4096  # a candidate set this small is scored exactly: cheaper than over-fetching from the index
REFILL_ROUNDS = 2
EXACT_CELLS = 1 << 26  # most (query, item) scores held at once by the exact fallback (256 MB of float32)
INDEX_BATCH = 8192  # queries per faiss search: faiss is several times faster per query at 5,000 than at 1,000
PROBE_ROWS = 32


class StaleIndexError(ValueError, RuntimeError):
    """The model's item embeddings changed since its index was built."""


def _np(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.detach().float().cpu().numpy())


def fingerprint(vectors: np.ndarray) -> str:
    """sha256 of the float32 item matrix (its shape included)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    h = hashlib.sha256(np.asarray(x.shape, dtype=np.int64).tobytes())
    h.update(x.tobytes())
    return h.hexdigest()


@dataclass
class ModelIndex:
    """A model's item index: the MIPS index, the item-similarity index and what detects a stale one.

    Args:
        main: index over the items' retrieval vectors (``recommend``).
        similar: index over the unit item vectors (``similar_items``), or ``None``.
        fingerprint: sha256 of the item vectors the index was built from.
        probe_rows, probe_vectors: a few item rows and their vectors at build time, compared at every query
            (a cheap check; the full fingerprint is checked on save and load).
        info: kind, parameters and the recall measured at build time.
    """

    main: FaissIndex
    similar: FaissIndex | None
    fingerprint: str
    probe_rows: np.ndarray
    probe_vectors: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def check_fresh(self, emb: RetrievalEmbeddings) -> None:
        """Raise :class:`StaleIndexError` when the probed item vectors differ from the model's current ones."""
        rows = torch.as_tensor(self.probe_rows)
        now = _np(emb.item_vectors(rows)) if len(rows) else self.probe_vectors
        if now.shape != self.probe_vectors.shape or not np.array_equal(now, self.probe_vectors):
            raise StaleIndexError(
                "The model's item embeddings changed since build_index(): the index would return stale results. "
                "Call model.build_index(...) again, or model.drop_index() to score exactly."
            )


def probe(vectors: np.ndarray, num: int = PROBE_ROWS) -> tuple[np.ndarray, np.ndarray]:
    rows = unique(np.linspace(0, len(vectors) - 1, num=min(num, len(vectors))).astype(np.int64))
    return rows, vectors[rows].copy()


def exact_scores(
    vectors: Callable[[torch.Tensor | None], torch.Tensor], q: np.ndarray, off: np.ndarray, ids: np.ndarray
) -> np.ndarray:
    """Model scores ``q . v_i + off`` of the fetched ``ids`` ``(b, f)``; ``-inf`` where ``ids == -1``."""
    flat = torch.as_tensor(np.maximum(ids, 0).reshape(-1))
    v = _np(vectors(flat)).reshape(ids.shape[0], ids.shape[1], -1)
    scores = np.einsum("bd,bfd->bf", q, v) + off[:, None]
    scores[ids < 0] = -np.inf
    return scores.astype(np.float32)


def _banned(rows: np.ndarray, ids: np.ndarray, banned: sp.csr_matrix | None, n: int) -> np.ndarray:
    """``(b, f)`` True where ``ids[j]`` is in row ``rows[j]`` of ``banned``."""
    if banned is None or banned.nnz == 0:
        return np.zeros(ids.shape, dtype=bool)
    sub = banned[rows]
    keys = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(sub.indptr)) * n + sub.indices
    return np.isin(np.arange(len(rows), dtype=np.int64)[:, None] * n + ids, keys)


def _take_topk(scores: np.ndarray, ids: np.ndarray | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` per row of ``scores``: ``(ids, scores)``, with ``ids`` the column positions when ``ids`` is
    ``None``; rows narrower than ``k`` are padded with filler (``-inf``)."""
    kk = min(k, scores.shape[1])
    if kk < scores.shape[1]:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
    s = np.take_along_axis(scores, part, 1)
    order = np.argsort(-s, axis=1, kind="stable")
    out_s, pos = np.take_along_axis(s, order, 1), np.take_along_axis(part, order, 1)
    out_i = pos if ids is None else np.take_along_axis(ids, pos, 1)
    if kk < k:
        out_s = np.pad(out_s, ((0, 0), (0, k - kk)), constant_values=-np.inf)
        out_i = np.pad(out_i, ((0, 0), (0, k - kk)), mode="edge")  # filler, marked by its -inf score
    return out_i, out_s


def exact_topk(
    vectors: Callable[[torch.Tensor | None], torch.Tensor],
    q: np.ndarray,
    off: np.ndarray,
    k: int,
    banned: sp.csr_matrix | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` eligible items of every query (over ``allowed`` items only, if given)."""
    full = _np(vectors(None))
    cand = None if allowed is None else np.flatnonzero(allowed)
    scores = q @ (full if cand is None else full[cand]).T + off[:, None]
    if banned is not None and banned.nnz:
        rows, cols = np.repeat(np.arange(len(q)), np.diff(banned.indptr)), banned.indices
        if cand is not None:  # banned items as positions among the candidates
            pos = np.minimum(np.searchsorted(cand, cols), len(cand) - 1)
            hit = cand[pos] == cols
            rows, cols = rows[hit], pos[hit]
        scores[rows, cols] = -np.inf
    pos, top = _take_topk(scores, None, k)
    return (pos if cand is None else cand[pos]), top


def topk_eligible(
    index: FaissIndex,
    vectors: Callable[[torch.Tensor | None], torch.Tensor],
    q: np.ndarray,
    off: np.ndarray,
    k: int,
    banned: sp.csr_matrix | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` eligible items per query through ``index``, by over-fetch and refill (see the module docs).

    Args:
        index: the faiss index over ``vectors``.
        vectors: ``vectors(idx)`` -> the model's current item vectors (exact re-scoring and fallback).
        q, off: ``(b, d)`` queries and ``(b,)`` score offsets.
        k: items per query.
        banned: CSR ``(b, num_items)`` of items each query must not get (seen items), or ``None``.
        allowed: boolean ``(num_items,)`` mask of the candidate items, or ``None`` for all.

    Returns:
        ``(ids, scores)`` of shape ``(b, k)``, best first; ``-1`` / ``-inf`` where fewer than ``k`` are eligible.
    """
    n, b = index.num_items, len(q)
    n_allowed = n if allowed is None else int(allowed.sum())
    out_i, out_s = np.full((b, k), -1, dtype=np.int64), np.full((b, k), -np.inf, dtype=np.float32)
    most_banned = int(np.diff(banned.indptr).max()) if banned is not None and b else 0
    fetch = min(n, int(math.ceil((k + most_banned) * n / max(n_allowed, 1))))
    todo = np.arange(b)
    for _ in range(REFILL_ROUNDS + 1):
        raw, ids = index.search(q[todo], fetch)
        if index.exact_scores:  # faiss' inner products of the stored vectors (checked fresh) are the scores
            scores = np.where(ids < 0, -np.inf, raw + off[todo, None]).astype(np.float32)
        else:
            scores = exact_scores(vectors, q[todo], off[todo], ids)
        bad = (ids < 0) | _banned(todo, ids, banned, n)
        if allowed is not None:
            bad |= ~allowed[np.maximum(ids, 0)]
        scores[bad] = -np.inf
        done = (~bad).sum(1) >= k
        out_i[todo[done]], out_s[todo[done]] = _take_topk(scores[done], ids[done], k)
        todo = todo[~done]
        if not len(todo) or fetch >= n:
            break
        fetch = min(n, fetch * 4)
    step = max(1, EXACT_CELLS // max(n_allowed, 1))
    for start in range(0, len(todo), step):  # the index could not deliver k eligible items: score these exactly
        rows = todo[start : start + step]
        sub_banned = banned[rows] if banned is not None else None
        out_i[rows], out_s[rows] = exact_topk(vectors, q[rows], off[rows], k, sub_banned, allowed)
        short = int(np.isneginf(out_s[todo]).any(1).sum())
        if short:
            warnings.warn(
                f"{short} of {b} queries have fewer than k={k} eligible items: their last places hold -inf.",
                stacklevel=3,
            )
    return out_i, out_s


__all__ = ["ModelIndex", "StaleIndexError", "exact_scores", "exact_topk", "fingerprint", "topk_eligible"]
