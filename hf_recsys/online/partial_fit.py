"""``partial_fit``: update a fitted model in place with new interactions (see ``RecPreTrainedModel.partial_fit``).

The shared steps live here and every family adds one hook, ``_partial_fit(new, **options)``:

1. the new log is checked against the one the model was fitted on (:func:`check_update_log`): the same canonical
   columns of the same kinds, no missing ids, not empty;
2. the user and item vocabularies grow by the unseen ids (:func:`grow_and_encode`; existing indices keep their
   meaning) and the seen-items matrix by the new pairs;
3. the family's hook updates its state from the new rows, encoded in the grown vocabularies: an exact update of
   its statistics (MostPopular, ItemKNN, UserKNN, EASE), exact least-squares solves of the touched rows (ALS), or
   continued training through the engine (:func:`gradient_partial_fit`, every :class:`EngineTrainedMixin` family).
"""

from __future__ import annotations

import functools
import inspect
import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
import torch

from ..data.arrays import unique
from ..data.views import CANONICAL_COLUMNS, Interactions, _column, encode_interactions, rating_and_timestamp

logger = logging.getLogger(__name__)

#: the config attribute holding what ``fit`` saw: ``{"columns": {name: kind}, "last_timestamp": int | None}``
LOG_SCHEMA_KEY = "fitted_log"


def _kind(arr: pa.Array) -> str:
    t = arr.type
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    if pa.types.is_boolean(t):
        return "boolean"
    return str(t)


def log_schema(data: Any) -> dict[str, str]:
    """The canonical columns of a log and their kinds (``integer``, ``float``, ``string``, ``timestamp``).

    An id column of float whole numbers (what pandas makes of ints with gaps) counts as ``integer``, as the
    vocabulary reads it; a rating column of ints counts as ``float``.
    """
    if isinstance(data, Interactions):
        cols = {"user_id": "index", "item_id": "index"}
        cols.update({"rating": "float"} if data.rating is not None else {})
        cols.update({"timestamp": "integer"} if data.timestamp is not None else {})
        return cols
    out = {}
    for name in CANONICAL_COLUMNS:
        col = _column(data, name)
        if col is None:
            continue
        kind = _kind(col)
        if name in ("user_id", "item_id") and kind == "float":
            kind = "integer"
        if name == "rating" and kind == "integer":
            kind = "float"
        out[name] = kind
    return out


def _last_timestamp(inter: Interactions) -> int | None:
    return None if inter.timestamp is None or not len(inter.timestamp) else int(inter.timestamp.max())


def record_fitted_log(model, data: Any, inter: Interactions) -> None:
    """Write what ``fit`` saw into ``model.config`` (saved with it): the log's columns and its last timestamp."""
    setattr(model.config, LOG_SCHEMA_KEY, {"columns": log_schema(data), "last_timestamp": _last_timestamp(inter)})


def check_update_log(model, data: Any) -> None:
    """A clear error when ``data`` cannot update ``model``: an empty log, missing (null / NaN) ids, or canonical
    columns that differ from the fitted log's (a column added, missing or of another kind), each named.

    Raises:
        ValueError: naming the problem and the column.
        TypeError: the log is not a ``datasets.Dataset``, pandas DataFrame, Arrow table or ``Interactions``.
    """
    if len(data) == 0:
        raise ValueError("partial_fit got an empty interaction log: there is nothing to update the model with.")
    if isinstance(data, Interactions):
        if (data.num_users, data.num_items) != (model.config.num_users, model.config.num_items):
            raise ValueError(
                f"partial_fit got Interactions encoded for {data.num_users} users x {data.num_items} items, but the "
                f"model has {model.config.num_users} x {model.config.num_items}: pass the raw log (with ids) so that "
                "new users and items can join."
            )
        return
    for name in ("user_id", "item_id"):
        col = _column(data, name)
        if col is None:
            raise ValueError(f"partial_fit: the log has no column {name!r} (it needs 'user_id' and 'item_id').")
        missing = col.null_count + (int(pc.sum(pc.is_nan(col)).as_py() or 0) if pa.types.is_floating(col.type) else 0)
        if missing:
            raise ValueError(
                f"partial_fit: column {name!r} holds {missing} missing (null / NaN) id(s); drop or fill them."
            )
    fitted = (getattr(model.config, LOG_SCHEMA_KEY, None) or {}).get("columns")
    if not fitted:  # a model saved before partial_fit existed: only the id types can be checked (by the vocabularies)
        return
    given = log_schema(data)
    for name in sorted(set(fitted) | set(given)):
        if name not in given:
            raise ValueError(
                f"partial_fit: the log has no column {name!r}, but the model was fitted on a log with it "
                f"(columns {sorted(fitted)}); pass the same columns as fit."
            )
        if name not in fitted:
            raise ValueError(
                f"partial_fit: the log has a column {name!r} that the fitted log did not have (columns "
                f"{sorted(fitted)}); drop it or refit the model on logs with it."
            )
        if given[name] != fitted[name] and fitted[name] != "index":
            raise ValueError(
                f"partial_fit: column {name!r} holds {given[name]} values, but the fitted log's held {fitted[name]}; "
                "cast it to the same kind."
            )


def grow_and_encode(model, data: Any) -> Interactions:
    """Extend the model's user and item vocabularies by the unseen ids of ``data`` (appended: known indices keep
    their meaning), size its config, and return ``data`` encoded in them: one lookup of every id
    (:meth:`IdVocab.extend_encode`)."""
    if isinstance(data, Interactions):
        return data
    users, u = _extend_encode(model.user_vocab, _column(data, "user_id"))
    items, i = _extend_encode(model.item_vocab, _column(data, "item_id"))
    model.set_vocabs(users, items)
    return Interactions(u, i, *rating_and_timestamp(data), len(users), len(items))


def grow_vocabularies(model, data: Any) -> tuple[int, int]:
    """Extend the model's user and item vocabularies by the unseen ids of ``data`` (:func:`grow_and_encode`) and
    size its config; returns the old ``(num_users, num_items)``."""
    old = (len(model.user_vocab), len(model.item_vocab))
    grow_and_encode(model, data)
    return old


def _extend_encode(vocab, values: pa.Array):
    try:
        return vocab.extend_encode(values)
    except TypeError as exc:
        raise TypeError(f"partial_fit: {exc}") from None


def pad_csr(m: sp.csr_matrix, shape: tuple[int, int]) -> sp.csr_matrix:
    """``m`` grown to ``shape`` with empty rows and columns at the end (new users and items)."""
    m = m.tocsr()
    if m.shape[0] > shape[0] or m.shape[1] > shape[1]:
        raise ValueError(f"Cannot shrink a {m.shape} matrix to {shape}.")
    indptr = np.r_[m.indptr, np.full(shape[0] - m.shape[0], m.indptr[-1])]
    return sp.csr_matrix((m.data, m.indices, indptr), shape=shape)


def merge_seen(seen: sp.csr_matrix | None, inter: Interactions, return_pairs: bool = False):
    """The seen-items matrix grown to the new vocabulary sizes, with the new pairs added (binary, float32, sorted
    indices): the pairs not seen before are spliced into the index array at once (only the touched rows' old
    entries are searched), one pass over the old indices and no sparse sum. With ``return_pairs``, also the
    ``(user_idx, item_idx)`` arrays of the pairs that were not seen before (each once), or ``None`` where the old
    matrix was not in canonical form (then they are not found on the way)."""
    if seen is None or not seen.has_canonical_format:
        new = inter.to_csr("binary")
        if seen is None:
            return (new, None) if return_pairs else new
        out = (pad_csr(seen, new.shape) + new).tocsr()
        out.data[:] = 1
        out.sort_indices()
        out = out.astype(np.float32, copy=False)
        return (out, None) if return_pairs else out
    n_users, n_items = inter.num_users, inter.num_items
    known = inter.known()
    keys = unique(known.user_idx * n_items + known.item_idx)  # the new pairs by (row, column), once each
    indptr = np.full(n_users + 1, seen.indptr[-1], dtype=np.int64)
    indptr[: len(seen.indptr)] = seen.indptr
    rows, cols, at = _unseen_pairs(seen.indices, indptr, keys, n_items)
    at += np.arange(len(at))  # where each lands in the merged index array
    nnz = seen.nnz + len(at)
    old = np.ones(nnz, dtype=bool)
    old[at] = False
    dtype = seen.indices.dtype if max(nnz, n_items) < np.iinfo(np.int32).max else np.int64
    indices = np.empty(nnz, dtype=dtype)
    indices[at], indices[old] = cols, seen.indices
    indptr[1:] += np.cumsum(np.bincount(rows, minlength=n_users))
    out = sp.csr_matrix((np.ones(nnz, dtype=np.float32), indices, indptr.astype(dtype)), shape=(n_users, n_items))
    out.has_canonical_format = True
    return (out, (rows, cols)) if return_pairs else out


def _unseen_pairs(indices: np.ndarray, indptr: np.ndarray, keys: np.ndarray, n_items: int):
    """The pairs of ``keys`` (``row * n_items + column``, sorted) that the CSR ``(indices, indptr)`` lacks: their
    rows, columns and positions in ``indices`` (after their row's old entries of smaller columns)."""
    rows = keys // n_items
    touched = unique(rows)
    start, length = indptr[touched], indptr[touched + 1] - indptr[touched]
    first = np.cumsum(length) - length  # each touched row's first entry among the gathered ones
    gathered = np.repeat(start - first, length) + np.arange(int(length.sum()))
    old_keys = np.repeat(touched, length) * n_items + indices[gathered]
    hit = np.searchsorted(old_keys, keys)
    present = old_keys[np.minimum(hit, len(old_keys) - 1)] == keys if len(old_keys) else np.zeros(len(keys), bool)
    new = ~present
    rows, hit = rows[new], hit[new]
    return rows, keys[new] - rows * n_items, indptr[rows] + hit - first[np.searchsorted(touched, rows)]


def seen_interactions(model) -> Interactions:
    """The model's seen items (every pair it was fitted or updated on) as binary :class:`Interactions`."""
    coo = model.seen_items.tocoo()
    return Interactions(
        coo.row.astype(np.int64), coo.col.astype(np.int64), None, None, model.config.num_users, model.config.num_items
    )


def _all_finite(model) -> bool:
    """Whether every floating tensor of ``model`` is finite, by one sum per tensor (a NaN or infinity makes the sum
    non-finite; a finite sum that overflows only sends the caller to the full, element-wise check)."""
    tensors = list(model.parameters()) + list(model.buffers())
    return all(bool(torch.isfinite(t.detach().sum())) for t in tensors if t.is_floating_point())


def _canonical_table(data: Any) -> Any:
    """The log's canonical columns as one Arrow table, read once (every later step reads its columns again);
    :class:`Interactions` and other objects pass through (``check_update_log`` names a wrong type)."""
    import datasets
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return pa.table({name: _pandas_column(data[name]) for name in CANONICAL_COLUMNS if name in data.columns})
    if not isinstance(data, (datasets.Dataset, pa.Table)):
        return data
    cols = {name: _column(data, name) for name in CANONICAL_COLUMNS}
    return pa.table({name: col for name, col in cols.items() if col is not None})


def _pandas_column(col: Any) -> pa.Array:
    """A pandas column as Arrow, as ``pa.array(col)`` makes it (NaN as null); numeric numpy-backed columns go through
    their numpy array, without pandas' conversion machinery."""
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iufb":
        return pa.array(col.to_numpy(), from_pandas=True)
    return pa.array(col)


@functools.cache
def _takes_new_pairs(cls: type) -> bool:
    """Whether ``cls._partial_fit`` declares a ``new_pairs`` parameter (looked up once per class)."""
    return "new_pairs" in inspect.signature(cls._partial_fit).parameters


def partial_fit(model, data: Any, show_progress: bool = False, **options: Any):
    """Update ``model`` in place with the new interactions ``data`` and return it (``model.partial_fit``).

    Args:
        model: a fitted :class:`~hf_recsys.RecPreTrainedModel`.
        data: the new interactions, of the kinds ``fit`` accepts (``datasets.Dataset``, pandas DataFrame, Arrow
            table with the fitted log's columns, or :class:`Interactions` in the model's vocabularies).
        show_progress: progress bars for the families that train or solve at length.
        **options: the family's update options (e.g. ``epochs``, ``replay`` for gradient families).
    """
    from ..modeling_utils import NotFittedError, _check_finite_state

    if model.user_vocab is None or model.item_vocab is None or model.seen_items is None:
        raise NotFittedError(f"{type(model).__name__} is not fitted: call fit(log) before partial_fit(new_log).")
    data = _canonical_table(data)
    check_update_log(model, data)
    before = (model.user_vocab, model.item_vocab, model.seen_items)
    try:
        inter = grow_and_encode(model, data)
        model.seen_items, pairs = merge_seen(before[2], inter, return_pairs=True)
        if pairs is not None and _takes_new_pairs(type(model)):
            options = {**options, "new_pairs": pairs}  # a hook that reads the pairs new to seen_items gets them
        model._partial_fit(inter, seen_before=before[2], show_progress=show_progress, **options)
    except BaseException:  # the family refused (e.g. no content for new items): the vocabularies stay as they were
        model.set_vocabs(*before[:2])
        model.seen_items = before[2]
        raise
    if not _all_finite(model):  # the full check names the tensors
        _check_finite_state(model, inter)
    schema = getattr(model.config, LOG_SCHEMA_KEY, None)
    if schema and inter.timestamp is not None and len(inter.timestamp):
        schema["last_timestamp"] = max(int(inter.timestamp.max()), schema.get("last_timestamp") or -(2**62))
    if not model.trainable:
        model.requires_grad_(False)
    return model


# ---------------------------------------------------------------------- the gradient families' generic update
#: where ``gradient_partial_fit`` samples its replay from: every old row, or only the old rows of the users (items,
#: either) that the new rows touch, where the update moves the model
REPLAY_SOURCES = ("all", "touched_users", "touched_items", "touched")


def _take(inter: Interactions, sel: np.ndarray) -> Interactions:
    """The rows ``sel`` (indices or a boolean mask) of ``inter``."""
    pick = lambda a: None if a is None else a[sel]  # noqa: E731
    return Interactions(
        inter.user_idx[sel], inter.item_idx[sel], pick(inter.rating), pick(inter.timestamp), *inter_shape(inter)
    )


def _replay_pool(old: Interactions, inter: Interactions, replay_from: str) -> Interactions:
    """The old rows the replay samples from: all of them, or those of the users / items the new rows touch."""
    if replay_from == "all":
        return old
    keep = np.zeros(len(old), dtype=bool)
    if replay_from in ("touched_users", "touched"):
        keep |= np.isin(old.user_idx, unique(inter.user_idx))
    if replay_from in ("touched_items", "touched"):
        keep |= np.isin(old.item_idx, unique(inter.item_idx))
    return _take(old, keep)


def _replay_rows(
    model,
    inter: Interactions,
    seen_before: sp.csr_matrix,
    replay: float,
    replay_log: Any,
    seed: int,
    replay_from: str = "all",
):
    """``round(replay * len(inter))`` old interactions, sampled without replacement: from ``replay_log`` (a log of
    old data, with ratings when the family needs them) or else from the model's seen items (binary pairs); with
    ``replay_from`` other than ``"all"`` only from the old rows of the touched users / items (fewer when they have
    fewer)."""
    if replay_from not in REPLAY_SOURCES:
        raise ValueError(f"partial_fit: replay_from={replay_from!r} is not one of {list(REPLAY_SOURCES)}.")
    n = int(round(float(replay) * len(inter)))
    if n <= 0:
        return None
    rng = np.random.default_rng(seed)
    if replay_log is not None:
        old = encode_interactions(replay_log, model.user_vocab, model.item_vocab, unknown_items="drop")
        if inter.rating is not None and old.rating is None:
            raise ValueError("partial_fit: the log has ratings but replay_log has no 'rating' column to replay.")
    else:
        if inter.rating is not None:
            raise ValueError(
                "partial_fit(replay=...) samples old interactions from the model's seen items, which hold no ratings, "
                "but this log has ratings: pass replay_log=<the old log> to replay rated interactions."
            )
        coo = seen_before.tocoo()
        old = Interactions(coo.row.astype(np.int64), coo.col.astype(np.int64), None, None, *inter_shape(inter))
    old = _replay_pool(old, inter, replay_from)
    if len(old) == 0:
        return None
    sel = np.sort(rng.choice(len(old), size=min(n, len(old)), replace=False))
    ts = None
    if inter.timestamp is not None:
        ts = old.timestamp[sel] if old.timestamp is not None else np.full(len(sel), int(inter.timestamp.min()) - 1)
    rating = None if inter.rating is None else old.rating[sel]
    return Interactions(old.user_idx[sel], old.item_idx[sel], rating, ts, *inter_shape(inter))


def inter_shape(inter: Interactions) -> tuple[int, int]:
    return inter.num_users, inter.num_items


def concat_interactions(parts: list[Interactions | None]) -> Interactions:
    """Rows of several logs in the same vocabularies, one after the other (ratings / timestamps kept when all have
    them)."""
    parts = [p for p in parts if p is not None and len(p)]
    cat = lambda name: (  # noqa: E731
        None if any(getattr(p, name) is None for p in parts) else np.concatenate([getattr(p, name) for p in parts])
    )
    return Interactions(
        np.concatenate([p.user_idx for p in parts]),
        np.concatenate([p.item_idx for p in parts]),
        cat("rating"),
        cat("timestamp"),
        parts[0].num_users,
        parts[0].num_items,
    )


def gradient_partial_fit(
    model,
    inter: Interactions,
    seen_before: sp.csr_matrix,
    show_progress: bool = False,
    replay: float = 0.0,
    replay_log: Any = None,
    replay_from: str = "all",
    context: Interactions | None = None,
    **fit_options: Any,
):
    """The update of every gradient-trained family: the tables grow (new rows start from the mean of the old ones,
    ``resize_tables(..., mean_resizing=True)``) and training continues through the engine on the new rows.

    Args:
        model: an :class:`~hf_recsys.training.EngineTrainedMixin` model with grown vocabularies.
        inter: the new rows.
        seen_before: the seen items before the update (the default replay source).
        replay: old interactions replayed per new one, against forgetting (``0``: none; ``1.0``: as many old as new).
        replay_log: a log of old interactions to sample the replay from (default: the model's seen items, binary
            pairs without ratings or times).
        replay_from: which old rows the replay samples from: ``"all"``, or only those of the users the new rows
            touch (``"touched_users"``), of the items they touch (``"touched_items"``), or of either
            (``"touched"``); all of those rows where they are fewer than the replay asks for.
        context: rows placed before the new ones (the sequential families' stored histories).
        **fit_options: the engine's options for this update (``epochs``, ``learning_rate``, ``batch_size``, ...; by
            default the config's), and the family's ``training_examples`` options.

    Returns:
        The engine's :class:`~hf_recsys.training.TrainingHistory`.
    """
    from ..training.engine import TrainingOptions, fit_model

    old_sizes = seen_before.shape
    model.resize_tables(model.config.num_users, model.config.num_items, mean_resizing=True)
    try:
        seed = fit_options.get("seed") or TrainingOptions.from_config(model.config).seed
        replayed = _replay_rows(model, inter, seen_before, replay, replay_log, seed, replay_from)
        rows = concat_interactions([context, replayed, inter])
        return fit_model(model, rows, show_progress=show_progress, **fit_options)
    except BaseException:  # refused before training (bad option, missing content): back to the old tables
        model.resize_tables(*old_sizes)
        raise


def sequential_partial_fit(model, inter: Interactions, seen_before: sp.csr_matrix, **options: Any):
    """The sequential families' update: :func:`gradient_partial_fit` with each updated user's stored history (their
    last ``max_sequence_length`` items) placed before their new items, so that training windows and the stored
    histories continue the old sequences; users without new items keep their stored histories."""
    old_hist = model.user_history.detach().clone()
    touched = unique(inter.user_idx)
    known = touched[touched < len(old_hist)]
    tokens = old_hist[torch.as_tensor(known)].cpu().numpy()
    rows, cols = np.nonzero(tokens)
    ctx = None
    if len(rows):
        ts = None
        if inter.timestamp is not None:  # before every new row, in the stored order
            ts = int(inter.timestamp.min()) - tokens.shape[1] + cols.astype(np.int64)
        ctx = Interactions(known[rows], tokens[rows, cols] - 1, None, ts, *inter_shape(inter))
        if inter.rating is not None:
            ctx.rating = np.zeros(len(rows), np.float32)
    try:
        history = gradient_partial_fit(model, inter, seen_before, context=ctx, **options)
    except BaseException:
        model.user_history = old_hist
        raise
    new_hist = model.user_history
    merged = torch.zeros_like(new_hist)
    merged[: len(old_hist)] = old_hist.to(merged.device)
    t = torch.as_tensor(touched, device=merged.device)
    merged[t] = new_hist[t]
    model.user_history = merged
    return history


__all__ = [
    "LOG_SCHEMA_KEY",
    "REPLAY_SOURCES",
    "check_update_log",
    "concat_interactions",
    "gradient_partial_fit",
    "grow_and_encode",
    "grow_vocabularies",
    "log_schema",
    "merge_seen",
    "pad_csr",
    "partial_fit",
    "record_fitted_log",
    "seen_interactions",
    "sequential_partial_fit",
]
