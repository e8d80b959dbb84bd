"""Load and validate interaction logs into ``datasets.Dataset`` with the canonical columns.

Every reader returns an Arrow table; validation runs on Arrow / numpy arrays (no pandas round trip on the hot path)
and the result wraps the table in a ``datasets.Dataset`` without copying it.

Canonical columns: ``user_id`` (int64 or string), ``item_id`` (int64 or string), ``rating`` (float32, only when the
source has one) and ``timestamp`` (int64 seconds since the epoch, only when the source has one).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .arrays import unique
from .views import CANONICAL_COLUMNS

logger = logging.getLogger(__name__)

DUPLICATE_POLICIES = ("error", "first", "last", "mean", "keep")
_SHOW = 5  # offending rows quoted in an error message

# Source column names recognised without a mapping (compared case-insensitively, first match wins).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "user_id": ("user_id", "userid", "user", "uid", "user id", "customer_id", "visitor_id", "visitorid"),
    "item_id": ("item_id", "itemid", "item", "iid", "movieid", "movie_id", "product_id", "track_id", "article_id"),
    "rating": ("rating", "ratings", "score", "stars"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date", "event_time", "unix_timestamp", "created_at"),
}

_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".dat": "csv",
    ".data": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "json",
    ".ndjson": "json",
    ".json": "json",
    ".arrow": "arrow",
    ".feather": "arrow",
}
_COMPRESSIONS = (".gz", ".bz2", ".zst", ".lz4")


class DataValidationError(ValueError):
    """An interaction log (or item table) that breaks a rule; the message names the column, rows and fix."""


# ------------------------------------------------------------------------------------------------ readers
def _infer_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    while suffixes and suffixes[-1] in _COMPRESSIONS:
        suffixes.pop()
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise ValueError(
            f"Cannot tell the format of {str(path)!r} from its extension; pass format= one of "
            f"'csv', 'tsv', 'parquet', 'json' (JSON Lines) or 'arrow'."
        )
    return fmt


def _read_csv(
    path: Path,
    sep: str,
    header: bool,
    column_names: Sequence[str] | None,
    encoding: str,
    quote_char: str | bool,
    column_types: Mapping[str, Any] | None,
) -> pa.Table:
    import pyarrow.csv as pcsv

    names = list(column_names) if column_names is not None else None
    read = pcsv.ReadOptions(
        column_names=names,
        skip_rows=1 if (header and names is not None) else 0,
        autogenerate_column_names=not header and names is None,
        encoding=encoding,
        block_size=1 << 24,
    )
    convert = pcsv.ConvertOptions(column_types=dict(column_types or {}), strings_can_be_null=False)
    source: Any = str(path)
    if len(sep) > 1:  # e.g. MovieLens-1M "::": pyarrow needs a single character, so translate the bytes first
        raw = _read_bytes(path).decode(encoding).replace(sep, "\x1f").encode("utf-8")
        source, sep = io.BytesIO(raw), "\x1f"
        read.encoding = "utf-8"
    parse = pcsv.ParseOptions(delimiter=sep, quote_char=quote_char)
    try:
        return pcsv.read_csv(source, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            raise DataValidationError(f"{str(path)!r} is empty: no header and no rows.") from exc
        raise DataValidationError(f"Could not parse {str(path)!r} as delimited text (sep={sep!r}): {exc}") from exc


def _read_bytes(path: Path) -> bytes:
    with pa.input_stream(str(path), compression="detect") as f:
        return f.read()


def _read_json(path: Path) -> pa.Table:
    import pyarrow.json as pjson

    head = _read_bytes(path)[:4096].lstrip()
    if head.startswith(b"["):  # a JSON array rather than JSON Lines: small files only, parse with the stdlib
        rows = json.loads(_read_bytes(path))
        if not rows:
            raise DataValidationError(f"{str(path)!r} holds an empty JSON array: no rows.")
        return pa.Table.from_pylist(rows)
    try:
        return pjson.read_json(str(path))
    except pa.ArrowInvalid as exc:
        raise DataValidationError(
            f"Could not parse {str(path)!r} as JSON Lines (one JSON object per line): {exc}"
        ) from exc


def _read_file(path: Path, fmt: str | None, sep: str | None, select: Callable | None, **csv_kw) -> pa.Table:
    fmt = fmt or _infer_format(path)
    if path.stat().st_size == 0:
        raise DataValidationError(f"{str(path)!r} is empty (0 bytes): no header and no rows.")
    if fmt in ("csv", "tsv"):
        return _read_csv(path, sep or ("\t" if fmt == "tsv" else ","), **csv_kw)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(str(path)).names
        wanted = select(names) if select is not None else None
        return pq.read_table(str(path), columns=wanted)
    if fmt == "json":
        return _read_json(path)
    if fmt == "arrow":
        import pyarrow.feather as feather

        return feather.read_table(str(path))
    raise ValueError(f"Unknown format {fmt!r}; use 'csv', 'tsv', 'parquet', 'json' or 'arrow'.")


def _dataset_table(ds: Any, split: str | None, what: str) -> pa.Table:
    import datasets

    if isinstance(ds, (datasets.DatasetDict, dict)):
        if split not in ds:
            raise ValueError(f"{what} has splits {sorted(ds)}; choose one with split=... (got {split!r}).")
        ds = ds[split]
    if isinstance(ds, datasets.IterableDataset):
        raise TypeError(f"{what} is a streaming IterableDataset; load it without streaming=True.")
    if ds._indices is not None:
        ds = ds.flatten_indices()
    return ds.data.table


def _is_saved_dataset(path: Path) -> bool:
    return any((path / f).is_file() for f in ("dataset_info.json", "state.json", "dataset_dict.json"))


def _load_hub(source: str, split: str | None, load_kwargs: Mapping[str, Any], local: bool = False) -> pa.Table:
    import datasets

    try:
        ds = datasets.load_dataset(source, split=split, **dict(load_kwargs))
    except Exception as exc:  # network, offline mode, missing repo, gated repo: all end the same way for the user
        if local:
            raise DataValidationError(
                f"datasets.load_dataset could not read the folder {source!r} ({type(exc).__name__}: {exc}); it must "
                "hold data files (CSV, Parquet, JSON Lines ...) or be written by Dataset.save_to_disk."
            ) from exc
        raise FileNotFoundError(
            f"{source!r} is not a local file or folder, and loading it as a Hugging Face Hub dataset failed "
            f"({type(exc).__name__}: {exc}). Check the path; for a Hub dataset check the id and that the Hub can be "
            f"reached (HF_DATASETS_OFFLINE / HF_HUB_OFFLINE must be unset), or download it and pass the local folder."
        ) from exc
    return _dataset_table(ds, split, f"Hub dataset {source!r}")


def read_table(
    source: Any,
    *,
    format: str | None = None,
    sep: str | None = None,
    split: str | None = "train",
    header: bool = True,
    column_names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quote_char: str | bool = '"',
    column_types: Mapping[str, Any] | None = None,
    select: Callable[[list[str]], list[str]] | None = None,
    load_kwargs: Mapping[str, Any] | None = None,
) -> pa.Table:
    """Read any supported source into an Arrow table, unvalidated (see :func:`load_interactions` for the sources).

    ``select`` maps a Parquet file's column names to the columns worth reading (the others are skipped)."""
    import datasets

    if isinstance(source, pa.Table):
        return source
    if isinstance(source, (datasets.Dataset, datasets.DatasetDict)):
        return _dataset_table(source, split, "The DatasetDict")
    if _is_dataframe(source):
        try:
            return pa.Table.from_pandas(source, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise DataValidationError(
                f"Could not convert the DataFrame to Arrow ({exc}); a column probably mixes types (e.g. numbers and "
                f"strings): convert it to one type first."
            ) from exc
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            "source must be a path, a Hub dataset id, a pandas DataFrame, a pyarrow Table or a datasets.Dataset; "
            f"got {type(source).__name__}."
        )
    path = Path(source).expanduser()
    if path.is_file():
        csv_kw = dict(
            header=header,
            column_names=column_names,
            encoding=encoding,
            quote_char=quote_char,
            column_types=column_types,
        )
        return _read_file(path, format, sep, select, **csv_kw)
    if path.is_dir():
        if _is_saved_dataset(path):
            return _dataset_table(datasets.load_from_disk(str(path)), split, f"The saved dataset {str(path)!r}")
        return _load_hub(str(path), split, load_kwargs or {}, local=True)  # a folder of data files
    if str(source).count("/") <= 1 and not str(source).startswith((".", "~")) and not Path(source).suffix:
        return _load_hub(str(source), split, load_kwargs or {})
    raise FileNotFoundError(f"No such file or folder: {str(source)!r}.")


def _is_dataframe(obj: Any) -> bool:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, pd.DataFrame)


# ------------------------------------------------------------------------------------------------ columns
def resolve_columns(
    available: Sequence[str],
    columns: Mapping[str, str | None] | None,
    canonical: Sequence[str] = CANONICAL_COLUMNS,
    required: Sequence[str] = ("user_id", "item_id"),
    aliases: Mapping[str, Sequence[str]] = COLUMN_ALIASES,
) -> dict[str, str]:
    """Map canonical names to source columns: the explicit ``columns`` first, then known aliases.

    Raises:
        DataValidationError: a mapping key that is not a canonical name, a mapped column the source lacks, or a
            required column that neither the mapping nor the aliases provide.
    """
    columns = dict(columns or {})
    unknown = [k for k in columns if k not in canonical]
    if unknown:
        raise DataValidationError(
            f"Unknown canonical column(s) {unknown} in columns=; the keys must be among {list(canonical)} and the "
            f"values the source's column names, e.g. columns={{'user_id': 'userId'}}."
        )
    missing = {k: v for k, v in columns.items() if v is not None and v not in available}
    if missing:
        detail = ", ".join(f"{v!r} (for {k!r})" for k, v in missing.items())
        raise DataValidationError(
            f"Column(s) {detail} named in columns= are not in the source; it has {list(available)}."
        )
    resolved = {k: v for k, v in columns.items() if v is not None}
    lower = {c.lower(): c for c in reversed(list(available))}
    taken = set(resolved.values())
    for name in canonical:
        if name in columns:  # mapped explicitly (None = ignore this column)
            continue
        for alias in aliases.get(name, (name,)):
            src = lower.get(alias.lower())
            if src is not None and src not in taken:
                resolved[name] = src
                taken.add(src)
                break
    absent = [k for k in required if k not in resolved]
    if absent:
        raise DataValidationError(
            f"Missing required column(s) {absent}: the source has {list(available)}. Map them explicitly, e.g. "
            f"columns={{{', '.join(f'{k!r}: <source column>' for k in absent)}}}."
        )
    return resolved


# ------------------------------------------------------------------------------------------------ validation
def _rows(mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask)[:_SHOW]


def _describe(name: str, src: str) -> str:
    return f"column {name!r}" if name == src else f"column {name!r} (source column {src!r})"


def _fail(name: str, src: str, problem: str, mask: np.ndarray, values: pa.Array | None, fix: str) -> None:
    rows = _rows(mask)
    shown = ""
    if values is not None:
        shown = " with value(s) " + ", ".join(repr(values[int(r)].as_py()) for r in rows)
    raise DataValidationError(
        f"{_describe(name, src)} has {int(mask.sum())} {problem}, first at row(s) {rows.tolist()} (0-based data "
        f"rows){shown}. {fix}"
    )


def _null_mask(arr: pa.Array) -> np.ndarray:
    mask = np.zeros(len(arr), dtype=bool)
    if arr.null_count:
        mask |= np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
    if pa.types.is_floating(arr.type):
        mask |= np.asarray(pc.fill_null(pc.is_nan(arr), False).to_numpy(zero_copy_only=False))
    return mask


def _clean_numbers(col: pa.ChunkedArray) -> bool:
    """Numeric, without nulls, NaN or infinities (checked without copying)."""
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)) or col.null_count:
        return False
    if pa.types.is_integer(col.type):
        return True
    return not (pc.any(pc.is_nan(col)).as_py() or pc.any(pc.is_inf(col)).as_py())


_NULL_SPELLINGS = pa.array(["None", "none", "null", "NULL", "Null", "nan", "NaN", "NAN", "NA", "N/A", "<NA>", "NaT"])
#: Timestamps (seconds) a log may hold: years 1 to 9999, the range of Python's datetime.
_TS_MIN, _TS_MAX = -62_135_596_800, 253_402_300_799


def _check_seconds(seconds: np.ndarray, src: str, raw: pa.Array | None, unit: str) -> np.ndarray:
    """Refuse timestamps outside years 1..9999 (seconds), naming the likely unit when they look like ms/us/ns."""
    bad = (seconds < _TS_MIN) | (seconds > _TS_MAX)
    if bad.any():
        hint = (
            f"Timestamps are read in {unit!r} units; values this large are usually milliseconds, microseconds or "
            "nanoseconds: pass timestamp_unit='ms' / 'us' / 'ns'."
            if np.nanmax(np.abs(seconds)) > _TS_MAX
            else "Fix or drop those rows."
        )
        _fail("timestamp", src, "timestamp(s) outside the years 1-9999", bad, raw, hint)
    return seconds


def _fits_float32(col: pa.ChunkedArray) -> bool:
    lo, hi = pc.min_max(col).values()
    limit = float(np.finfo(np.float32).max)
    return lo.as_py() is None or (abs(float(lo.as_py())) <= limit and abs(float(hi.as_py())) <= limit)


def _in_range(col: pa.ChunkedArray) -> bool:
    lo, hi = pc.min_max(col).values()
    return lo.as_py() is None or (_TS_MIN <= lo.as_py() and hi.as_py() <= _TS_MAX)


def _validate_ids(arr: pa.Array, name: str, src: str, id_dtype: str | None) -> pa.Array:
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    nulls = _null_mask(arr)
    if nulls.any():
        _fail(name, src, "null/NaN id(s)", nulls, None, "Drop or fill those rows before loading.")
    if pa.types.is_floating(arr.type):
        vals = arr.to_numpy(zero_copy_only=False)
        frac = vals != np.floor(vals)
        if frac.any():
            _fail(name, src, "non-integer numeric id(s)", frac, arr, "Ids must be integers or strings.")
        # a float cannot say which text it came from ('1.0' and '1' are one number; 9007199254740993 is not one)
        _fail(
            name,
            src,
            "floating-point id(s)",
            np.ones(len(vals), dtype=bool),
            arr,
            "Ids must be integers or strings: as floats, ids such as '1.0' and '1' merge and integers beyond 2^53 "
            "change. Cast the column to int64, or read a text file's ids as text (id_dtype='string').",
        )
    if pa.types.is_integer(arr.type):
        if pa.types.is_unsigned_integer(arr.type):
            big = np.asarray(pc.greater(arr, np.iinfo(np.int64).max).to_numpy(zero_copy_only=False))
            if big.any():
                _fail(name, src, "id(s) beyond int64", big, arr, "Read the ids as text (id_dtype='string').")
        arr = arr.cast(pa.int64())
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
        empty = np.asarray(pc.equal(pc.utf8_trim_whitespace(arr), "").to_numpy(zero_copy_only=False))
        if empty.any():
            _fail(name, src, "empty id(s)", empty, None, "Drop or fill those rows before loading.")
        nullish = np.asarray(pc.is_in(pc.utf8_trim_whitespace(arr), value_set=_NULL_SPELLINGS).to_numpy(False))
        if nullish.any():
            _fail(name, src, "id(s) spelling a missing value", nullish, arr, "Drop or fill those rows before loading.")
    else:
        raise DataValidationError(f"{_describe(name, src)} has type {arr.type}; ids must be integers or strings.")
    if id_dtype == "string" and pa.types.is_integer(arr.type):
        arr = arr.cast(pa.string())
    elif id_dtype == "int64" and not pa.types.is_integer(arr.type):
        try:
            arr = arr.cast(pa.int64())
        except pa.ArrowInvalid as exc:
            raise DataValidationError(f"{_describe(name, src)}: id_dtype='int64' but {exc}") from exc
    return arr


def _validate_rating(arr: pa.Array, src: str) -> pa.Array:
    name = "rating"
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        import pandas as pd

        parsed = pd.to_numeric(pd.Series(arr.to_numpy(zero_copy_only=False)), errors="coerce").to_numpy(float)
        bad = np.isnan(parsed) & ~np.asarray(arr.is_null().to_numpy(zero_copy_only=False))
        if bad.any():
            _fail(name, src, "non-numeric rating(s)", bad, arr, "Ratings must be numbers; fix or drop those rows.")
        arr = pa.array(parsed, from_pandas=True)
    missing = _null_mask(arr)
    if missing.any():
        _fail(name, src, "null/NaN rating(s)", missing, None, "Drop those rows or fill the ratings before loading.")
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or pa.types.is_decimal(arr.type)):
        raise DataValidationError(f"{_describe(name, src)} has type {arr.type}; ratings must be numeric.")
    out = pc.cast(arr, pa.float32(), safe=False)
    inf = np.isinf(out.to_numpy(zero_copy_only=False))
    if inf.any():
        _fail(
            name,
            src,
            "infinite rating(s) (or beyond float32, about 3.4e38)",
            inf,
            arr,
            "Ratings must be finite numbers; rescale them.",
        )
    return out


_UNIT = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _validate_timestamp(arr: pa.Array, src: str, unit: str, fmt: str | None) -> pa.Array:
    name = "timestamp"
    if unit not in _UNIT:
        raise ValueError(f"timestamp_unit must be one of {list(_UNIT)}, got {unit!r}.")
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    missing = _null_mask(arr)
    if missing.any():
        _fail(name, src, "missing/NaN timestamp(s)", missing, None, "Drop those rows or fill the timestamps.")
    t = arr.type
    if pa.types.is_integer(t):
        if pa.types.is_unsigned_integer(t):
            arr = pa.array(np.minimum(arr.to_numpy(zero_copy_only=False), np.uint64(_TS_MAX * 10**9)).astype(np.int64))
        secs = arr.cast(pa.int64()).to_numpy(zero_copy_only=False) // _UNIT[unit]
        return pa.array(_check_seconds(secs, src, arr, unit))
    if pa.types.is_floating(t):
        vals = arr.to_numpy(zero_copy_only=False)
        inf = np.isinf(vals)
        if inf.any():
            _fail(name, src, "infinite timestamp(s)", inf, arr, "Timestamps must be finite numbers.")
        secs = np.floor(vals / _UNIT[unit])
        _check_seconds(secs, src, arr, unit)  # before the cast: 1e20 must not become INT64_MIN
        return pa.array(secs.astype(np.int64))
    if pa.types.is_timestamp(t):
        return pa.array(arr.cast(pa.int64()).to_numpy(zero_copy_only=False) // _UNIT[t.unit])
    if pa.types.is_date32(t):
        return pa.array(arr.cast(pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64) * 86_400)
    if pa.types.is_date64(t):
        return pa.array(arr.cast(pa.int64()).to_numpy(zero_copy_only=False) // 1_000)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _parse_timestamp_strings(arr, src, unit, fmt)
    raise DataValidationError(
        f"{_describe(name, src)} has type {t}; use integer seconds, datetimes or ISO 8601 strings."
    )


def _parse_timestamp_strings(arr: pa.Array, src: str, unit: str, fmt: str | None) -> pa.Array:
    if fmt is None:
        try:  # numbers stored as text
            secs = arr.cast(pa.int64()).to_numpy(zero_copy_only=False) // _UNIT[unit]
            return pa.array(_check_seconds(secs, src, arr, unit))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
    import pandas as pd

    values = pd.Series(arr.to_numpy(zero_copy_only=False))
    parsed = pd.to_datetime(values, utc=True, format=fmt or "ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        _fail(
            "timestamp",
            src,
            "unparsable timestamp(s)",
            bad,
            arr,
            "Use integer seconds or ISO 8601 strings (e.g. '2020-01-31T12:00:00Z') of the years 1677-2262, or pass "
            "timestamp_format= (a strftime pattern). Naive datetimes are read as UTC.",
        )
    # seconds in the parsed unit, not through datetime64[ns] (which wraps dates outside 1677-2262 silently)
    naive = parsed.dt.tz_convert(None).to_numpy()
    return pa.array(_check_seconds(naive.astype("datetime64[s]").astype(np.int64), src, arr, unit))


# ------------------------------------------------------------------------------------------------ duplicates
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93], dtype=np.uint64)


def _codes(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Integers that are equal exactly when the ids are equal (raw int64 values, or dictionary codes)."""
    if pa.types.is_integer(arr.type):
        return np.asarray(arr.to_numpy(), dtype=np.int64)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pc.dictionary_encode(arr).indices.to_numpy(zero_copy_only=False).astype(np.int64)


def _as_u64(k: np.ndarray) -> np.ndarray:
    return k.view(np.uint64) if k.dtype == np.int64 else k.astype(np.uint64)


def _mix(keys: Sequence[np.ndarray]) -> np.ndarray:
    """A 64-bit hash per row of a tuple of integer columns (equal tuples, equal hashes)."""
    h = _as_u64(keys[0]) * _MIX[0]
    with np.errstate(over="ignore"):
        for k, c in zip(keys[1:], _MIX[1:]):
            h ^= _as_u64(k)
            h *= c
        h ^= h >> np.uint64(29)
    return h


def _exact_groups(keys: Sequence[np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group ``rows`` by their exact key (lexsort); returns the rows in groups of size > 1 and a group label."""
    sub = [k[rows] for k in keys]
    order = np.lexsort([rows] + sub[::-1])
    same_prev = np.zeros(len(rows), dtype=bool)
    same_prev[1:] = True
    for col in sub:
        col = col[order]
        same_prev[1:] &= col[1:] == col[:-1]
    gid = np.cumsum(~same_prev) - 1
    dup = np.bincount(gid)[gid] > 1
    return rows[order][dup], gid[dup]


def duplicate_groups(keys: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose key (a tuple of integer columns) occurs more than once.

    One sort of (row hash, row number) packed into 64 bits finds the candidate rows; they are then compared
    exactly (hash collisions are resolved by a sort of the few affected rows).

    Returns:
        ``(rows, group)``: the duplicated rows in ascending order and, for each, a group number shared by the rows
        with the same key (groups are numbered in order of their first row).
    """
    n = len(keys[0])
    empty = np.zeros(0, dtype=np.int64)
    if n < 2:
        return empty, empty
    row_bits = max(int(n - 1).bit_length(), 1)
    mask = np.uint64((1 << row_bits) - 1)
    packed = _mix(keys) & ~mask
    packed |= np.arange(n, dtype=np.uint64)
    packed.sort()
    prefix = packed & ~mask
    same_next = prefix[1:] == prefix[:-1]  # element i and i + 1 share a hash prefix
    del prefix
    in_dup = np.zeros(n, dtype=bool)
    in_dup[1:] = same_next
    in_dup[:-1] |= same_next
    if not in_dup.any():
        return empty, empty
    rows = (packed[in_dup] & mask).astype(np.int64)
    new_run = np.ones(len(rows), dtype=bool)
    new_run[1:] = ~same_next[np.flatnonzero(in_dup)[1:] - 1]
    run_first = rows[new_run]  # rows ascend within a run: its first is the smallest
    run = np.cumsum(new_run) - 1
    ok = np.ones(len(rows), dtype=bool)
    for k in keys:
        ok &= k[rows] == k[run_first[run]]
    bad_run = np.zeros(len(run_first), dtype=bool)
    bad_run[run[~ok]] = True
    if bad_run.any():  # hash collisions: regroup those rows exactly
        fix_rows, fix_gid = _exact_groups(keys, rows[bad_run[run]])
        keep = ~bad_run[run]
        rows = np.concatenate([rows[keep], fix_rows])
        run = np.concatenate([run[keep], fix_gid + len(run_first)])
        if len(rows) == 0:
            return empty, empty
    first = np.full(int(run.max()) + 1, np.iinfo(np.int64).max)
    np.minimum.at(first, run, rows)
    label = np.full(len(first), -1, dtype=np.int64)
    used = np.flatnonzero(first < np.iinfo(np.int64).max)
    label[used[np.argsort(first[used])]] = np.arange(len(used))
    o = np.argsort(rows, kind="stable")
    return rows[o], label[run[o]]


def _resolve_duplicates(table: pa.Table, policy: str) -> pa.Table:
    key_names = [c for c in ("user_id", "item_id", "timestamp") if c in table.column_names]
    keys = [_codes(table.column(c)) for c in key_names]
    rows, group = duplicate_groups(keys)
    if len(rows) == 0:
        return table
    n_groups = int(group.max()) + 1
    n_extra = len(rows) - n_groups
    label = "(" + ", ".join(key_names) + ")"
    if policy == "error":
        first = rows[group == 0]
        example = ", ".join(f"{c}={table.column(c)[int(first[0])].as_py()!r}" for c in key_names)
        raise DataValidationError(
            f"{n_extra} duplicate {label} row(s) in {n_groups} group(s); e.g. rows {first[:_SHOW].tolist()} "
            f"(0-based data rows) share {example}. Choose a policy with duplicates='first' or 'last' (keep one row "
            f"in log order), 'mean' (average their ratings) or 'keep' (keep them all)."
        )
    logger.warning(
        "Found %d duplicate %s row(s) in %d group(s); policy duplicates=%r.", n_extra, label, n_groups, policy
    )
    if policy == "keep":
        return table
    first = np.full(n_groups, np.iinfo(np.int64).max)
    np.minimum.at(first, group, rows)
    if policy == "last":
        keep_rows = np.full(n_groups, -1)
        np.maximum.at(keep_rows, group, rows)
    else:
        keep_rows = first
    drop = np.zeros(table.num_rows, dtype=bool)
    drop[rows] = True
    drop[keep_rows] = False
    if policy == "mean" and "rating" in table.column_names:
        rating = table.column("rating").to_numpy().astype(np.float64)
        sums = np.bincount(group, weights=rating[rows], minlength=n_groups)
        means = sums / np.bincount(group, minlength=n_groups)
        rating[first] = means
        table = table.set_column(table.column_names.index("rating"), "rating", pa.array(rating.astype(np.float32)))
    return table.filter(pa.array(~drop))


# ------------------------------------------------------------------------------------------------ public API
def _to_dataset(table: pa.Table) -> Any:
    import datasets
    from datasets.fingerprint import generate_random_fingerprint
    from datasets.table import InMemoryTable

    # a random fingerprint: hashing the whole table (the default) costs seconds on large logs
    return datasets.Dataset(InMemoryTable(table), fingerprint=generate_random_fingerprint())


def load_interactions(
    source: Any,
    *,
    columns: Mapping[str, str | None] | None = None,
    format: str | None = None,
    sep: str | None = None,
    duplicates: str = "error",
    split: str | None = "train",
    header: bool = True,
    column_names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    id_dtype: str | None = None,
    timestamp_unit: str = "s",
    timestamp_format: str | None = None,
    load_kwargs: Mapping[str, Any] | None = None,
    as_table: bool = False,
) -> Any:
    """Load an interaction log, validate it and return it with the canonical columns.

    Args:
        source: a CSV/TSV file (optionally ``.gz``), Parquet, JSON Lines (or a small JSON array), Arrow/Feather
            file; a pandas DataFrame, pyarrow Table or ``datasets.Dataset``/``DatasetDict``; a folder written by
            ``Dataset.save_to_disk``; a local folder of data files or a Hugging Face Hub dataset id (read with
            ``datasets.load_dataset``).
        columns: canonical name -> source column, e.g. ``{"user_id": "userId", "item_id": "movieId"}``; a value of
            ``None`` ignores that canonical column. Unmapped canonical columns are found by common aliases
            (``userId``, ``movieId``, ``time`` ...; see ``COLUMN_ALIASES``).
        format: ``"csv"``, ``"tsv"``, ``"parquet"``, ``"json"`` or ``"arrow"``; inferred from the extension. Or
            ``"sasrec"``: the SASRec/BERT4Rec sequence file (``user item`` per line, no header, each user's lines in
            time order, e.g. ``ml-1m.txt``), read by :func:`read_sasrec_sequences`.
        sep: field separator of delimited text (may be several characters, e.g. ``"::"``).
        duplicates: rows repeating a (user, item, timestamp) key (or (user, item) when there is no timestamp):
            ``"error"`` (default) raises naming the rows; ``"first"``/``"last"`` keep one row in log order;
            ``"mean"`` keeps the first row with the mean rating; ``"keep"`` keeps them all. The count is logged.
        split: the split to read from a ``DatasetDict``, saved dataset dict or Hub dataset.
        header: whether delimited text starts with a header line.
        column_names: names for the columns of delimited text (with ``header=False``, or to replace the header).
        encoding: text encoding of delimited text (e.g. ``"latin-1"``).
        id_dtype: force ids to ``"int64"`` or ``"string"``; by default ints stay ints and strings stay strings.
        timestamp_unit: unit of numeric timestamps (``"s"``, ``"ms"``, ``"us"``, ``"ns"``); output is seconds.
        timestamp_format: strftime pattern for timestamp strings that are not ISO 8601.
        load_kwargs: extra keyword arguments for ``datasets.load_dataset`` (Hub ids and data-file folders).
        as_table: return the validated ``pyarrow.Table`` instead of a ``datasets.Dataset``.

    Returns:
        ``datasets.Dataset`` with ``user_id``, ``item_id`` and, when present in the source, ``rating`` (float32) and
        ``timestamp`` (int64 seconds), in the source's row order.

    Raises:
        DataValidationError: unknown or missing columns, empty source, null/empty ids, non-numeric or NaN
            ratings, unparsable timestamps, duplicates under ``duplicates="error"``; each names the column and the
            first offending rows.

    Example:
        ```python
        >>> from hf_recsys.data import load_interactions
        >>> ds = load_interactions("ratings.csv", columns={"user_id": "userId", "item_id": "movieId"})
        >>> ds.column_names
        ['user_id', 'item_id', 'rating', 'timestamp']
        ```
    """
    if duplicates not in DUPLICATE_POLICIES:
        raise ValueError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {duplicates!r}.")

    def select(names: list[str]) -> list[str]:
        return list(resolve_columns(names, columns).values())

    if format == "sasrec":
        table = read_sasrec_sequences(source)
    else:
        table = read_table(
            source,
            format=format,
            sep=sep,
            split=split,
            header=header,
            column_names=column_names,
            encoding=encoding,
            select=select,
            load_kwargs=load_kwargs,
            column_types=_text_id_columns(columns) if id_dtype == "string" else None,
        )
    table = validate_interactions(
        table,
        columns=columns,
        duplicates=duplicates,
        id_dtype=id_dtype,
        timestamp_unit=timestamp_unit,
        timestamp_format=timestamp_format,
        source_name=str(source) if isinstance(source, (str, os.PathLike)) else type(source).__name__,
    )
    return table if as_table else _to_dataset(table)


def _text_id_columns(columns: Mapping[str, str | None] | None) -> dict[str, Any]:
    """Read every possible id column of a text file as text, so that ids keep their exact spelling."""
    names = [*COLUMN_ALIASES["user_id"], *COLUMN_ALIASES["item_id"]]
    names += [(columns or {}).get(k) for k in ("user_id", "item_id")]
    return {n: pa.string() for n in names if n}


def read_sasrec_sequences(path: str | os.PathLike) -> pa.Table:
    """Read a SASRec/BERT4Rec sequence file: one ``user item`` pair per line (whitespace-separated integers, no
    header), each user's lines in time order (``ml-1m.txt`` of SASRec, BERT4Rec and gSASRec).

    Returns:
        A table with ``user_id``, ``item_id`` and a synthetic ``timestamp``: each user's position 0, 1, 2, ... in the
        file, so that time-ordered splits and sequences keep the file's order. Raises ``DataValidationError`` for a
        line that is not two integers.
    """
    import pyarrow.csv as pcsv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"SASRec sequence file not found: {path}")
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(column_names=["user_id", "item_id"]),
            parse_options=pcsv.ParseOptions(delimiter=" "),
            convert_options=pcsv.ConvertOptions(column_types={"user_id": pa.int64(), "item_id": pa.int64()}),
        )
    except pa.ArrowInvalid as exc:
        raise DataValidationError(
            f"{path} is not a SASRec sequence file (one 'user item' pair of integers per line, space-separated, no "
            f"header): {exc}"
        ) from exc
    users = table.column("user_id").to_numpy()
    order = np.argsort(users, kind="stable")
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    position = np.arange(len(users)) - np.repeat(starts, np.diff(np.r_[starts, len(users)]))
    timestamp = np.empty(len(users), dtype=np.int64)
    timestamp[order] = position
    return table.append_column("timestamp", pa.array(timestamp))


def validate_interactions(
    table: pa.Table,
    *,
    columns: Mapping[str, str | None] | None = None,
    duplicates: str = "error",
    id_dtype: str | None = None,
    timestamp_unit: str = "s",
    timestamp_format: str | None = None,
    source_name: str = "the source",
) -> pa.Table:
    """Validate an Arrow table of interactions and normalise it to the canonical columns (see
    :func:`load_interactions` for the arguments and rules)."""
    if table.num_columns == 0:
        raise DataValidationError(f"{source_name} is empty: it has no columns.")
    mapping = resolve_columns(table.column_names, columns)
    if table.num_rows == 0:
        raise DataValidationError(f"{source_name} has a header but no rows: there are no interactions to load.")
    out: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in ("user_id", "item_id"):
        col = table.column(mapping[name])
        if pa.types.is_signed_integer(col.type) and col.null_count == 0 and id_dtype != "string":
            out[name] = col.cast(pa.int64())  # fast path: nothing to check, no copy
        else:
            out[name] = _validate_ids(col.combine_chunks(), name, mapping[name], id_dtype)
    if "rating" in mapping:
        col = table.column(mapping["rating"])
        if _clean_numbers(col) and _fits_float32(col):
            out["rating"] = col.cast(pa.float32())
        else:
            out["rating"] = _validate_rating(col.combine_chunks(), mapping["rating"])
    if "timestamp" in mapping:
        col = table.column(mapping["timestamp"])
        if pa.types.is_signed_integer(col.type) and col.null_count == 0 and timestamp_unit == "s" and _in_range(col):
            out["timestamp"] = col.cast(pa.int64())
        else:
            col = col.combine_chunks()
            out["timestamp"] = _validate_timestamp(col, mapping["timestamp"], timestamp_unit, timestamp_format)
    result = _resolve_duplicates(pa.table(out), duplicates)
    logger.info("Loaded %d interactions from %s (columns: %s).", result.num_rows, source_name, mapping)
    return result


# ------------------------------------------------------------------------------------------------ items
ITEM_COLUMNS = ("item_id", "title", "genres", "tags", "image_path")
ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "item_id": COLUMN_ALIASES["item_id"],
    "title": ("title", "name", "movie_title", "item_name"),
    "genres": ("genres", "genre", "categories", "category"),
    "tags": ("tags", "tag", "keywords"),
    "image_path": ("image_path", "image", "poster", "poster_path", "image_file"),
}
NO_GENRE = ("(no genres listed)", "unknown")


def _as_list(arr: pa.Array | None, n: int, sep: str | None, drop: Sequence[str] = ()) -> pa.Array:
    """A ``list<string>`` column from a list column or a ``sep``-separated string column (None: empty lists)."""
    if arr is None:
        return pa.array([[]] * n, type=pa.list_(pa.string()))
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        arr = pc.split_pattern(pc.fill_null(arr.cast(pa.string()), ""), sep or "|")
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise DataValidationError(f"A list column must hold strings or lists of strings, got {arr.type}.")
    arr = pc.fill_null(arr.cast(pa.list_(pa.string())), pa.scalar([], type=pa.list_(pa.string())))
    values = pc.utf8_trim_whitespace(pc.list_flatten(arr))
    keep = pc.invert(
        pc.or_(
            pc.equal(values, ""),
            pc.is_in(pc.utf8_lower(values), pa.array([d.lower() for d in drop], type=pa.string())),
        )
    )
    parent = pc.list_parent_indices(arr).to_numpy(zero_copy_only=False)
    keep_np = np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(parent[keep_np], minlength=n), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pc.filter(values, pa.array(keep_np)))


def _tags_from(source: Any, item_ids: pa.Array, columns: Mapping[str, str | None] | None, **read_kw) -> pa.Array:
    """Tags per item (distinct, first-seen order) from a table of (item, tag) rows, aligned with ``item_ids``."""
    table = read_table(source, **read_kw)
    mapping = resolve_columns(
        table.column_names, columns, ("item_id", "tag"), ("item_id", "tag"), {**ITEM_ALIASES, "tag": ("tag", "tags")}
    )
    ids = _validate_ids(table.column(mapping["item_id"]).combine_chunks(), "item_id", mapping["item_id"], None)
    tags = pc.utf8_trim_whitespace(table.column(mapping["tag"]).combine_chunks().cast(pa.string()))
    ok = pc.and_(pc.is_valid(tags), pc.not_equal(pc.fill_null(tags, ""), ""))
    grouped = (
        pa.table({"i": ids, "t": tags}).filter(ok).group_by("i", use_threads=False).aggregate([("t", "distinct")])
    )
    if pa.types.is_integer(item_ids.type) != pa.types.is_integer(grouped.column("i").type):
        raise DataValidationError("Tag item ids and item ids differ in type (one int, one string); cast one of them.")
    pos = pc.index_in(item_ids, value_set=grouped.column("i").combine_chunks())
    lists = grouped.column("t_distinct").combine_chunks()
    found = pc.take(lists, pc.fill_null(pos, 0)) if len(lists) else pa.nulls(len(item_ids), pa.list_(pa.string()))
    return _as_list(pc.if_else(pc.is_null(pos), pa.scalar(None, type=found.type), found), len(item_ids), None)


def _item_text(title: pa.Array, genres: pa.Array, tags: pa.Array) -> pa.Array:
    """``"<title>. Genres: a, b. Tags: x, y."`` with empty parts left out."""

    def part(prefix: str, lists: pa.Array) -> pa.Array:
        joined = pc.binary_join(lists, ", ")
        full = pc.binary_join_element_wise(prefix, joined, ".", "")
        return pc.if_else(pc.equal(joined, ""), "", full)

    head = pc.if_else(pc.equal(title, ""), "", pc.binary_join_element_wise(title, ".", ""))
    text = pc.binary_join_element_wise(head, part("Genres: ", genres), part("Tags: ", tags), " ")
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(text, r"\s{2,}", " "))


def _image_paths(table_col: pa.Array | None, ids: pa.Array, image_dir: Any, pattern: str) -> pa.Array | None:
    if image_dir is None:
        return table_col.cast(pa.string()) if table_col is not None else None
    base = Path(image_dir)
    if table_col is not None:
        names = table_col.cast(pa.string()).to_pylist()
    else:
        names = [pattern.format(item_id=i) for i in ids.to_pylist()]  # per item, not per interaction
    paths = [str(base / n) if n and (base / n).is_file() else None for n in names]
    missing = sum(p is None for p in paths)
    if missing:
        logger.info("%d of %d item image(s) not found under %s; their image_path is null.", missing, len(paths), base)
    return pa.array(paths, type=pa.string())


def load_items(
    source: Any,
    *,
    columns: Mapping[str, str | None] | None = None,
    format: str | None = None,
    sep: str | None = None,
    genre_sep: str = "|",
    tag_sep: str = "|",
    tags: Any = None,
    tag_columns: Mapping[str, str | None] | None = None,
    image_dir: str | os.PathLike | None = None,
    image_pattern: str = "{item_id}.jpg",
    split: str | None = "train",
    header: bool = True,
    column_names: Sequence[str] | None = None,
    encoding: str = "utf-8",
    quote_char: str | bool = '"',
    id_dtype: str | None = None,
    as_table: bool = False,
) -> Any:
    """Load item content (title, genres, tags, images) and build the one ``text`` string text encoders read.

    Args:
        source: any source :func:`load_interactions` accepts (e.g. MovieLens ``movies.csv``).
        columns: canonical name -> source column for ``item_id``, ``title``, ``genres``, ``tags``, ``image_path``;
            unmapped ones are found by aliases (``movieId``, ``name``, ``genre`` ...).
        format, sep, split, header, column_names, encoding, quote_char, id_dtype: as in :func:`load_interactions`.
        genre_sep, tag_sep: separators of genres / tags stored in one string (``"Action|Comedy"``).
        tags: optional second source with one (item, tag) per row (e.g. MovieLens ``tags.csv``); its distinct tags
            are added to each item's tags.
        tag_columns: column mapping (``item_id``, ``tag``) for ``tags``.
        image_dir: folder of item images; ``image_path`` (a column, or ``image_pattern`` formatted with the item
            id) is resolved inside it, and set to null where the file is missing (count logged).
        image_pattern: file name pattern when there is no image column.
        as_table: return a ``pyarrow.Table`` instead of a ``datasets.Dataset``.

    Returns:
        ``datasets.Dataset`` with ``item_id``, ``title`` (str), ``genres`` and ``tags`` (lists of str), ``text``
        (``"<title>. Genres: a, b. Tags: x, y."``) and, when there are images, ``image_path``.

    Raises:
        DataValidationError: missing/unknown columns, empty source, null/empty or duplicate item ids.

    Example:
        ```python
        >>> items = load_items("ml-latest-small/movies.csv", tags="ml-latest-small/tags.csv")
        >>> items[0]["text"]
        'Toy Story (1995). Genres: Adventure, Animation, Children, Comedy, Fantasy. Tags: pixar, fun'
        ```
    """
    read_kw = dict(split=split, header=header, encoding=encoding, quote_char=quote_char)
    table = read_table(source, format=format, sep=sep, column_names=column_names, **read_kw)
    if table.num_columns == 0 or table.num_rows == 0:
        raise DataValidationError(f"The item source {_name(source)} is empty: there are no items to load.")
    mapping = resolve_columns(table.column_names, columns, ITEM_COLUMNS, ("item_id",), ITEM_ALIASES)
    col = {k: table.column(v).combine_chunks() for k, v in mapping.items()}
    ids = _validate_ids(col["item_id"], "item_id", mapping["item_id"], id_dtype)
    rows, group = duplicate_groups([_codes(ids)])
    if len(rows):
        first = rows[group == 0]
        raise DataValidationError(
            f"{_describe('item_id', mapping['item_id'])} has {len(rows) - int(group.max()) - 1} duplicate id(s), "
            f"e.g. {ids[int(first[0])].as_py()!r} at rows {first[:_SHOW].tolist()} (0-based data rows). Each item "
            "must appear once; merge those rows first."
        )
    n = len(ids)
    title = pc.fill_null(col["title"].cast(pa.string()), "") if "title" in col else pa.array([""] * n)
    genres = _as_list(col.get("genres"), n, genre_sep, drop=NO_GENRE)
    item_tags = _as_list(col.get("tags"), n, tag_sep)
    if tags is not None:
        extra = _tags_from(tags, ids, tag_columns, encoding=encoding)
        item_tags = _concat_lists(item_tags, extra)
    out = {"item_id": ids, "title": title, "genres": genres, "tags": item_tags}
    out["text"] = _item_text(title, genres, item_tags)
    image = _image_paths(col.get("image_path"), ids, image_dir, image_pattern)
    if image is not None:
        out["image_path"] = image
    result = pa.table(out)
    return result if as_table else _to_dataset(result)


def _concat_lists(a: pa.Array, b: pa.Array) -> pa.Array:
    """Row-wise concatenation of two ``list<string>`` arrays, keeping each row's first occurrence of a value."""
    n = len(a)
    parent = np.concatenate([pc.list_parent_indices(a).to_numpy(), pc.list_parent_indices(b).to_numpy()])
    values = pa.concat_arrays([pc.list_flatten(a), pc.list_flatten(b)])
    order = np.argsort(parent, kind="stable")
    parent, values = parent[order], values.take(pa.array(order))
    codes = _codes(values)
    rows, group = duplicate_groups([parent, codes])
    keep = np.ones(len(parent), dtype=bool)
    if len(rows):
        later = np.ones(len(rows), dtype=bool)
        later[unique(group, return_index=True)[1]] = False
        keep[rows[later]] = False
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(parent[keep], minlength=n), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values.filter(pa.array(keep)))


def _name(source: Any) -> str:
    return repr(str(source)) if isinstance(source, (str, os.PathLike)) else type(source).__name__


__all__ = [
    "COLUMN_ALIASES",
    "ITEM_ALIASES",
    "ITEM_COLUMNS",
    "DUPLICATE_POLICIES",
    "DataValidationError",
    "duplicate_groups",
    "load_interactions",
    "load_items",
    "read_sasrec_sequences",
    "read_table",
    "resolve_columns",
    "validate_interactions",
]
