"""Readers for the MovieLens releases: ml-latest(-small) / ml-20m / ml-25m (CSV), ml-100k and ml-1m / ml-10m.

The format is detected from the files in the folder; ids stay MovieLens' own integer ids.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from .loading import load_interactions, load_items, read_table

logger = logging.getLogger(__name__)

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
    "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_ML100K_ITEM_COLUMNS = ["item_id", "title", "release_date", "video_release_date", "imdb_url", *ML100K_GENRES]


def detect_movielens(path: str | os.PathLike) -> str:
    """Which MovieLens layout a folder holds: ``"csv"`` (ml-latest-small, ml-latest, ml-20m, ml-25m: ``ratings.csv``
    + ``movies.csv``), ``"100k"`` (``u.data`` + ``u.item``) or ``"dat"`` (ml-1m / ml-10m: ``ratings.dat`` +
    ``movies.dat``, ``::``-separated)."""
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"MovieLens folder {str(folder)!r} does not exist.")
    if (folder / "ratings.csv").is_file():
        return "csv"
    if (folder / "u.data").is_file():
        return "100k"
    if (folder / "ratings.dat").is_file():
        return "dat"
    raise FileNotFoundError(
        f"{str(folder)!r} does not look like a MovieLens folder: expected ratings.csv + movies.csv (ml-latest-small, "
        f"ml-25m ...), u.data + u.item (ml-100k) or ratings.dat + movies.dat (ml-1m); found "
        f"{sorted(p.name for p in folder.iterdir())[:20]}."
    )


def _ml100k_items(folder: Path) -> pa.Table:
    raw = read_table(
        folder / "u.item", format="csv", sep="|", header=False, column_names=_ML100K_ITEM_COLUMNS,
        encoding="latin-1", quote_char=False,
    )  # fmt: skip
    flags = np.stack([raw.column(g).to_numpy(zero_copy_only=False) for g in ML100K_GENRES], axis=1) > 0
    rows, cols = np.nonzero(flags)  # row-major: grouped by item, genres in the standard order
    offsets = np.zeros(len(flags) + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=len(flags)), out=offsets[1:])
    genres = pa.ListArray.from_arrays(pa.array(offsets), pa.array(np.asarray(ML100K_GENRES, dtype=object)[cols]))
    return pa.table({"item_id": raw.column("item_id"), "title": raw.column("title"), "genres": genres})


def load_movielens(path: str | os.PathLike, *, with_tags: bool = True, duplicates: str = "error") -> tuple[Any, Any]:
    """Load a MovieLens folder into interactions and items.

    Args:
        path: the unpacked release folder (e.g. ``ml-latest-small/``, ``ml-100k/``, ``ml-1m/``).
        with_tags: add ``tags.csv`` / ``tags.dat`` (when present) to the items' tags and text.
        duplicates: duplicate policy passed to :func:`load_interactions`.

    Returns:
        ``(interactions, items)`` as ``datasets.Dataset``: interactions with ``user_id``, ``item_id``, ``rating``,
        ``timestamp``; items with ``item_id``, ``title``, ``genres``, ``tags`` and ``text``.

    Example:
        ```python
        >>> log, items = load_movielens("../shared/data/ml-latest-small")
        >>> log.num_rows, items.num_rows
        (100836, 9742)
        ```
    """
    folder = Path(path)
    kind = detect_movielens(folder)
    ids = {"user_id": "userId", "item_id": "movieId", "rating": "rating", "timestamp": "timestamp"}
    if kind == "csv":
        log = load_interactions(folder / "ratings.csv", columns=ids, duplicates=duplicates)
        tags = folder / "tags.csv"
        items = load_items(
            folder / "movies.csv",
            columns={"item_id": "movieId", "title": "title", "genres": "genres"},
            tags=tags if with_tags and tags.is_file() else None,
        )
    elif kind == "100k":
        names = ["user_id", "item_id", "rating", "timestamp"]
        log = load_interactions(
            folder / "u.data", format="tsv", header=False, column_names=names, duplicates=duplicates
        )
        items = load_items(_ml100k_items(folder))
    else:
        names = ["user_id", "item_id", "rating", "timestamp"]
        dat = dict(format="csv", sep="::", header=False, encoding="latin-1")
        log = load_interactions(folder / "ratings.dat", column_names=names, duplicates=duplicates, **dat)
        tags = None
        if with_tags and (folder / "tags.dat").is_file():
            tags = read_table(folder / "tags.dat", column_names=["user_id", "item_id", "tag", "timestamp"], **dat)
        items = load_items(
            folder / "movies.dat", column_names=["item_id", "title", "genres"], quote_char=False, tags=tags, **dat
        )
    logger.info(
        "Loaded MovieLens (%s layout) from %s: %d ratings, %d items.", kind, folder, log.num_rows, items.num_rows
    )
    return log, items


def load_movielens_1m_sasrec(path: str | os.PathLike) -> tuple[Any, Any]:
    """Load ML-1M as preprocessed by SASRec (``ml-1m.txt``, the file of the SASRec, BERT4Rec and gSASRec papers) with
    the title and genres of its items.

    Args:
        path: the folder holding ``ml-1m.txt``, ``sas_to_original_items.txt`` (``sas_id original_id``) and the
            original ``movies.dat`` (``MovieID::Title::Genres``, latin-1).

    Returns:
        ``(interactions, items)`` as ``datasets.Dataset``: interactions with ``user_id``, ``item_id`` (SASRec's ids)
        and a synthetic ``timestamp`` (each user's position in the file, see
        :func:`~hf_recsys.data.loading.read_sasrec_sequences`); items with ``item_id`` (SASRec's ids), ``title``,
        ``genres``, ``tags`` and ``text``, joined through the id map. Raises ``ValueError`` when an item of the
        map has no movie in ``movies.dat``.

    Example:
        ```python
        >>> log, items = load_movielens_1m_sasrec("../shared/data/ml-1m")  # doctest: +SKIP
        >>> log.num_rows, items.num_rows  # doctest: +SKIP
        (999611, 3416)
        ```
    """
    folder = Path(path)
    log = load_interactions(folder / "ml-1m.txt", format="sasrec")
    mapping = np.loadtxt(folder / "sas_to_original_items.txt", dtype=np.int64, ndmin=2)
    movies = read_table(
        folder / "movies.dat", format="csv", sep="::", header=False, column_names=["item_id", "title", "genres"],
        encoding="latin-1", quote_char=False,
    )  # fmt: skip
    original = movies.column("item_id").to_numpy()
    where = {int(m): i for i, m in enumerate(original)}
    missing = [int(o) for o in mapping[:, 1] if int(o) not in where]
    if missing:
        raise ValueError(f"{len(missing)} items of sas_to_original_items.txt are not in movies.dat: {missing[:10]}.")
    rows = pa.array([where[int(o)] for o in mapping[:, 1]])
    joined = movies.take(rows).set_column(0, "item_id", pa.array(mapping[:, 0]))
    items = load_items(joined)
    logger.info("Loaded SASRec ML-1M from %s: %d interactions, %d items.", folder, log.num_rows, items.num_rows)
    return log, items


__all__ = ["ML100K_GENRES", "detect_movielens", "load_movielens", "load_movielens_1m_sasrec"]
