"""Finding items by title in an item catalogue (``load_items`` output, a DataFrame or a ``{id: title}`` mapping)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import numpy as np


def _titles(catalogue: Any, item_column: str = "item_id", title_column: str = "title") -> tuple[list, list[str]]:
    """``(item_ids, titles)`` of a catalogue: a DataFrame, ``datasets.Dataset``, Arrow table or mapping."""
    if isinstance(catalogue, Mapping):
        ids = list(catalogue)
        titles = [v.get(title_column, "") if isinstance(v, Mapping) else v for v in catalogue.values()]
        return ids, [str(t) for t in titles]
    if hasattr(catalogue, "to_pandas") and not hasattr(catalogue, "iloc"):
        catalogue = catalogue.to_pandas()
    for col in (item_column, title_column):
        if col not in catalogue.columns:
            raise ValueError(f"The item catalogue has no {col!r} column (columns: {list(catalogue.columns)}).")
    ids = [v.item() if isinstance(v, np.generic) else v for v in catalogue[item_column].tolist()]
    return ids, [str(t) for t in catalogue[title_column].tolist()]


def find_items(
    catalogue: Any,
    query: str,
    n: int = 5,
    cutoff: float = 0.6,
    item_column: str = "item_id",
    title_column: str = "title",
) -> list[tuple[Any, str]]:
    """Items whose title matches ``query``, best first: ``[(item_id, title), ...]``.

    The order: exact titles, then case-insensitive exact titles, then titles containing the query (case-insensitive,
    shortest first), then close titles by ``difflib`` similarity (at least ``cutoff``).

    Args:
        catalogue: item content with ``item_column`` and ``title_column`` (e.g. from
            :func:`~hf_recsys.data.load_items` or ``load_movielens``), or a mapping ``{item_id: title}``.
        query: the title to look for, e.g. ``"Toy Story (1995)"`` or ``"toy story"``.
        n: the most matches to return.
        cutoff: the smallest ``difflib`` similarity (0-1) of a fuzzy match.
        item_column, title_column: the catalogue's column names.

    Returns:
        Up to ``n`` ``(item_id, title)`` pairs; empty when nothing matches.

    Example:
        ```python
        >>> from hf_recsys.data import find_items
        >>> find_items({1: "Toy Story (1995)", 3114: "Toy Story 2 (1999)", 2: "Jumanji (1995)"}, "toy story")
        [(1, 'Toy Story (1995)'), (3114, 'Toy Story 2 (1999)')]
        ```
    """
    ids, titles = _titles(catalogue, item_column, title_column)
    q = query.strip().casefold()
    folded = [t.casefold() for t in titles]
    order: list[int] = [j for j, t in enumerate(titles) if t == query.strip()]
    order += [j for j, t in enumerate(folded) if t == q]
    order += sorted((j for j, t in enumerate(folded) if q in t), key=lambda j: len(titles[j]))
    if len(dict.fromkeys(order)) < n:
        close = difflib.get_close_matches(q, folded, n=n, cutoff=cutoff)
        by_title: dict[str, list[int]] = {}
        for j, t in enumerate(folded):
            by_title.setdefault(t, []).append(j)
        order += [j for t in close for j in by_title[t]]
    return [(ids[j], titles[j]) for j in list(dict.fromkeys(order))[:n]]


def resolve_item(catalogue: Any, query: str, **kwargs: Any) -> Any:
    """The one item id a title names: an exact (or case-insensitive exact) title, or the only partial match.

    Args:
        catalogue: as in :func:`find_items`.
        query: a title.
        **kwargs: ``item_column``, ``title_column``, ``cutoff`` of :func:`find_items`.

    Returns:
        The item id.

    Raises:
        ValueError: nothing matches, or several items do and none exactly (the candidates are named).
    """
    matches = find_items(catalogue, query, n=6, **kwargs)
    if matches and matches[0][1].casefold() == query.strip().casefold():
        exact = [m for m in matches if m[1].casefold() == query.strip().casefold()]
        if len(exact) == 1:
            return exact[0][0]
        matches = exact
    elif len(matches) == 1:
        return matches[0][0]
    if not matches:
        raise ValueError(f"No item in the catalogue has a title like {query!r}.")
    shown = "; ".join(f"{i!r}: {t}" for i, t in matches[:5])
    raise ValueError(f"{query!r} matches several items, give the full title or the id: {shown}")


__all__ = ["find_items", "resolve_item"]
