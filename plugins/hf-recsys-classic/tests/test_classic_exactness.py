"""Exactness on ml-latest-small against independent implementations: numpy EASE, implicit's CosineRecommender, ALS
and BPR, and Surprise's SVD. Marked slow (real data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _helpers import identity_vocabs, load_ratings, ndcg_at_k, temporal_split, to_csr, to_interactions

from hf_recsys_classic import (
    ALSConfig,
    ALSModel,
    BiasedMFConfig,
    BiasedMFModel,
    BPRMFConfig,
    BPRMFModel,
    EASEConfig,
    EASEModel,
    ItemKNNConfig,
    ItemKNNModel,
)

pytestmark = [
    pytest.mark.slow,
    # implicit's own notices (its CosineRecommender converts COO internally; OpenBLAS thread advice)
    pytest.mark.filterwarnings("ignore:Method expects CSR input"),
    pytest.mark.filterwarnings("ignore:OpenBLAS is configured"),
]


@pytest.fixture(scope="module")
def movielens(ml_latest_small):
    df, nu, ni = load_ratings(ml_latest_small)
    train, test = temporal_split(df)
    return {"df": df, "nu": nu, "ni": ni, "train": train, "test": test, "x": to_csr(train, nu, ni)}


def _fit(model, df, nu, ni, **kwargs):
    return identity_vocabs(model, nu, ni).fit(to_interactions(df, nu, ni), show_progress=False, **kwargs)


def test_ease_equals_numpy_closed_form(movielens):
    # the float64 numpy reference costs minutes at 9,724 items on 2 cores: use the items with >= 10 ratings
    df, nu = movielens["df"], movielens["nu"]
    counts = df["i"].value_counts()
    sub = df[df["i"].isin(counts.index[counts >= 10])].copy()
    sub["i"] = sub["i"].astype("category").cat.codes.astype(np.int64)
    ni = int(sub["i"].max() + 1)
    model = _fit(EASEModel(EASEConfig(l2=200.0)), sub, nu, ni)
    x = to_csr(sub, nu, ni).toarray().astype(np.float64)
    precision = np.linalg.inv(x.T @ x + 200.0 * np.eye(ni))
    ref = precision / (-np.diag(precision))
    np.fill_diagonal(ref, 0.0)
    assert ni > 2000
    np.testing.assert_allclose(model.item_weights.numpy(), ref, atol=1e-4, rtol=0)


def test_item_knn_cosine_equals_implicit_top10_for_every_user(movielens):
    from implicit.nearest_neighbours import CosineRecommender

    m = movielens
    users = np.arange(m["nu"])
    reference = CosineRecommender(K=m["ni"])  # no pruning: similarities and scores must be equal
    reference.fit(m["x"], show_progress=False)
    ref_ids, ref_scores = reference.recommend(users, m["x"], N=10)
    model = _fit(ItemKNNModel(ItemKNNConfig(k=m["ni"])), m["train"], m["nu"], m["ni"])
    ids, scores = model.recommend(users, k=10)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-4, atol=1e-5)
    untied = np.isclose(ref_scores[:, :, None], ref_scores[:, None, :], rtol=1e-5).sum(2) == 1  # no tie in the row
    untied &= ~np.isclose(ref_scores, ref_scores[:, -1:], rtol=1e-5)  # nor with the 10th (ties across the cut)
    assert untied.mean() > 0.5
    np.testing.assert_array_equal(ids[untied], ref_ids[untied])


def test_item_knn_pruning_keeps_implicit_neighbours(movielens):
    """With top-k pruning, every item keeps the same neighbour similarities as implicit (ties aside: tied
    neighbours may be swapped). implicit's K counts the item itself, so K = k + 1."""
    from implicit.nearest_neighbours import CosineRecommender

    m, k = movielens, 50
    reference = CosineRecommender(K=k + 1)
    reference.fit(m["x"], show_progress=False)
    ref = reference.similarity.tocsr()
    ref.setdiag(0)
    ref.eliminate_zeros()
    model = _fit(ItemKNNModel(ItemKNNConfig(k=k)), m["train"], m["nu"], m["ni"])
    ours = np.sort(model.neighbor_sims.numpy(), axis=1)[:, ::-1]
    for i in range(m["ni"]):
        row = np.sort(ref.data[ref.indptr[i] : ref.indptr[i + 1]])[::-1][:k]
        np.testing.assert_allclose(ours[i, : len(row)], row, rtol=1e-4, atol=1e-6)


def test_als_matches_implicit_from_the_same_start(movielens):
    from implicit.als import AlternatingLeastSquares

    m = movielens
    factors, reg, alpha, iterations, seed = 64, 0.05, 2.0, 10, 0
    model = _fit(
        ALSModel(ALSConfig(factors=factors, regularization=reg, alpha=alpha, iterations=iterations, seed=seed)),
        m["train"],
        m["nu"],
        m["ni"],
    )
    # implicit's confidence is alpha * r; ours is 1 + alpha * r: give implicit the same C with its alpha = 1
    conf = m["x"].copy()
    conf.data = 1.0 + alpha * conf.data
    reference = AlternatingLeastSquares(factors=factors, regularization=reg, alpha=1.0, iterations=iterations)
    gen = torch.Generator().manual_seed(seed)  # the start ALSModel draws, handed to implicit
    reference.user_factors = (torch.rand(m["nu"], factors, generator=gen) * 0.01).numpy()
    reference.item_factors = (torch.rand(m["ni"], factors, generator=gen) * 0.01).numpy()
    reference.fit(conf, show_progress=False)
    users = np.arange(m["nu"])
    ref_ids, _ = reference.recommend(users, m["x"], N=10)
    ids, _ = model.recommend(users, k=10)
    test = to_csr(m["test"], m["nu"], m["ni"])
    ours, theirs = ndcg_at_k(ids, test), ndcg_at_k(ref_ids, test)
    assert abs(ours - theirs) <= 0.03 * theirs, (ours, theirs)
    scores = model.user_factors.numpy() @ model.item_factors.numpy().T
    ref_scores = reference.user_factors @ reference.item_factors.T
    assert np.corrcoef(scores.ravel(), ref_scores.ravel())[0, 1] > 0.999


def test_bprmf_ndcg_close_to_implicit_bpr(movielens):
    from implicit.bpr import BayesianPersonalizedRanking

    m = movielens
    users, test = np.arange(m["nu"]), to_csr(m["test"], m["nu"], m["ni"])
    reference = BayesianPersonalizedRanking(
        factors=64, learning_rate=0.01, regularization=0.01, iterations=100, random_state=0
    )
    reference.fit(m["x"], show_progress=False)
    theirs = ndcg_at_k(reference.recommend(users, m["x"], N=10)[0], test)
    model = _fit(BPRMFModel(BPRMFConfig(factors=64, epochs=40)), m["train"], m["nu"], m["ni"])
    ours = ndcg_at_k(model.recommend(users, k=10)[0], test)
    assert ours >= 0.97 * theirs, (ours, theirs)


def test_biased_mf_rmse_close_to_surprise_svd(movielens):
    surprise = pytest.importorskip("surprise")
    df, nu, ni = movielens["df"], movielens["nu"], movielens["ni"]
    perm = np.random.default_rng(0).permutation(len(df))
    n_test = int(round(0.2 * len(df)))
    test, train = df.iloc[perm[:n_test]], df.iloc[perm[n_test:]]
    data = surprise.Dataset.load_from_df(train[["u", "i", "rating"]], surprise.Reader(rating_scale=(0.5, 5.0)))
    svd = surprise.SVD(random_state=0)  # 100 factors, 20 epochs, lr 0.005, reg 0.02
    svd.fit(data.build_full_trainset())
    truth = test["rating"].to_numpy()
    theirs = np.sqrt(np.mean((np.array([svd.predict(u, i).est for u, i in zip(test["u"], test["i"])]) - truth) ** 2))
    model = _fit(BiasedMFModel(BiasedMFConfig(factors=100)), train, nu, ni)
    ours = np.sqrt(np.mean((model.score_pairs(test["u"].to_numpy(), test["i"].to_numpy()) - truth) ** 2))
    assert ours <= 1.02 * theirs, (ours, theirs)
