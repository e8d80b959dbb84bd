"""Training views that need randomness: (user, positive, negatives) triples by vectorised rejection sampling.

``to_sequences`` (per-user time-ordered item sequences) lives in :mod:`hf_recsys.data.views` and is re-exported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from .views import Interactions, to_sequences


def _positives(data: Any) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """The binary CSR of known positives and the (user, item) pairs to sample for."""
    if isinstance(data, Interactions):
        known = data.known()
        return data.to_csr("binary"), known.user_idx.astype(np.int64), known.item_idx.astype(np.int64)
    if sp.issparse(data):
        csr = sp.csr_matrix(data)
        csr.sum_duplicates()
        csr.eliminate_zeros()
        csr.sort_indices()
        users = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(csr.indptr))
        return csr, users, csr.indices.astype(np.int64)
    raise TypeError(f"sample_negatives expects Interactions or a scipy sparse matrix, got {type(data).__name__}.")


def _item_probs(csr: sp.csr_matrix, distribution: str, alpha: float) -> np.ndarray | None:
    if distribution == "uniform":
        return None
    if distribution == "popularity":
        counts = np.asarray(csr.sum(axis=0)).ravel().astype(np.float64) ** alpha
        if counts.sum() == 0:
            raise ValueError("distribution='popularity' needs at least one positive interaction.")
        return counts / counts.sum()
    raise ValueError(f"distribution must be 'uniform' or 'popularity', got {distribution!r}.")


def _draw(rng: np.random.Generator, num_items: int, size: int, probs: np.ndarray | None) -> np.ndarray:
    if probs is None:
        return rng.integers(0, num_items, size=size, dtype=np.int64)
    return np.searchsorted(np.cumsum(probs), rng.random(size), side="right").clip(max=num_items - 1)


def sample_negatives(
    data: Any,
    num_negatives: int = 1,
    seed: int | None = None,
    *,
    rng: np.random.Generator | None = None,
    users: np.ndarray | None = None,
    positives: np.ndarray | None = None,
    distribution: str = "uniform",
    alpha: float = 0.75,
    max_rounds: int = 1000,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw negatives that are never among the user's positives.

    Args:
        data: :class:`Interactions` (every known row becomes a (user, positive) pair) or a ``(num_users,
            num_items)`` scipy sparse matrix (every stored entry is a pair). Its nonzeros are the positives that
            negatives must avoid.
        num_negatives: negatives per pair.
        seed: seed for a fresh ``numpy.random.Generator`` (ignored when ``rng`` is given).
        rng: a generator to draw from (advances it).
        users, positives: sample for these (user, item) index pairs instead of every pair in ``data``.
        distribution: ``"uniform"`` over items, or ``"popularity"`` (probability proportional to count**alpha).
        alpha: popularity exponent.
        max_rounds: rejection rounds before giving up (only reached when some user has almost every item).

    Returns:
        ``(users, positives, negatives)``: int64 arrays of shapes ``(n,)``, ``(n,)`` and ``(n, num_negatives)``.

    Raises:
        ValueError: a requested user has interacted with every item that can be drawn.

    Example:
        ```python
        >>> u, pos, neg = sample_negatives(interactions, num_negatives=4, seed=0)
        >>> neg.shape == (len(u), 4)
        True
        ```
    """
    if num_negatives < 1:
        raise ValueError(f"num_negatives must be >= 1, got {num_negatives}.")
    csr, pair_users, pair_items = _positives(data)
    if users is not None:
        pair_users = np.asarray(users, dtype=np.int64)
        pair_items = np.asarray(positives if positives is not None else np.full(len(pair_users), -1), dtype=np.int64)
    num_items = csr.shape[1]
    rng = rng if rng is not None else np.random.default_rng(seed)
    probs = _item_probs(csr, distribution, alpha)
    drawable = num_items if probs is None else int((probs > 0).sum())
    full = np.flatnonzero(np.diff(csr.indptr) >= drawable)
    full = full[np.isin(full, pair_users)]
    if len(full):
        raise ValueError(
            f"{len(full)} user(s) have interacted with every item that can be drawn (user indices "
            f"{full[:5].tolist()}); no negative exists for them. Drop them (e.g. with kcore_filter) first."
        )
    keys = csr.indptr  # positives as sorted keys user * num_items + item
    pos_keys = np.repeat(np.arange(csr.shape[0], dtype=np.int64), np.diff(keys)) * num_items + csr.indices
    n = len(pair_users)
    neg = _draw(rng, num_items, n * num_negatives, probs).reshape(n, num_negatives)
    row_user = np.repeat(pair_users, num_negatives).reshape(n, num_negatives)
    todo = np.arange(neg.size)
    for _ in range(max_rounds):
        flat_u, flat_n = row_user.ravel()[todo], neg.ravel()[todo]
        k = flat_u * num_items + flat_n
        pos = np.searchsorted(pos_keys, k).clip(max=max(len(pos_keys) - 1, 0))
        hit = pos_keys[pos] == k if len(pos_keys) else np.zeros(len(k), dtype=bool)
        todo = todo[hit]
        if len(todo) == 0:
            return pair_users, pair_items, neg
        neg.ravel()[todo] = _draw(rng, num_items, len(todo), probs)
    raise RuntimeError(f"sample_negatives: {len(todo)} draw(s) still hit positives after max_rounds={max_rounds}.")


__all__ = ["sample_negatives", "to_sequences"]
