"""Small shared helpers for the classic-model tests (not a test module)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from hf_recsys.data.views import Interactions
from hf_recsys.data.vocab import IdVocab


def random_interactions(num_users: int = 30, num_items: int = 20, density: float = 0.25, seed: int = 0):
    """Random binary interactions with every user and item present, as ``Interactions`` with ratings."""
    rng = np.random.default_rng(seed)
    mask = rng.random((num_users, num_items)) < density
    mask[np.arange(num_users), rng.integers(0, num_items, num_users)] = True
    mask[rng.integers(0, num_users, num_items), np.arange(num_items)] = True
    users, items = np.nonzero(mask)
    ratings = rng.integers(1, 6, len(users)).astype(np.float32)
    return Interactions(users, items, ratings, np.arange(len(users)), num_users, num_items)


def identity_vocabs(model, num_users: int, num_items: int):
    """Attach vocabularies whose ids equal the indices, so ``fit(Interactions)`` and index-space checks line up."""
    model.set_vocabs(IdVocab(np.arange(num_users), "user"), IdVocab(np.arange(num_items), "item"))
    return model


def load_ratings(path) -> tuple[pd.DataFrame, int, int]:
    """ml-latest-small ratings with contiguous ``u`` / ``i`` codes."""
    df = pd.read_csv(path / "ratings.csv")
    df["u"] = df["userId"].astype("category").cat.codes.astype(np.int64)
    df["i"] = df["movieId"].astype("category").cat.codes.astype(np.int64)
    return df, int(df["u"].max() + 1), int(df["i"].max() + 1)


def temporal_split(df: pd.DataFrame, ratio: float = 0.2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per user, the latest ``ratio`` of interactions (rounded half up) as test."""
    df = df.sort_values(["u", "timestamp"], kind="stable")
    from_end = df.groupby("u").cumcount(ascending=False)
    size = df.groupby("u")["u"].transform("size")
    test = from_end < np.floor(size * ratio + 0.5)
    return df[~test], df[test]


def to_interactions(df: pd.DataFrame, num_users: int, num_items: int) -> Interactions:
    return Interactions(
        df["u"].to_numpy(np.int64, copy=True),
        df["i"].to_numpy(np.int64, copy=True),
        df["rating"].to_numpy(np.float32, copy=True),
        df["timestamp"].to_numpy(np.int64, copy=True),
        num_users,
        num_items,
    )


def to_csr(df: pd.DataFrame, num_users: int, num_items: int) -> sp.csr_matrix:
    m = sp.csr_matrix(
        (np.ones(len(df), np.float32), (df["u"].to_numpy(), df["i"].to_numpy())), shape=(num_users, num_items)
    )
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


def ndcg_at_k(top: np.ndarray, test: sp.csr_matrix, k: int = 10) -> float:
    """Mean NDCG@k (binary relevance) over users with test items, from ranked item indices ``top``."""
    users = np.flatnonzero(np.diff(test.indptr))
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    hits = np.array([np.isin(top[u, :k], test.indices[test.indptr[u] : test.indptr[u + 1]]) for u in users])
    ideal = np.array([discount[: min(k, n)].sum() for n in np.diff(test.indptr)[users]])
    return float(((hits * discount).sum(1) / ideal).mean())
