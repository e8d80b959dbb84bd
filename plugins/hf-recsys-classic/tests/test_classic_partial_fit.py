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


@pytest.mark.parametrize("as_loaded", [False, True])
def test_ease_float32_update_from_kept_diagonal_or_gram(as_loaded):
    """A float32 fit: P comes back from B and the diagonal fit kept (or, as after loading, one Gram matrix); the
    float64 updates stay as close to a float64 refit as the float32 fit itself is; new items grow P's buffer."""
    log = tiny_log(num_users=60, num_items=40)
    model = EASEModel(EASEConfig(l2=5.0)).fit(log)
    if as_loaded:
        del model._precision_diagonal
    parts = [partial_fit_log(log), log.iloc[::5].assign(user_id=lambda d: d.user_id + "-y")]
    for part in parts:
        model.partial_fit(part)
    refit = EASEModel(EASEConfig(l2=5.0, solver_dtype="float64"))
    refit.set_vocabs(model.user_vocab, model.item_vocab)
    refit.fit(pd.concat([log] + parts))
    fitted32 = EASEModel(EASEConfig(l2=5.0)).fit(log).item_weights.numpy()
    fitted64 = EASEModel(EASEConfig(l2=5.0, solver_dtype="float64")).fit(log).item_weights.numpy()
    tol = max(1e-5, 10 * np.abs(fitted32 - fitted64).max())
    np.testing.assert_allclose(model.item_weights.numpy(), refit.item_weights.numpy(), atol=tol)
    assert model._precision[1].shape[0] >= model.config.num_items


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


def _true_sims(x: sp.csr_matrix, shrink: float) -> np.ndarray:
    """Every pairwise similarity of knn_prune, in float64, self excluded (-inf)."""
    x = x.toarray().astype(np.float64)
    norms = np.linalg.norm(x, axis=1)
    sims = x @ x.T / (np.outer(norms, norms) + shrink if shrink > 0 else np.maximum(np.outer(norms, norms), 1e-24))
    np.fill_diagonal(sims, -np.inf)
    return sims


def _assert_valid_top_k(idx: torch.Tensor, val: torch.Tensor, want_val: torch.Tensor, x, shrink: float) -> None:
    """``(idx, val)`` is a top-k of ``x``'s similarities: its values are the rebuild's (ties may pick other rows),
    and every kept neighbour's value is its true similarity."""
    np.testing.assert_allclose(val.numpy(), want_val.numpy(), rtol=1e-5, atol=1e-6)
    sims = _true_sims(x, shrink)
    kept = val.numpy() > 0
    rows = np.nonzero(kept)[0]
    np.testing.assert_allclose(val.numpy()[kept], sims[rows, idx.numpy()[kept]], rtol=1e-5, atol=1e-6)
    for r in range(len(idx)):  # no row appears twice in a list
        assert len(set(idx[r, kept[r]].tolist())) == int(kept[r].sum())


def _changed_rows(x: sp.csr_matrix, rng, n_new: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``x`` with some rows emptied (their old neighbours lose them), some grown, and ``n_new`` rows appended."""
    n, d = x.shape
    new = x.tolil()
    touched = rng.choice(n, size=n // 8, replace=False)
    for r in touched[: len(touched) // 2]:
        new[r, :] = 0
    for r in touched[len(touched) // 2 :]:
        new[r, rng.choice(d, size=4)] = 1
    extra = sp.random(n_new, d, density=0.2, random_state=rng, format="csr", data_rvs=np.ones)
    return sp.vstack([new.tocsr(), extra]).tocsr(), touched


@pytest.mark.parametrize(
    ("kernel", "hit_budget"), [("torch", None), ("torch", 64), ("numba", None)], ids=["torch", "torch-slabs", "numba"]
)
@pytest.mark.parametrize("shrink", [0.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knn_prune_update_equals_a_rebuild_on_random_data(seed, shrink, kernel, hit_budget, monkeypatch):
    """Binary rows tie a lot; rows are emptied (lists drop below their old k-th value: the exact fallback runs) and
    appended; three updates in a row, the lists and bounds carried from one to the next (with a reserve and
    without); with a small hit budget the torch merge runs over several row slabs; the numba loops give the same
    values and bounds as the torch path."""
    from hf_recsys_classic import _utils
    from hf_recsys_classic._utils import knn_prune, knn_prune_update

    if kernel == "numba":
        pytest.importorskip("numba")
    if hit_budget is not None:
        monkeypatch.setattr(_utils, "_HIT_BUDGET", hit_budget)

    rng = np.random.default_rng(seed)
    k = 8
    x = sp.random(120, 40, density=0.08, random_state=rng, format="csr", data_rvs=np.ones)
    for depth in (k, 12):
        idx, val = knn_prune(x, x, depth, shrink)
        bound, cur, redone_total = None, x, 0
        for _ in range(3):
            cur, touched = _changed_rows(cur, rng, n_new=3)
            args = (cur, k, shrink, touched, idx, val, bound, depth)
            if kernel == "numba":  # the same values and bounds as the torch path (the tied indices may differ)
                _, t_val, t_bound, t_redone = knn_prune_update(*args, block_size=32, kernel="torch")
            idx, val, bound, redone = knn_prune_update(*args, block_size=32, kernel=kernel)
            if kernel == "numba":
                torch.testing.assert_close(val, t_val, rtol=0, atol=0)
                torch.testing.assert_close(bound, t_bound, rtol=0, atol=0)
                assert redone == t_redone
            redone_total += redone
            want_idx, want_val = knn_prune(cur, cur, k, shrink)
            assert idx.shape == (cur.shape[0], depth)
            _assert_valid_top_k(idx[:, :k], val[:, :k], want_val, cur, shrink)
            sims = _true_sims(cur, shrink)
            for r in np.nonzero(want_val[:, -1].numpy() > 0)[0]:  # no tie at the k-th value: the rebuild's rows
                if np.sum(np.isclose(sims[r], want_val[r, -1].item(), rtol=1e-6, atol=1e-7)) == 1:
                    assert set(idx[r, :k].tolist()) == set(want_idx[r].tolist())
            outside = sims.copy()
            np.put_along_axis(outside, idx.numpy(), -np.inf, axis=1)  # the bound holds every row left out
            assert np.all(outside.max(1) <= bound.numpy() + 1e-6)
        if depth == k:
            assert redone_total > 0  # the exact fallback ran


def test_knn_prune_update_names_a_bad_kernel(monkeypatch):
    from hf_recsys_classic import _knn_kernel
    from hf_recsys_classic._utils import knn_prune, knn_prune_update

    x = sp.random(30, 10, density=0.3, random_state=0, format="csr", data_rvs=np.ones)
    idx, val = knn_prune(x, x, 4, 0.0)
    with pytest.raises(ValueError, match="kernel must be one of"):
        knn_prune_update(x, 4, 0.0, np.array([1]), idx, val, kernel="gpu")
    monkeypatch.setattr(_knn_kernel, "_HAS_NUMBA", False)
    with pytest.raises(ImportError, match=r"hf-recsys-classic\[fast\]"):
        knn_prune_update(x, 4, 0.0, np.array([1]), idx, val, kernel="numba")
    knn_prune_update(x, 4, 0.0, np.array([1]), idx, val, kernel="auto")  # without numba: the torch path


@pytest.mark.parametrize("as_loaded", [False, True])
@pytest.mark.parametrize("model_cls", [ItemKNNModel, UserKNNModel])
def test_knn_incremental_update_equals_refit(model_cls, as_loaded):
    """weighting="none" takes the incremental path: the same neighbour values as a refit, each a true similarity
    (binary data ties a lot: a tied neighbour may differ from the refit's choice, both being top-k lists); also
    from the saved top-k lists alone, as after loading."""
    log = tiny_log(num_users=60, num_items=40)
    config = (ItemKNNConfig if model_cls is ItemKNNModel else UserKNNConfig)(k=6, shrink=1.0)
    updated = model_cls(config).fit(log, show_progress=False)
    if as_loaded:
        del updated._neighbour_state
    updated.partial_fit(partial_fit_log(log))
    refit = model_cls(config)
    refit.set_vocabs(updated.user_vocab, updated.item_vocab)
    refit.fit(pd.concat([log, partial_fit_log(log)]), show_progress=False)
    rows = updated.seen_items.T.tocsr() if model_cls is ItemKNNModel else updated.seen_items
    _assert_valid_top_k(updated.neighbor_ids, updated.neighbor_sims.detach(), refit.neighbor_sims.detach(), rows, 1.0)


def test_als_length_batches_partition_the_rows_within_their_caps():
    from hf_recsys_classic.als.modeling_als import _length_chunks

    lengths = np.r_[np.ones(9000, dtype=np.int64), np.random.default_rng(0).integers(0, 700, 3000)]
    chunks = _length_chunks(lengths, max_cells=50_000)
    assert sorted(np.concatenate(chunks).tolist()) == list(range(len(lengths)))  # every row once
    for rows in chunks:
        longest, shortest = np.maximum(lengths[rows], 1).max(), np.maximum(lengths[rows], 1).min()
        assert len(rows) <= 4096 and (len(rows) == 1 or len(rows) * longest <= 50_000)
        assert longest < 1.25 * shortest or longest == shortest  # little padding


def test_als_exact_solver_after_batching_equals_per_row_solves():
    model = ALSModel(ALSConfig(factors=4, iterations=2, solver="cholesky")).fit(tiny_log(), show_progress=False)
    conf = model.confidence(model.seen_items)
    items = model.item_factors.detach().double()
    got = model.fold_in(model.seen_items).double()
    for u in range(0, conf.shape[0], 7):
        row = conf[u]
        y = items[torch.from_numpy(row.indices.astype(np.int64))]
        c = torch.from_numpy(row.data.astype(np.float64))
        a = items.T @ items + (y.T * (c - 1)) @ y + model.config.regularization * torch.eye(4, dtype=torch.float64)
        torch.testing.assert_close(got[u], torch.linalg.solve(a, (y * c[:, None]).sum(0)), rtol=1e-3, atol=1e-4)


def _added_pairs(x: sp.csr_matrix, rng, n_new_rows: int, n_pairs: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """``x`` grown by ``n_new_rows`` rows and one column, with up to ``n_pairs`` new pairs (none there before)."""
    n, d = x.shape[0] + n_new_rows, x.shape[1] + 1
    grown = sp.csr_matrix((x.data, x.indices, np.r_[x.indptr, np.full(n_new_rows, x.indptr[-1])]), shape=(n, d))
    rows, cols = rng.integers(0, n, n_pairs), rng.integers(0, d, n_pairs)
    keys = np.unique(rows * d + cols)
    rows, cols = keys // d, keys % d
    fresh = np.asarray(grown[rows, cols]).ravel() == 0
    rows, cols = rows[fresh], cols[fresh]
    added = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, d))
    return (grown + added).tocsr(), rows, cols


@pytest.mark.parametrize("shrink", [0.0, 2.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_knn_count_update_equals_a_rebuild_on_random_data(seed, shrink):
    """The kept counts stay ``x x^T`` (the fit's, then each update's); four updates in a row, with rows and a column
    joining and one update of many pairs; the lists are valid top-k lists of the rebuild's similarities, their
    bounds hold every row left out, and without a reserve the full recomputation from the counts runs."""
    pytest.importorskip("numba")
    from hf_recsys_classic._utils import _new_counts, knn_count_update, knn_prune

    rng = np.random.default_rng(seed)
    k = 8
    for depth in (k, 12):
        x = sp.random(120, 40, density=0.08, random_state=rng, format="csr", data_rvs=np.ones).astype(np.float32)
        counts = _new_counts(*x.shape)
        idx, val = knn_prune(x, x, depth, shrink, counts=counts)
        np.testing.assert_array_equal(counts[:120, :120], (x @ x.T).toarray())
        bound, redone_total = None, 0
        for step in range(4):
            x, rows, cols = _added_pairs(x, rng, n_new_rows=70 if step == 1 else 3, n_pairs=300 if step == 1 else 30)
            x_t = x.T.tocsr()
            columns = lambda c, x_t=x_t: (x_t[c].indptr, x_t[c].indices)  # noqa: E731
            counts, (idx, val, bound, redone) = knn_count_update(
                counts, x.shape, (rows, cols), columns, k, shrink, idx, val, bound, depth
            )
            redone_total += redone
            n = x.shape[0]
            np.testing.assert_array_equal(counts[:n, :n], (x @ x.T).toarray())
            assert not counts[n:].any() and not counts[:, n:].any()  # the room for rows to come stays empty
            _, want_val = knn_prune(x, x, k, shrink)
            assert idx.shape == (n, depth)
            _assert_valid_top_k(idx[:, :k], val[:, :k], want_val, x, shrink)
            outside = _true_sims(x, shrink)
            np.put_along_axis(outside, idx.numpy(), -np.inf, axis=1)
            assert np.all(outside.max(1) <= bound.numpy() + 1e-6)
        assert counts.shape[0] >= x.shape[0] > 120 + 64  # grown past the first room
        if depth == k:
            assert redone_total > 0


@pytest.mark.parametrize("as_loaded", [False, True])
@pytest.mark.parametrize("model_cls", [ItemKNNModel, UserKNNModel])
def test_knn_update_cache_equals_refit(model_cls, as_loaded):
    """``update_cache=True``: the update runs from the kept counts (still ``x x^T`` after it) and gives a refit's
    neighbour values; after loading (no counts kept) the first update rebuilds the counts, the next runs from them."""
    pytest.importorskip("numba")
    from hf_recsys_classic import _utils

    log = tiny_log(num_users=60, num_items=40)
    cfg_cls = ItemKNNConfig if model_cls is ItemKNNModel else UserKNNConfig
    config = cfg_cls(k=6, shrink=1.0, update_reserve=0.5, update_cache=True)
    updated = model_cls(config).fit(log, show_progress=False)
    assert updated._count_state is not None
    if as_loaded:
        del updated._count_state, updated._neighbour_state
    calls = []
    real = _utils.knn_count_update
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_utils, "knn_count_update", lambda *a, **kw: calls.append(1) or real(*a, **kw))
        new = partial_fit_log(log)
        updated.partial_fit(new.iloc[:8])
        updated.partial_fit(new.iloc[8:])
    assert len(calls) == (1 if as_loaded else 2)
    refit = model_cls(cfg_cls(k=6, shrink=1.0))
    refit.set_vocabs(updated.user_vocab, updated.item_vocab)
    refit.fit(pd.concat([log, new]), show_progress=False)
    rows = updated.seen_items.T.tocsr() if model_cls is ItemKNNModel else updated.seen_items
    _assert_valid_top_k(updated.neighbor_ids, updated.neighbor_sims.detach(), refit.neighbor_sims.detach(), rows, 1.0)
    n = rows.shape[0]
    np.testing.assert_array_equal(updated._count_state[1][:n, :n], (rows @ rows.T).toarray())


def test_knn_update_cache_options_and_errors(monkeypatch):
    from hf_recsys_classic import _knn_kernel

    with pytest.raises(TypeError, match="update_cache must be True or False"):
        ItemKNNConfig(update_cache="yes")
    weighted = ItemKNNModel(ItemKNNConfig(k=5, weighting="bm25", update_cache=True))
    weighted.fit(tiny_log(), show_progress=False)
    assert weighted._count_state is None  # weighted similarities move globally: updates rebuild, no counts kept
    monkeypatch.setattr(_knn_kernel, "_HAS_NUMBA", False)
    with pytest.raises(ImportError, match=r"update_cache=True needs numba.*hf-recsys-classic\[fast\]"):
        UserKNNModel(UserKNNConfig(k=5, update_cache=True)).fit(tiny_log(), show_progress=False)
