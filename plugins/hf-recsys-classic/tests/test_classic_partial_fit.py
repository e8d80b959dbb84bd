"""partial_fit of the solver families: ALS against implicit 0.7's partial_fit_users, EASE / ItemKNN / UserKNN equal
to a refit on the whole log."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from hf_recsys import IdVocab
from hf_recsys.testing_utils import partial_fit_log, tiny_log

from hf_recsys_classic import (
    ALSConfig,
    ALSModel,
    EASEConfig,
    EASEModel,
    ItemKNNConfig,
    ItemKNNModel,
    UserKNNConfig,
    UserKNNModel,
)


def checkerboard(n: int) -> sp.csr_matrix:
    """implicit's test matrix: even users like the even items, odd users the odd ones (diagonal empty)."""
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    return sp.csr_matrix(((i - j) % 2 == 0) & (i != j), dtype=np.float32)


@pytest.fixture
def implicit_als():
    implicit = pytest.importorskip("implicit")
    from threadpoolctl import threadpool_limits

    likes = checkerboard(50)
    with threadpool_limits(1):
        model = implicit.cpu.als.AlternatingLeastSquares(
            factors=2, regularization=0.01, alpha=1.0, iterations=15, random_state=0, num_threads=1
        )
        model.fit(likes, show_progress=False)
    return model, likes


def _ours_from(implicit_model, likes):
    """Our ALS holding implicit's fitted factors. implicit's confidence is ``alpha * r`` and ours ``1 + alpha r``: on
    binary likes implicit's alpha=1 equals our alpha=0."""
    model = ALSModel(ALSConfig(factors=2, regularization=0.01, alpha=0.0, num_users=50, num_items=50))
    model.set_vocabs(IdVocab(np.arange(50), "user"), IdVocab(np.arange(50), "item"))
    model.user_factors = torch.nn.Parameter(torch.as_tensor(implicit_model.user_factors), requires_grad=False)
    model.item_factors = torch.nn.Parameter(torch.as_tensor(implicit_model.item_factors), requires_grad=False)
    model.seen_items = likes.copy()
    return model


def test_als_partial_fit_users_equals_implicit_on_its_checkerboard(implicit_als):
    theirs, likes = implicit_als
    ours = _ours_from(theirs, likes)
    top = lambda m: int(np.argmax(m.user_factors[0] @ m.item_factors.T))  # noqa: E731
    assert top(theirs) % 2 == 0 and top(ours) % 2 == 0  # user 0 likes the even items
    theirs.partial_fit_users([0], likes[1])
    ours.partial_fit_users(np.array([0]), likes[1])
    np.testing.assert_allclose(ours.user_factors.numpy(), theirs.user_factors, rtol=1e-4, atol=1e-5)
    assert top(theirs) % 2 == 1 and top(ours) % 2 == 1  # ... and now the odd ones: the top item flipped
    theirs.partial_fit_users([100], likes[1])  # a new id works at once
    ours.partial_fit_users(np.array([100]), likes[1])
    assert ours.user_factors.shape == (101, 2) == theirs.user_factors.shape
    np.testing.assert_allclose(ours.user_factors.numpy(), theirs.user_factors, rtol=1e-4, atol=1e-5)
    theirs.partial_fit_items([3], likes.T.tocsr()[4])
    ours.partial_fit_items(np.array([3]), likes.T.tocsr()[4])
    np.testing.assert_allclose(ours.item_factors.numpy(), theirs.item_factors, rtol=1e-4, atol=1e-5)


def test_als_partial_fit_in_id_space(implicit_als):
    theirs, likes = implicit_als
    ours = _ours_from(theirs, likes)
    odd = [j for j in range(1, 50, 2)]
    new = pd.DataFrame({"user_id": [100] * len(odd), "item_id": odd})
    ours.config.fitted_log = {"columns": {"user_id": "integer", "item_id": "integer"}, "last_timestamp": None}
    ours.partial_fit(new)
    ids, _ = ours.recommend([100], k=3, exclude_seen=False)  # new id 100 is served at once
    assert all(i % 2 == 1 for i in ids[0])
    # the new user's factors are the exact solve against the items as they were
    x = ours.user_factors[-1].double()
    y = torch.as_tensor(theirs.item_factors).double()
    a = y.T @ y + 0.01 * torch.eye(2, dtype=torch.float64)
    b = y[odd].sum(0)
    torch.testing.assert_close(x, torch.linalg.solve(a, b), rtol=1e-4, atol=1e-5)


def test_als_count_feedback_updates_from_kept_values():
    log = tiny_log()
    new = partial_fit_log(log)
    model = ALSModel(ALSConfig(factors=4, iterations=3, feedback="count")).fit(log, show_progress=False)
    model.partial_fit(pd.concat([new, log.iloc[:3].assign(timestamp=new.timestamp.max())]))
    assert model.feedback_values.sum() == len(log) + len(new) + 3  # counts of repeated pairs add up
    model.feedback_values = None  # as after loading
    with pytest.raises(ValueError, match="feedback='count'"):
        model.partial_fit(new.assign(user_id="new-z"))


def _update_vs_refit(model_cls, config, log, new):
    updated = model_cls(config).fit(log, show_progress=False).partial_fit(new)
    refit = model_cls(config).fit(log, show_progress=False)  # the refit keeps the grown vocabularies' order
    refit.set_vocabs(updated.user_vocab, updated.item_vocab)
    refit.fit(pd.concat([log, new]), show_progress=False)
    users = updated.user_vocab.ids.tolist()
    return updated.score(users, updated.item_vocab.ids.tolist()), refit.score(users, refit.item_vocab.ids.tolist())


@pytest.mark.parametrize("l2", [10.0, 0.5])
def test_ease_update_equals_refit(l2):
    log = tiny_log(num_users=60, num_items=40)
    new = partial_fit_log(log)
    got, want = _update_vs_refit(EASEModel, EASEConfig(l2=l2, solver_dtype="float64"), log, new)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_ease_repeated_updates_stay_exact():
    log = tiny_log(num_users=60, num_items=40)
    model = EASEModel(EASEConfig(l2=5.0, solver_dtype="float64")).fit(log)
    parts = [partial_fit_log(log)] + [
        log.iloc[k::7].assign(user_id=lambda d, k=k: d.user_id + f"-x{k}") for k in range(3)
    ]
    for part in parts:
        model.partial_fit(part)
    refit = EASEModel(EASEConfig(l2=5.0, solver_dtype="float64"))
    refit.set_vocabs(model.user_vocab, model.item_vocab)
    refit.fit(pd.concat([log] + parts))
    np.testing.assert_allclose(model.item_weights.numpy(), refit.item_weights.numpy(), atol=1e-4)


@pytest.mark.parametrize(
    "model_cls, config",
    [
        (ItemKNNModel, ItemKNNConfig(k=10, weighting="bm25")),
        (UserKNNModel, UserKNNConfig(k=10, weighting="tfidf")),
    ],
)
def test_knn_update_equals_refit(model_cls, config):
    log = tiny_log()
    got, want = _update_vs_refit(model_cls, config, log, partial_fit_log(log))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
