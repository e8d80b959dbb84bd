"""Model-facing views of an interaction log: index-encoded arrays, the CSR user-item matrix, and friends."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp

from .arrays import unique
from .vocab import IdVocab

logger = logging.getLogger(__name__)

CANONICAL_COLUMNS = ("user_id", "item_id", "rating", "timestamp")


@dataclass
class Interactions:
    """An interaction log in index space: parallel numpy arrays plus the vocabulary sizes.

    Args:
        user_idx: (n,) int64 user indices.
        item_idx: (n,) int64 item indices; -1 marks an item the vocabulary did not know (kept so that evaluation
            counts it as relevant but never retrievable).
        rating: (n,) float32 ratings, or None for implicit feedback.
        timestamp: (n,) int64 seconds since the epoch, or None.
        num_users: size of the user vocabulary.
        num_items: size of the item vocabulary.
    """

    user_idx: np.ndarray
    item_idx: np.ndarray
    rating: np.ndarray | None
    timestamp: np.ndarray | None
    num_users: int
    num_items: int

    def __len__(self) -> int:
        return len(self.user_idx)

    def known(self) -> Interactions:
        """The rows whose item is in the vocabulary (``item_idx >= 0``)."""
        keep = self.item_idx >= 0
        if keep.all():
            return self
        return Interactions(
            self.user_idx[keep],
            self.item_idx[keep],
            None if self.rating is None else self.rating[keep],
            None if self.timestamp is None else self.timestamp[keep],
            self.num_users,
            self.num_items,
        )

    def to_csr(self, values: str = "binary", dtype: Any = np.float32) -> sp.csr_matrix:
        """The ``(num_users, num_items)`` CSR matrix.

        Args:
            values: ``"binary"`` (1 for every observed pair), ``"rating"`` (the rating; repeated pairs keep the
                last one in log order) or ``"count"`` (number of interactions per pair).
            dtype: value dtype.
        """
        known = self.known()
        if values == "rating" and known.rating is None:
            raise ValueError("to_csr(values='rating') needs ratings, but this log has none.")
        if values == "rating":
            # keep the last rating of a repeated (user, item) pair rather than summing ratings
            key = known.user_idx * max(self.num_items, 1) + known.item_idx
            _, last = unique(key[::-1], return_index=True)
            last = len(key) - 1 - last
            data, rows, cols = known.rating[last], known.user_idx[last], known.item_idx[last]
        else:
            data, rows, cols = np.ones(len(known), dtype=dtype), known.user_idx, known.item_idx
        m = sp.csr_matrix((data.astype(dtype), (rows, cols)), shape=(self.num_users, self.num_items))
        m.sum_duplicates()
        if values == "binary":
            m.data[:] = 1
        m.sort_indices()
        return m


def _column(data: Any, name: str) -> pa.Array | None:
    """A column of a ``datasets.Dataset``, pandas DataFrame or Arrow table as an Arrow array (None if absent)."""
    import datasets

    if isinstance(data, datasets.Dataset):
        if data._indices is not None:
            data = data.flatten_indices()
        table = data.data.table
    elif isinstance(data, pa.Table):
        table = data
    else:
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise TypeError(
                "Expected a datasets.Dataset, pandas.DataFrame or pyarrow.Table of interactions, "
                f"got {type(data).__name__}."
            )
        return pa.array(data[name]) if name in data.columns else None
    at = table.schema.get_field_index(name)  # -1: absent, or a name held twice (then Arrow names the problem)
    if at < 0:
        return table.column(name).combine_chunks() if name in table.column_names else None
    col = table.column(at)
    return col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()


def build_vocabs(data: Any) -> tuple[IdVocab, IdVocab]:
    """User and item vocabularies (sorted unique ids) of an interaction log with canonical columns."""
    users, items = _column(data, "user_id"), _column(data, "item_id")
    if users is None or items is None:
        raise ValueError("Interactions need the columns 'user_id' and 'item_id' (see load_interactions for mapping).")
    return IdVocab.from_values(users, "user"), IdVocab.from_values(items, "item")


def rating_and_timestamp(data: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The log's ``rating`` (float32) and ``timestamp`` (int64 seconds) columns as numpy arrays (None if absent)."""
    rating, ts = _column(data, "rating"), _column(data, "timestamp")
    rating = None if rating is None else rating.to_numpy(zero_copy_only=False).astype(np.float32)
    if ts is not None:
        if pa.types.is_timestamp(ts.type):
            ts = ts.cast(pa.timestamp("s")).cast(pa.int64())
        ts = ts.to_numpy(zero_copy_only=False).astype(np.int64)
    return rating, ts


def encode_interactions(
    data: Any, user_vocab: IdVocab, item_vocab: IdVocab, unknown_users: str = "error", unknown_items: str = "error"
) -> Interactions:
    """Encode a log with canonical columns into :class:`Interactions`.

    Args:
        data: ``datasets.Dataset``, pandas DataFrame or Arrow table with ``user_id``, ``item_id`` and optionally
            ``rating`` and ``timestamp``.
        user_vocab, item_vocab: the vocabularies to encode with.
        unknown_users: ``"error"`` (raise, naming the ids) or ``"drop"`` (drop their rows, logging the count).
        unknown_items: ``"error"``, ``"drop"`` (logged) or ``"mask"`` (keep the rows with item index -1).
    """
    if isinstance(data, Interactions):
        return data
    users, items = _column(data, "user_id"), _column(data, "item_id")
    if users is None or items is None:
        raise ValueError("Interactions need the columns 'user_id' and 'item_id' (see load_interactions for mapping).")
    u = user_vocab.encode(users, unknown="error" if unknown_users == "error" else "mask")
    i = item_vocab.encode(items, unknown="error" if unknown_items == "error" else "mask")
    rating, ts = rating_and_timestamp(data)
    keep = np.ones(len(u), dtype=bool)
    if unknown_users == "drop":
        keep &= u >= 0
    if unknown_items == "drop":
        keep &= i >= 0
    if not keep.all():
        logger.warning("Dropped %d of %d interactions with users/items outside the vocabulary.", (~keep).sum(), len(u))
        u, i = u[keep], i[keep]
        rating = None if rating is None else rating[keep]
        ts = None if ts is None else ts[keep]
    return Interactions(u, i, rating, ts, len(user_vocab), len(item_vocab))


def to_sequences(
    interactions: Interactions, drop_unknown: bool = True, return_timestamps: bool = False
) -> tuple[np.ndarray, ...]:
    """Per-user, time-ordered item sequences in CSR layout.

    Args:
        interactions: the encoded log. Rows are ordered by timestamp within each user, ties (and logs without
            timestamps) keep log order.
        drop_unknown: leave out rows whose item is unknown (``item_idx == -1``).
        return_timestamps: also return the timestamps aligned with ``items``.

    Returns:
        ``(indptr, items)``: ``indptr`` is ``(num_users + 1,)`` int64 and user ``u``'s sequence is
        ``items[indptr[u]:indptr[u + 1]]`` (oldest first); ``items`` is int64. With ``return_timestamps``, a third
        array of timestamps (None when the log has none).

    Example:
        ```python
        >>> indptr, items = to_sequences(inter)
        >>> last_item_of_user_3 = items[indptr[4] - 1]
        ```
    """
    inter = interactions.known() if drop_unknown else interactions
    keys = [inter.user_idx] if inter.timestamp is None else [inter.timestamp, inter.user_idx]
    order = np.lexsort(keys)  # stable: equal keys keep log order
    counts = np.bincount(inter.user_idx, minlength=interactions.num_users)
    indptr = np.zeros(interactions.num_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    items = inter.item_idx[order].astype(np.int64, copy=False)
    if not return_timestamps:
        return indptr, items
    return indptr, items, None if inter.timestamp is None else inter.timestamp[order]


__all__ = ["CANONICAL_COLUMNS", "Interactions", "build_vocabs", "encode_interactions", "to_sequences"]
