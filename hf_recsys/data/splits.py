"""Train / validation / test splits and k-core filtering of interaction logs, vectorised over Arrow and numpy.

Every split returns a ``datasets.DatasetDict`` with ``"train"``, ``"test"`` and, when asked for, ``"validation"``;
the validation part is always carved out of what would otherwise be train, never out of test. Rows keep their
original log order inside each part.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrays import unique
from .loading import _to_dataset

logger = logging.getLogger(__name__)

_PEEL_MAX = 4  # leave-last-out with at most this many held-out rows per user peels maxima instead of sorting
_TRAIN, _TEST, _VALIDATION = 0, 1, 2


def _as_table(data: Any) -> pa.Table:
    import datasets

    if isinstance(data, pa.Table):
        table = data
    elif isinstance(data, datasets.Dataset):
        table = (data.flatten_indices() if data._indices is not None else data).data.table
    else:
        import pandas as pd

        if not isinstance(data, pd.DataFrame):
            raise TypeError(
                "Expected a datasets.Dataset, pandas DataFrame or pyarrow Table of interactions, "
                f"got {type(data).__name__}."
            )
        table = pa.Table.from_pandas(data, preserve_index=False)
    if "user_id" not in table.column_names or "item_id" not in table.column_names:
        raise ValueError(
            f"Splits need the canonical columns 'user_id' and 'item_id', got {table.column_names}; "
            "load the log with load_interactions(..., columns={...}) first."
        )
    return table


def dense_codes(values: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Contiguous integer codes for ids (equal ids <-> equal codes); cheap for compact integer ids.

    Returns:
        ``(codes, num_codes)``; codes are int64 in ``[0, num_codes)`` (some codes may be unused).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_integer(values.type) and len(values):
        arr = values.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
        lo, hi = int(arr.min()), int(arr.max())
        if hi - lo < 4 * len(arr) + 1024:  # compact range: the values themselves are the codes
            return arr - lo, hi - lo + 1
    enc = pc.dictionary_encode(values)
    return enc.indices.to_numpy(zero_copy_only=False).astype(np.int64), len(enc.dictionary)


def _timestamps(table: pa.Table) -> np.ndarray | None:
    if "timestamp" not in table.column_names:
        return None
    ts = table.column("timestamp").combine_chunks()
    if pa.types.is_timestamp(ts.type):
        ts = ts.cast(pa.timestamp("s")).cast(pa.int64())
    return ts.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _rank_from_end(users: np.ndarray, num_users: int, ts: np.ndarray | None, cap: int | None) -> np.ndarray:
    """Each row's position from the end of its user's history (0 = latest), ordered by timestamp then log order.

    With ``cap``, ranks at or beyond ``cap`` are reported as ``cap``; small caps use repeated per-user maxima
    (linear passes) instead of a sort.
    """
    n = len(users)
    if cap is not None and cap <= _PEEL_MAX:
        return _rank_by_peeling(users, num_users, ts, cap)
    order = np.lexsort([users] if ts is None else [ts, users])  # stable: ties keep log order
    counts = np.bincount(users, minlength=num_users)
    end = np.cumsum(counts)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = end[users[order]] - 1 - np.arange(n)
    return rank if cap is None else np.minimum(rank, cap)


def _rank_by_peeling(users: np.ndarray, num_users: int, ts: np.ndarray | None, cap: int) -> np.ndarray:
    n = len(users)
    rank = np.full(n, cap, dtype=np.int64)
    alive = np.ones(n, dtype=bool)
    lowest = np.iinfo(np.int64).min
    for r in range(cap):
        if ts is None:
            cand = np.flatnonzero(alive)
        else:
            latest = np.full(num_users, lowest, dtype=np.int64)
            np.maximum.at(latest, users, ts if r == 0 else np.where(alive, ts, lowest))
            cand = np.flatnonzero((ts == latest[users]) & alive)
        last = np.full(num_users, -1, dtype=np.int64)
        np.maximum.at(last, users[cand], cand)  # ties on the timestamp: the latest row in log order
        picked = last[last >= 0]
        rank[picked] = r
        alive[picked] = False
    return rank


def _build(table: pa.Table, label: np.ndarray, with_validation: bool) -> Any:
    import datasets

    parts = {"train": _TRAIN}
    if with_validation:
        parts["validation"] = _VALIDATION
    parts["test"] = _TEST
    return datasets.DatasetDict(
        {name: _to_dataset(table.filter(pa.array(label == code))) for name, code in parts.items()}
    )


def _check_ratio(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}.")


def leave_last_out(data: Any, n_test: int = 1, n_validation: int = 0) -> Any:
    """Hold out each user's latest interactions: the last ``n_test`` for test, the ``n_validation`` before them for
    validation.

    Order within a user is by ``timestamp`` (log order breaks ties, and is used alone when there is no timestamp).
    Users with ``n_test + n_validation`` interactions or fewer stay entirely in train (their count is logged).

    Args:
        data: ``datasets.Dataset``, pandas DataFrame or Arrow table with the canonical columns.
        n_test: interactions per user held out for test.
        n_validation: interactions per user held out for validation (taken from what would be train).

    Returns:
        ``datasets.DatasetDict`` with ``"train"``, ``"test"`` and, when ``n_validation > 0``, ``"validation"``.

    Example:
        ```python
        >>> splits = leave_last_out(load_interactions("ratings.csv"), n_test=1, n_validation=1)
        >>> splits["test"].num_rows == splits["validation"].num_rows
        True
        ```
    """
    if n_test < 1 or n_validation < 0:
        raise ValueError(f"n_test must be >= 1 and n_validation >= 0, got {n_test} and {n_validation}.")
    table = _as_table(data)
    users, num_users = dense_codes(table.column("user_id"))
    ts = _timestamps(table)
    held = n_test + n_validation
    rank = _rank_from_end(users, num_users, ts, cap=held)
    counts = np.bincount(users, minlength=num_users)
    eligible = counts[users] > held
    label = np.full(len(users), _TRAIN, dtype=np.int8)
    label[eligible & (rank < n_test)] = _TEST
    label[eligible & (rank >= n_test) & (rank < held)] = _VALIDATION
    short = int(((counts > 0) & (counts <= held)).sum())
    if short:
        logger.info("leave_last_out: %d user(s) with <= %d interactions stay entirely in train.", short, held)
    return _build(table, label, n_validation > 0)


def _share(counts: np.ndarray, ratio: float) -> np.ndarray:
    return np.floor(counts * ratio + 0.5).astype(np.int64)  # round half up


def temporal_user_split(data: Any, test_ratio: float = 0.2, validation_ratio: float = 0.0) -> Any:
    """Per user, the latest ``test_ratio`` of their interactions go to test and the ``validation_ratio`` before them
    to validation (each rounded half up per user), keeping at least one interaction per user in train.

    Args:
        data: ``datasets.Dataset``, pandas DataFrame or Arrow table with the canonical columns.
        test_ratio: share of each user's interactions for test.
        validation_ratio: share of each user's interactions for validation (carved from train).

    Returns:
        ``datasets.DatasetDict`` with ``"train"``, ``"test"`` and, when ``validation_ratio > 0``, ``"validation"``.
    """
    _check_ratio("test_ratio", test_ratio)
    _check_ratio("validation_ratio", validation_ratio)
    table = _as_table(data)
    users, num_users = dense_codes(table.column("user_id"))
    rank = _rank_from_end(users, num_users, _timestamps(table), cap=None)
    counts = np.bincount(users, minlength=num_users)
    n_test = np.minimum(_share(counts, test_ratio), np.maximum(counts - 1, 0))
    n_val = np.minimum(_share(counts, validation_ratio), np.maximum(counts - 1 - n_test, 0))
    label = np.full(len(users), _TRAIN, dtype=np.int8)
    label[rank < n_test[users]] = _TEST
    label[(rank >= n_test[users]) & (rank < (n_test + n_val)[users])] = _VALIDATION
    none = int(((counts > 0) & (n_test == 0)).sum())
    if none:
        logger.info("temporal_user_split: %d user(s) have too few interactions for a test share; all in train.", none)
    return _build(table, label, validation_ratio > 0)


def _as_seconds(value: Any) -> int:
    if isinstance(value, (int, np.integer)):
        return int(value)
    import pandas as pd

    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:  # naive datetimes are UTC, as in load_interactions
        stamp = stamp.tz_localize("UTC")
    return int(stamp.timestamp())


def _kth_value(ts: np.ndarray, count_after: int) -> int:
    """The smallest timestamp such that at least ``count_after`` values are >= it."""
    if count_after <= 0:
        return int(ts.max()) + 1
    k = len(ts) - count_after
    return int(np.partition(ts, k)[k])


def global_temporal_split(
    data: Any,
    test_ratio: float = 0.2,
    cutoff: Any = None,
    validation_ratio: float = 0.0,
    validation_cutoff: Any = None,
) -> Any:
    """One time cut for everybody: interactions at or after ``cutoff`` are test, the rest train.

    Args:
        data: ``datasets.Dataset``, pandas DataFrame or Arrow table with a ``timestamp`` column.
        test_ratio: when ``cutoff`` is None, the cut is placed so that this share of the rows is at or after it
            (rows tied at the cut all go to test, so the share may be slightly larger).
        cutoff: the cut, as int seconds, a datetime or an ISO 8601 string.
        validation_ratio: share of all rows, taken from the latest train rows, for validation.
        validation_cutoff: explicit start of the validation period (must be before ``cutoff``).

    Returns:
        ``datasets.DatasetDict`` with ``"train"``, ``"test"`` and, when asked for, ``"validation"``. Test users
        absent from train are counted in the log.
    """
    _check_ratio("test_ratio", test_ratio)
    _check_ratio("validation_ratio", validation_ratio)
    table = _as_table(data)
    ts = _timestamps(table)
    if ts is None:
        raise ValueError("global_temporal_split needs a 'timestamp' column; use random_split for logs without time.")
    cut = _as_seconds(cutoff) if cutoff is not None else _kth_value(ts, int(round(len(ts) * test_ratio)))
    label = np.where(ts >= cut, _TEST, _TRAIN).astype(np.int8)
    with_val = validation_ratio > 0 or validation_cutoff is not None
    if with_val:
        train_ts = ts[ts < cut]
        if validation_cutoff is not None:
            vcut = _as_seconds(validation_cutoff)
        else:
            vcut = _kth_value(train_ts, int(round(len(ts) * validation_ratio))) if len(train_ts) else cut
        if vcut > cut:
            raise ValueError(f"validation_cutoff ({vcut}) must not be after cutoff ({cut}).")
        label[(ts >= vcut) & (ts < cut)] = _VALIDATION
    _log_cold_test_users(table, label)
    return _build(table, label, with_val)


def _log_cold_test_users(table: pa.Table, label: np.ndarray) -> None:
    users, num_users = dense_codes(table.column("user_id"))
    in_train = np.zeros(num_users, dtype=bool)
    in_train[users[label == _TRAIN]] = True
    test_users = unique(users[label == _TEST])
    cold = int((~in_train[test_users]).sum())
    if cold:
        logger.info("%d of %d test user(s) have no train interactions (cold users).", cold, len(test_users))


def random_split(data: Any, test_ratio: float = 0.2, validation_ratio: float = 0.0, seed: int = 0) -> Any:
    """Rows assigned at random: ``round(n * test_ratio)`` to test, ``round(n * validation_ratio)`` of the others to
    validation, the rest to train.

    Args:
        data: ``datasets.Dataset``, pandas DataFrame or Arrow table with the canonical columns.
        test_ratio: share of rows for test.
        validation_ratio: share of rows for validation (carved from train).
        seed: seed of the permutation (same seed, same split).

    Returns:
        ``datasets.DatasetDict`` with ``"train"``, ``"test"`` and, when ``validation_ratio > 0``, ``"validation"``.
    """
    _check_ratio("test_ratio", test_ratio)
    _check_ratio("validation_ratio", validation_ratio)
    if test_ratio + validation_ratio >= 1.0:
        raise ValueError("test_ratio + validation_ratio must leave some rows for train.")
    table = _as_table(data)
    n = table.num_rows
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_val = int(round(n * test_ratio)), int(round(n * validation_ratio))
    label = np.full(n, _TRAIN, dtype=np.int8)
    label[perm[:n_test]] = _TEST
    label[perm[n_test : n_test + n_val]] = _VALIDATION
    _log_cold_test_users(table, label)
    return _build(table, label, validation_ratio > 0)


def kcore_filter(data: Any, user_k: int = 5, item_k: int = 5, max_iter: int = 100) -> Any:
    """Keep the largest sub-log in which every user has at least ``user_k`` and every item at least ``item_k``
    interactions (rows are counted, so repeated pairs count each time). Iterates until stable.

    Args:
        data: ``datasets.Dataset``, pandas DataFrame or Arrow table with the canonical columns.
        user_k, item_k: minimum interactions per user and per item.
        max_iter: safety bound on the number of passes.

    Returns:
        ``datasets.Dataset`` with the kept rows in log order; the number of dropped rows is logged.
    """
    table = _as_table(data)
    users, nu = dense_codes(table.column("user_id"))
    items, ni = dense_codes(table.column("item_id"))
    keep = np.ones(len(users), dtype=bool)
    passes = 0
    for passes in range(1, max_iter + 1):  # noqa: B007 (reported after the loop)
        cu = np.bincount(users[keep], minlength=nu)
        ci = np.bincount(items[keep], minlength=ni)
        new = keep & (cu[users] >= user_k) & (ci[items] >= item_k)
        if new.sum() == keep.sum():
            break
        keep = new
    else:
        logger.warning("kcore_filter stopped after max_iter=%d passes before converging.", max_iter)
    logger.info(
        "kcore_filter(user_k=%d, item_k=%d): kept %d of %d rows after %d pass(es).",
        user_k,
        item_k,
        int(keep.sum()),
        len(keep),
        passes,
    )
    return _to_dataset(table.filter(pa.array(keep)))


__all__ = [
    "dense_codes",
    "global_temporal_split",
    "kcore_filter",
    "leave_last_out",
    "random_split",
    "temporal_user_split",
]
