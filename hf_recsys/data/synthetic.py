"""A generator of realistic synthetic interaction logs: the embedded default data of the demo and the tests.

The model behind it:

* **tastes**: ``num_tastes`` latent taste clusters, each tied to a genre. Every item has a primary taste (its
  genre) and sometimes a secondary one; every user has a primary and a secondary taste.
* **long tail**: item popularity follows a Zipf-Mandelbrot law (``popularity_exponent``, ``popularity_offset``),
  shared across tastes.
* **preferences**: a user's interaction picks a taste (mostly the primary one, drifting towards the secondary one
  over the user's history, sometimes plain popularity), then an item with probability proportional to
  ``popularity * exp(taste_strength * affinity(taste, item))``.
* **activity skew**: interactions per user are log-normal (``activity_sigma``), at least a few each.
* **time**: each user is active over a random period; their interactions are spread over it, in order.
* **ratings**: 1-5 stars from the user-taste / item-genre affinity, item quality and noise.
* **text**: titles are drawn from word lists of the item's genres, so text encoders can place cold items.

No (user, item) pair repeats. Everything is vectorised (one ``rng.choice`` per taste), so 10 million
interactions take seconds.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import pyarrow as pa

from .arrays import unique

logger = logging.getLogger(__name__)

_WORDS = {
    "Action": "Fury Strike Bullet Chase Vengeance Blast Mission Hunter Steel Firestorm",
    "Comedy": "Wedding Party Roommates Oops Vacation Weekend Prank Neighbors Mix-Up Dance",
    "Drama": "Silence Letters Memory Promise Winter Daughter River Season Journey Hope",
    "Horror": "Curse Haunting Nightmare Blood Shadows Possession Crypt Scream Ritual Demon",
    "Romance": "Love Kiss Heart Paris Forever Valentine Sweetheart Summer Moonlight Embrace",
    "Sci-Fi": "Galaxy Robot Star Quantum Android Mars Orbit Cyborg Nebula Warp",
    "Animation": "Dragon Kingdom Bunny Toy Magic Princess Puppy Balloon Rainbow Kitten",
    "Documentary": "Planet Truth Oceans History Inside Earth Wildlife Secrets Climate Facts",
    "Thriller": "Conspiracy Witness Stranger Trap Alibi Suspect Deadline Ransom Obsession Code",
    "Western": "Outlaw Frontier Canyon Sheriff Saloon Ranch Gunslinger Dust Prairie Railroad",
    "Fantasy": "Sorcerer Quest Elves Wizard Crown Enchanted Sword Realm Prophecy Oracle",
    "Crime": "Heist Mob Detective Cartel Gangster Robbery Precinct Undercover Racket Syndicate",
}
GENRE_WORDS: dict[str, tuple[str, ...]] = {genre: tuple(words.split()) for genre, words in _WORDS.items()}
_TEMPLATES = ("{a} {b}", "The {a}", "{a} of the {b}", "Return of the {a}", "The Last {a}", "{a} and {b}", "{a}")
_START = 1_577_836_800  # 2020-01-01T00:00:00Z
_SPAN = 2 * 365 * 86_400


def _genre_names(num_tastes: int) -> list[str]:
    base = list(GENRE_WORDS)
    return [base[c % len(base)] + ("" if c < len(base) else f" {c // len(base) + 1}") for c in range(num_tastes)]


def _activity(rng: np.random.Generator, num_users: int, total: int, cap: int, sigma: float) -> np.ndarray:
    """Interactions per user: a floor plus a log-normal share of the rest, capped (the excess is re-spread)."""
    if total < num_users:
        raise ValueError(
            f"num_interactions ({total}) must be >= num_users ({num_users}): every user acts at least once."
        )
    if total > num_users * cap:
        raise ValueError(
            f"num_interactions ({total}) is too many for {num_users} users when a user may touch at most {cap} items "
            f"(half of num_items); raise num_items or num_users."
        )
    floor = min(5, total // num_users, cap)
    weight = rng.lognormal(0.0, sigma, num_users)
    counts = floor + rng.multinomial(total - floor * num_users, weight / weight.sum())
    for _ in range(50):
        excess = np.maximum(counts - cap, 0)
        if not excess.any():
            break
        counts -= excess
        room = np.where(counts < cap, weight, 0.0)
        counts += rng.multinomial(int(excess.sum()), room / room.sum())
    return np.minimum(counts, cap)


def _items(
    rng: np.random.Generator, num_items: int, num_tastes: int, exponent: float, offset: float
) -> dict[str, np.ndarray]:
    share = rng.dirichlet(np.full(num_tastes, 5.0))
    primary = rng.choice(num_tastes, size=num_items, p=share)
    secondary = (primary + rng.integers(1, max(num_tastes, 2), num_items)) % num_tastes
    has_second = rng.random(num_items) < 0.4
    rank = rng.permutation(num_items)
    popularity = 1.0 / (1.0 + rank + offset * num_items) ** exponent  # Zipf-Mandelbrot: a long tail, a flat top
    quality = rng.normal(0.0, 0.5, num_items) + 0.3 * (rank < num_items // 10)
    return {"primary": primary, "secondary": secondary, "has_second": has_second, "pop": popularity, "q": quality}


def _affinity(items: dict[str, np.ndarray], num_tastes: int) -> np.ndarray:
    """(num_tastes, num_items) affinity of each taste for each item: 1 for its genre, 0.5 for its second genre."""
    aff = np.zeros((num_tastes, len(items["pop"])))
    idx = np.arange(len(items["pop"]))
    aff[items["secondary"][items["has_second"]], idx[items["has_second"]]] = 0.5
    aff[items["primary"], idx] = 1.0
    return aff


def _slot_tastes(rng, user, frac, primary_u, secondary_u, explore: float, num_tastes: int) -> np.ndarray:
    """Taste behind each interaction: primary, drifting to secondary over the user's history, or popularity."""
    u = rng.random(len(user))
    p_second = 0.1 + 0.3 * frac
    taste = np.where(u < p_second, secondary_u[user], primary_u[user])
    return np.where(u > 1.0 - explore, num_tastes, taste)  # num_tastes = "just popular"


def _draw_items(
    rng, taste: np.ndarray, probs: np.ndarray, rows: np.ndarray | None = None, uniform: np.ndarray | None = None
) -> np.ndarray:
    """One item per row from its taste's distribution, by inverse CDF of ``uniform`` (fresh draws when None)."""
    t = (taste if rows is None else taste[rows]).astype(np.int16)
    u = rng.random(len(t)) if uniform is None else uniform
    order = np.argsort(t, kind="stable")  # radix sort on small ints
    bounds = np.concatenate([[0], np.cumsum(np.bincount(t, minlength=probs.shape[0]))])
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    out = np.empty(len(t), dtype=np.int64)
    for c in range(probs.shape[0]):
        seg = order[bounds[c] : bounds[c + 1]]
        if len(seg):
            out[seg] = np.searchsorted(cdf[c], u[seg], side="right").clip(max=probs.shape[1] - 1)
    return out


def _dedupe(rng, user, item, taste, probs, num_items, num_users) -> np.ndarray:
    """Redraw the items of repeated (user, item) pairs until none repeat (rows keep their place).

    Redraws use a flattened (square-root) version of the taste's distribution, then uniform draws, so a few rounds
    remove every repeat."""
    from .loading import duplicate_groups

    tempered = np.sqrt(probs)  # flatter than the first draw, still long-tailed: repeats fall quickly
    tempered /= tempered.sum(axis=1, keepdims=True)
    rows = np.arange(len(user))
    for round_ in range(100):
        dup_rows, group = duplicate_groups([user[rows], item[rows]])
        if len(dup_rows) == 0:
            return item
        first = np.zeros(len(dup_rows), dtype=bool)
        first[unique(group, return_index=True)[1]] = True  # rows ascend: a group's first row keeps its item
        redo = rows[dup_rows[~first]]
        if round_ < 4:
            item[redo] = _draw_items(rng, taste, tempered, redo)
        else:  # heavy users exhausted their taste: explore all items
            item[redo] = rng.integers(0, num_items, len(redo))
        touched = np.zeros(num_users, dtype=bool)
        touched[user[redo]] = True
        rows = np.flatnonzero(touched[user])
    raise RuntimeError("Could not remove repeated (user, item) pairs; lower num_interactions.")


def _timestamps(rng, user: np.ndarray, starts: np.ndarray, num_users: int) -> np.ndarray:
    length = rng.uniform(0.05, 1.0, num_users) * _SPAN
    begin = _START + rng.uniform(0.0, 1.0, num_users) * (_SPAN - length)
    steps = np.cumsum(rng.exponential(1.0, len(user)))
    base = np.concatenate([[0.0], steps])[starts[:-1]]
    total = steps[starts[1:] - 1] - base + rng.exponential(1.0, num_users)
    rel = (steps - base[user]) / total[user]
    return (begin[user] + rel * length[user]).astype(np.int64)


def _ratings(rng, user, item, taste_u, items, affinity) -> np.ndarray:
    bias = rng.normal(0.0, 0.4, taste_u.shape[0])
    score = 2.6 + 1.4 * affinity[taste_u[user], item] + items["q"][item] + bias[user] + rng.normal(0, 0.6, len(user))
    return np.clip(np.rint(score), 1, 5).astype(np.float32)


def _titles(rng, items: dict[str, np.ndarray], num_tastes: int) -> tuple[list[str], list[list[str]], list[str]]:
    names = _genre_names(num_tastes)
    words = [GENRE_WORDS[n.split(" ")[0]] for n in names]
    n = len(items["pop"])
    a_idx, b_idx = rng.integers(0, 10, n), rng.integers(0, 10, n)
    tmpl = rng.integers(0, len(_TEMPLATES), n)
    year = rng.integers(1960, 2020, n)
    titles, genres, texts = [], [], []
    for i in range(n):  # per item (not per interaction): strings are built in Python
        p, s = items["primary"][i], items["secondary"][i]
        b_src = words[s] if items["has_second"][i] else words[p]
        title = _TEMPLATES[tmpl[i]].format(a=words[p][a_idx[i]], b=b_src[b_idx[i]]) + f" ({year[i]})"
        g = [names[p]] + ([names[s]] if items["has_second"][i] else [])
        titles.append(title)
        genres.append(g)
        texts.append(f"{title}. Genres: {', '.join(g)}.")
    return titles, genres, texts


def generate_interactions_table(
    num_users: int = 1000,
    num_items: int = 500,
    num_interactions: int = 20_000,
    seed: int = 0,
    *,
    num_tastes: int = 8,
    popularity_exponent: float = 1.2,
    popularity_offset: float = 0.01,
    activity_sigma: float = 1.0,
    taste_strength: float = 4.0,
    explore: float = 0.1,
    with_ratings: bool = True,
    sort_by_time: bool = False,
) -> tuple[pa.Table, pa.Table]:
    """Like :func:`generate_interactions`, but returns the two ``pyarrow.Table``s (no ``datasets`` wrapping)."""
    if num_users < 1 or num_items < 2 or num_tastes < 1:
        raise ValueError("num_users must be >= 1, num_items >= 2 and num_tastes >= 1.")
    rng = np.random.default_rng(seed)
    items = _items(rng, num_items, num_tastes, popularity_exponent, popularity_offset)
    affinity = _affinity(items, num_tastes)
    logits = np.log(items["pop"])[None, :] + taste_strength * affinity
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = np.vstack([probs, items["pop"][None, :]])  # the extra row: popularity alone
    probs /= probs.sum(axis=1, keepdims=True)
    counts = _activity(rng, num_users, num_interactions, max(1, num_items // 2), activity_sigma)
    starts = np.concatenate([[0], np.cumsum(counts)])
    user = np.repeat(np.arange(num_users, dtype=np.int64), counts)
    frac = (np.arange(len(user)) - starts[user]) / np.maximum(counts[user] - 1, 1)
    taste_share = rng.dirichlet(np.full(num_tastes, 5.0))
    primary_u = rng.choice(num_tastes, size=num_users, p=taste_share)
    secondary_u = (primary_u + rng.integers(1, max(num_tastes, 2), num_users)) % num_tastes
    taste = _slot_tastes(rng, user, frac, primary_u, secondary_u, explore, num_tastes)
    item = _dedupe(rng, user, _draw_items(rng, taste, probs), taste, probs, num_items, num_users)
    columns = {"user_id": user + 1, "item_id": item + 1}
    if with_ratings:
        columns["rating"] = _ratings(rng, user, item, primary_u, items, affinity)
    columns["timestamp"] = _timestamps(rng, user, starts, num_users)
    table = pa.table(columns)
    if sort_by_time:
        table = table.take(np.argsort(columns["timestamp"], kind="stable"))
    titles, genres, texts = _titles(rng, items, num_tastes)
    item_table = pa.table(
        {
            "item_id": np.arange(1, num_items + 1, dtype=np.int64),
            "title": titles,
            "genres": pa.array(genres, type=pa.list_(pa.string())),
            "text": texts,
        }
    )
    return table, item_table


def generate_interactions(
    num_users: int = 1000,
    num_items: int = 500,
    num_interactions: int = 20_000,
    seed: int = 0,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Generate a realistic synthetic log and its item table (see the module docstring for the model).

    Args:
        num_users: users (each acts at least once; ids ``1..num_users``).
        num_items: items (ids ``1..num_items``); a user touches at most half of them.
        num_interactions: rows, exactly (no (user, item) pair repeats).
        seed: everything is deterministic for a seed.
        num_tastes: latent taste clusters (= genres; 12 genres have distinct title words).
        popularity_exponent: Zipf exponent of item popularity (larger = steeper long tail).
        popularity_offset: Zipf-Mandelbrot offset as a share of ``num_items``: popularity is
            ``1 / (rank + 1 + offset * num_items) ** exponent``, so the top items are not absurdly dominant.
        activity_sigma: log-normal sigma of interactions per user (larger = more skew).
        taste_strength: how much tastes outweigh popularity.
        explore: share of interactions driven by popularity alone.
        with_ratings: add a 1-5 ``rating`` column.
        sort_by_time: order rows by timestamp (default: by user, each user's rows in time order).

    Returns:
        ``(interactions, items)`` as ``datasets.Dataset``: interactions with ``user_id``, ``item_id``, ``rating``,
        ``timestamp``; items with ``item_id``, ``title``, ``genres`` (list of str) and ``text``.

    Example:
        ```python
        >>> from hf_recsys.data import generate_interactions
        >>> log, items = generate_interactions(num_users=100, num_items=50, num_interactions=1_000, seed=0)
        >>> log.num_rows, items.num_rows
        (1000, 50)
        ```
    """
    from .loading import _to_dataset

    table, item_table = generate_interactions_table(num_users, num_items, num_interactions, seed, **kwargs)
    return _to_dataset(table), _to_dataset(item_table)


def write_synthetic_parquet(
    path: str | os.PathLike, items_path: str | os.PathLike | None = None, **kwargs: Any
) -> tuple[str, str | None]:
    """Generate a log with :func:`generate_interactions_table` and write it as Parquet (and the items, if asked).

    Returns:
        ``(path, items_path)`` as strings.
    """
    import pyarrow.parquet as pq

    table, item_table = generate_interactions_table(**kwargs)
    pq.write_table(table, str(path))
    if items_path is not None:
        pq.write_table(item_table, str(items_path))
    return str(path), None if items_path is None else str(items_path)


__all__ = ["GENRE_WORDS", "generate_interactions", "generate_interactions_table", "write_synthetic_parquet"]
