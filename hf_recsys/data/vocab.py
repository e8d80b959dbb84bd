"""Id vocabularies: the user's own ids (ints or strings) <-> contiguous indices, a tokenizer for users and items."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrays import unique

VOCAB_FILE = "id_vocab.json"


class UnknownIdError(KeyError):
    """Ids that the vocabulary does not know (new users or items at inference time)."""

    def __init__(self, kind: str, ids: Sequence[Any], hint: str = ""):
        self.kind = kind
        self.ids = list(ids)
        shown = ", ".join(repr(i) for i in self.ids[:5]) + (" ..." if len(self.ids) > 5 else "")
        super().__init__(f"{len(self.ids)} unknown {kind} id(s): {shown}. {hint}".strip())

    def __str__(self) -> str:
        return str(self.args[0])


def _as_arrow(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not isinstance(values, pa.Array):
        arr = np.asarray(values)
        if arr.dtype.kind in "iu":
            if arr.dtype.kind == "u" and arr.size and arr.max() > np.iinfo(np.int64).max:
                raise ValueError("Ids beyond int64 (2^63 - 1) are not supported as integers; pass them as str.")
            values = pa.array(arr.astype(np.int64, copy=False))
        elif arr.dtype.kind in "OUS":
            values = pa.array(arr.astype(str) if arr.dtype.kind != "O" else list(arr))
        elif arr.dtype.kind == "f":
            if arr.size and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
                raise ValueError("Float ids must be whole numbers without NaN; cast them to int or str first.")
            if arr.size and np.abs(arr).max() > 2**53:
                raise ValueError(
                    "Float ids beyond 2^53 are not exact (9007199254740993 reads as ...992); pass them as int or str."
                )
            values = pa.array(arr.astype(np.int64))
        else:
            raise TypeError(f"Ids must be integers or strings, got numpy dtype {arr.dtype}.")
    if values.type == pa.int64() or values.type == pa.string():
        return values
    if pa.types.is_integer(values.type):
        return values.cast(pa.int64())
    if pa.types.is_large_string(values.type):
        return values.cast(pa.string())
    if pa.types.is_dictionary(values.type):
        return _as_arrow(values.dictionary_decode())
    raise TypeError(f"Ids must be integers or strings, got Arrow type {values.type}.")


class IdVocab:
    """An ordered, duplicate-free list of ids; position = index.

    Args:
        ids: the ids in index order (ints or strings, no duplicates, no nulls).
        kind: a word for error messages, e.g. ``"user"`` or ``"item"``.

    Example:
        ```python
        >>> v = IdVocab.from_values(["b", "a", "b"], kind="item")
        >>> v.encode(["a", "b"]).tolist(), v.decode([1]).tolist()
        ([0, 1], ['b'])
        ```
    """

    def __init__(self, ids: Any, kind: str = "id"):
        arr = _as_arrow(ids)
        if arr.null_count:
            raise ValueError(f"A {kind} vocabulary cannot hold null ids.")
        if len(pc.unique(arr)) != len(arr):
            raise ValueError(f"A {kind} vocabulary cannot hold duplicate ids.")
        self._ids = arr
        self.kind = kind
        self._lookup: dict[Any, int] | None = None
        self._sorted: tuple[np.ndarray, np.ndarray] | None = None

    @classmethod
    def _appended(cls, base: IdVocab, new: pa.Array, by_value: np.ndarray | None = None) -> IdVocab:
        """``base`` with ``new`` appended, where ``new`` holds distinct ids that ``base`` lacks (no check: the
        caller found them unknown); its sorted lookup is ``base``'s with the new ids inserted (no new sort).
        ``by_value``: the positions in ``new`` of its ids in sorted order, when the caller has them."""
        out = cls.__new__(cls)
        out._ids, out.kind, out._lookup, out._sorted = pa.concat_arrays([base._ids, new]), base.kind, None, None
        if base._sorted is not None and len(new):
            keys, order = base._sorted
            vals = _lookup_keys(new)
            by_value = np.argsort(vals, kind="stable") if by_value is None else by_value
            out._sorted = _insert_sorted(keys, order, vals[by_value], len(base) + by_value)
        return out

    @classmethod
    def from_values(cls, values: Any, kind: str = "id") -> IdVocab:
        """Build a vocabulary from (possibly repeated) ids: the unique ids, sorted."""
        arr = _as_arrow(values)
        if arr.null_count:
            raise ValueError(f"Cannot build a {kind} vocabulary: {arr.null_count} id(s) are null.")
        uniq = pc.unique(arr)
        return cls(pc.take(uniq, pc.sort_indices(uniq)), kind)

    def __len__(self) -> int:
        return len(self._ids)

    def __repr__(self) -> str:
        return f"IdVocab(kind={self.kind!r}, size={len(self)}, dtype={self.dtype})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdVocab) and self._ids.equals(other._ids)

    def __contains__(self, key: Any) -> bool:
        return self._dict().get(_py(key)) is not None

    @property
    def dtype(self) -> str:
        return "int64" if pa.types.is_integer(self._ids.type) else "string"

    @property
    def ids(self) -> np.ndarray:
        """The ids in index order (int64 array, or object array of str)."""
        return self._ids.to_numpy(zero_copy_only=False)

    def _dict(self) -> dict[Any, int]:
        if self._lookup is None:
            self._lookup = {k: i for i, k in enumerate(self._ids.to_pylist())}
        return self._lookup

    def _sorted_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """The ids sorted, with their indices: built once (``O(n log n)``), then every lookup is a binary search."""
        if self._sorted is None:
            keys = _lookup_keys(self._ids)
            order = np.argsort(keys, kind="stable")
            self._sorted = (keys[order], order)
        return self._sorted

    def _positions(self, arr: pa.Array, vals: np.ndarray | None = None) -> np.ndarray:
        """The index of each id of ``arr`` (same type as the vocabulary, no nulls), ``-1`` where unknown (``vals``:
        its lookup keys, when the caller has them)."""
        keys, order = self._sorted_lookup()
        vals = _lookup_keys(arr) if vals is None else vals
        if not len(keys):
            return np.full(len(vals), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(keys, vals), len(keys) - 1)
        return np.where(keys[pos] == vals, order[pos], -1).astype(np.int64, copy=False)

    def encode(self, values: Any, unknown: str = "error") -> np.ndarray:
        """Map ids to indices.

        Args:
            values: ids (a list, numpy or Arrow array).
            unknown: ``"error"`` raises :class:`UnknownIdError` naming the unknown ids; ``"mask"`` returns -1 for them.

        Returns:
            ``np.ndarray`` of int64 indices, same length as ``values``.
        """
        arr = self._checked(values)
        if arr.null_count:
            idx = pc.index_in(arr, value_set=self._ids)
            found = ~np.asarray(pc.is_null(idx))
            idx = np.asarray(pc.fill_null(idx, -1).to_numpy(zero_copy_only=False), dtype=np.int64)
        else:
            idx = self._positions(arr)
            found = idx >= 0
        if not found.all():
            if unknown == "error":
                missing = arr.filter(pa.array(~found)).to_pylist()
                raise UnknownIdError(self.kind, list(dict.fromkeys(missing)))
        return idx

    def _checked(self, values: Any) -> pa.Array:
        """``values`` as an Arrow array of the vocabulary's type (a ``TypeError`` naming both types if not)."""
        arr = _as_arrow(values) if len(values) else pa.array([], type=self._ids.type)
        if arr.type != self._ids.type:
            raise TypeError(
                f"{self.kind} ids are {self.dtype} in this vocabulary but {arr.type} were given; "
                f"pass ids of the same type (e.g. {self._ids[0].as_py()!r} if the vocabulary is not empty)."
                if len(self._ids)
                else f"The {self.kind} vocabulary is empty."
            )
        return arr

    def extend_encode(self, values: Any) -> tuple[IdVocab, np.ndarray]:
        """``self.extend(values)`` and the indices of ``values`` in it, by one lookup of every value: the unseen ids
        are appended in the order they first occur (as ``extend``) and encoded by their rank among them.

        Args:
            values: ids without nulls (a list, numpy or Arrow array) of the vocabulary's type.

        Returns:
            ``(vocab, indices)``: the grown vocabulary (``self`` when every id is known) and int64 indices.
        """
        if not len(self):  # an empty vocabulary takes the type of its first ids
            grown = self.extend(values)
            return grown, grown.encode(values)
        arr = self._checked(values)
        if arr.null_count:
            raise ValueError(f"Cannot extend a {self.kind} vocabulary with null ids ({arr.null_count} given).")
        vals = _lookup_keys(arr)
        idx = self._positions(arr, vals)
        unseen = idx < 0
        if not unseen.any():
            return self, idx
        uniq, first, inverse = unique(vals[unseen], return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")  # the unseen ids in the order they first occur
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        idx[unseen] = len(self) + rank[inverse.reshape(-1)]
        return IdVocab._appended(self, pa.array(uniq[order], type=self._ids.type), by_value=rank), idx

    def decode(self, indices: Any) -> np.ndarray:
        """Map indices back to ids; the result has the shape of ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.kind} index out of range [0, {len(self)}): {idx.min()}..{idx.max()}")
        return self.ids[idx]

    def extend(self, values: Iterable[Any]) -> IdVocab:
        """A new vocabulary with the unseen ``values`` appended (existing indices keep their meaning)."""
        arrow_like = (np.ndarray, pa.Array, pa.ChunkedArray)
        arr = _as_arrow(values if isinstance(values, arrow_like) else list(values))
        if arr.null_count:
            raise ValueError(f"Cannot extend a {self.kind} vocabulary with null ids ({arr.null_count} given).")
        if not len(self):  # an empty vocabulary takes the type of its first ids
            return IdVocab(pc.unique(arr), self.kind)
        if arr.type != self._ids.type:
            raise TypeError(f"{self.kind} ids are {self.dtype} in this vocabulary but {arr.type} were given.")
        new = pc.unique(arr.filter(pa.array(self._positions(arr) < 0))) if len(arr) else arr
        return IdVocab._appended(self, new.cast(self._ids.type))

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "ids": self._ids.to_pylist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], kind: str = "id") -> IdVocab:
        typ = pa.int64() if d["dtype"] == "int64" else pa.string()
        return cls(pa.array(d["ids"], type=typ), kind)


def _insert_sorted(
    keys: np.ndarray, order: np.ndarray, new_keys: np.ndarray, new_order: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The sorted ``keys`` (with their indices ``order``) with the sorted ``new_keys`` (and ``new_order``) merged in,
    as ``np.insert`` at their ``searchsorted`` positions places them, by one mask for both arrays."""
    at = np.searchsorted(keys, new_keys) + np.arange(len(new_keys))  # where each new key lands
    old = np.ones(len(keys) + len(new_keys), dtype=bool)
    old[at] = False
    out_keys, out_order = np.empty(len(old), dtype=keys.dtype), np.empty(len(old), dtype=order.dtype)
    out_keys[at], out_keys[old] = new_keys, keys
    out_order[at], out_order[old] = new_order, order
    return out_keys, out_order


def _lookup_keys(arr: pa.Array) -> np.ndarray:
    """Ids as a numpy array that sorts and compares like the ids: int64, or Python ``str`` objects (not numpy's
    fixed-width unicode, which drops trailing NUL characters)."""
    return arr.to_numpy(zero_copy_only=False)


def _py(key: Any) -> Any:
    if isinstance(key, np.integer):
        return int(key)
    if isinstance(key, np.str_):
        return str(key)
    return key


def save_vocabs(folder: str | os.PathLike, users: IdVocab | None, items: IdVocab | None) -> str:
    """Write ``id_vocab.json`` (plain JSON, never pickled) into ``folder``; returns its path."""
    path = os.path.join(folder, VOCAB_FILE)
    payload = {
        "format": 1,
        "users": users.to_dict() if users is not None else None,
        "items": items.to_dict() if items is not None else None,
    }
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)
    return path


def load_vocabs(path: str | os.PathLike) -> tuple[IdVocab | None, IdVocab | None]:
    """Read an ``id_vocab.json`` written by :func:`save_vocabs`."""
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON (truncated or corrupted download?): {exc}") from exc
    try:
        users = IdVocab.from_dict(payload["users"], "user") if payload.get("users") else None
        items = IdVocab.from_dict(payload["items"], "item") if payload.get("items") else None
    except (KeyError, TypeError, AttributeError, ValueError, pa.ArrowException) as exc:
        raise ValueError(
            f"{path} is not a valid id vocabulary ({type(exc).__name__}: {exc}); expected "
            '{"format": 1, "users": {"dtype": "int64"|"string", "ids": [...]}, "items": {...}}. Save the model again.'
        ) from None
    return users, items


__all__ = ["IdVocab", "UnknownIdError", "VOCAB_FILE", "load_vocabs", "save_vocabs"]
