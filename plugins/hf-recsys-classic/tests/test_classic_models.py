"""Fast checks of every classic model against small numpy references (tiny generated data)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _helpers import identity_vocabs, random_interactions
from torch.nn import functional as F

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
    NeuMFConfig,
    NeuMFModel,
    UserKNNConfig,
    UserKNNModel,
)
from hf_recsys_classic._utils import torch_threads, weight_rows
from hf_recsys_classic.als.modeling_als import _Confidence, solve_cg, solve_exact


def _fit(model, inter):
    return identity_vocabs(model, inter.num_users, inter.num_items).fit(inter, show_progress=False)


def ease_reference(x: np.ndarray, l2: float) -> np.ndarray:
    """Steck's 20-line numpy EASE, float64."""
    gram = x.T @ x + l2 * np.eye(x.shape[1])
    precision = np.linalg.inv(gram)
    weights = precision / (-np.diag(precision))
    np.fill_diagonal(weights, 0.0)
    return weights


def cosine_reference(x: np.ndarray, shrink: float = 0.0) -> np.ndarray:
    """Cosine similarity between the rows of ``x`` with shrinkage, self-similarity zeroed."""
    norms = np.linalg.norm(x, axis=1)
    sim = (x @ x.T) / (np.outer(norms, norms) + shrink + 1e-30)
    np.fill_diagonal(sim, 0.0)
    return sim


def test_ease_equals_numpy_closed_form():
    inter = random_interactions(40, 25)
    for dtype in ("float32", "float64"):
        model = _fit(EASEModel(EASEConfig(l2=3.0, solver_dtype=dtype)), inter)
        ref = ease_reference(inter.to_csr().toarray().astype(np.float64), 3.0)
        np.testing.assert_allclose(model.item_weights.numpy(), ref, atol=1e-5)
    hist = inter.to_csr()[:5]
    np.testing.assert_allclose(model.score_histories(hist).numpy(), hist.toarray() @ ref, atol=1e-4)


@pytest.mark.parametrize("shrink", [0.0, 2.0])
def test_item_knn_equals_bruteforce_cosine(shrink):
    inter = random_interactions(40, 25, seed=1)
    x = inter.to_csr().toarray().astype(np.float64)
    sim = cosine_reference(x.T, shrink)
    k = 6
    model = _fit(ItemKNNModel(ItemKNNConfig(k=k, shrink=shrink)), inter)
    # every kept neighbour value is that item's k-th best or better; the pruned matrix scores the users
    kept = model.similarity_matrix().toarray()
    for i in range(inter.num_items):
        top = np.sort(sim[i])[::-1][:k]
        np.testing.assert_allclose(np.sort(kept[i][kept[i] > 0])[::-1], top[top > 0], rtol=1e-5)
        assert np.allclose(kept[i][kept[i] > 0], sim[i][kept[i] > 0], rtol=1e-5)
    np.testing.assert_allclose(model.score_users(torch.arange(5)).numpy(), x[:5] @ kept, rtol=1e-5)


def test_weighting_matches_implicit():
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    inter = random_interactions(30, 20, seed=2)
    counts = inter.to_csr("rating").T.tocsr()
    ours = weight_rows(counts, "tfidf").toarray()
    np.testing.assert_allclose(ours, implicit_nn.tfidf_weight(counts).toarray(), rtol=1e-5)
    ours = weight_rows(counts, "bm25", k1=1.2, b=0.75).toarray()
    np.testing.assert_allclose(ours, implicit_nn.bm25_weight(counts, K1=1.2, B=0.75).toarray(), rtol=1e-5)


def test_user_knn_equals_bruteforce():
    inter = random_interactions(30, 20, seed=3)
    x = inter.to_csr().toarray().astype(np.float64)
    sim = cosine_reference(x)
    k = 5
    model = _fit(UserKNNModel(UserKNNConfig(k=k)), inter)
    pruned = np.zeros_like(sim)
    for u in range(inter.num_users):
        order = np.argsort(-sim[u], kind="stable")[:k]
        pruned[u, order] = sim[u, order]
    got = model.score_users(torch.arange(inter.num_users)).numpy()
    ties = np.isclose(np.sort(sim, 1)[:, -k], np.sort(sim, 1)[:, -k - 1])  # the k-th and (k+1)-th tie
    np.testing.assert_allclose(got[~ties], (pruned @ x)[~ties], rtol=1e-5, atol=1e-6)
    # a cold user with a training user's history gets that user's neighbours (plus the user itself)
    cold = model.score_histories(inter.to_csr()[[0]]).numpy()[0]
    assert np.argmax(cold) in np.flatnonzero(x[0]) or cold.max() > 0


def test_als_solvers_agree_with_numpy_normal_equations():
    inter = random_interactions(25, 15, seed=4)
    conf = inter.to_csr().astype(np.float32)
    conf.data = 1.0 + 3.0 * conf.data
    rng = np.random.default_rng(0)
    items = torch.from_numpy(rng.normal(size=(15, 4)).astype(np.float32))
    reg = 0.1
    y = items.double().numpy()
    ref = []
    for u in range(25):
        c = conf[u].toarray().ravel()
        full_c = np.where(c > 0, c, 1.0)
        a = y.T @ (full_c[:, None] * y) + reg * np.eye(4)
        ref.append(np.linalg.solve(a, y.T @ (full_c * (c > 0))))  # b = Y^T C_u p_u
    ref = np.array(ref)
    np.testing.assert_allclose(solve_exact(conf, items, reg).numpy(), ref, rtol=1e-4, atol=1e-5)
    cg = solve_cg(_Confidence(conf), torch.zeros(25, 4), items, reg, steps=20)
    np.testing.assert_allclose(cg.numpy(), ref, rtol=1e-3, atol=1e-4)


def test_als_fold_in_reproduces_a_training_user():
    inter = random_interactions(30, 20, seed=5)
    model = _fit(ALSModel(ALSConfig(factors=4, iterations=30, solver="cholesky", regularization=0.1)), inter)
    # a fold-in is one more exact user sweep against the final item factors: near the (converged) training users
    hist = inter.to_csr()[:3]
    folded = model.fold_in(hist)
    again = solve_exact(model.confidence(hist), model.item_factors, 0.1)
    np.testing.assert_allclose(folded.numpy(), again.numpy(), rtol=1e-5)
    np.testing.assert_allclose(folded.numpy(), model.user_factors[:3].numpy(), atol=2e-2)


@pytest.mark.parametrize(
    "kernel, tables",
    [("torch", (6, 9)), ("torch", (40, 50)), ("numba", (6, 9))],
    ids=["torch-L2-as-table-scaling", "torch-L2-per-triple", "numba"],
)
@pytest.mark.parametrize(
    "users, pos, neg",
    [
        ([0, 1, 2], [1, 2, 3], [4, 5, 6]),  # distinct rows
        ([0, 0, 2, 0], [1, 4, 3, 1], [4, 5, 1, 6]),  # a user, an item, and an item as positive and negative repeat
        # more triples than the numba step's prefetch lookahead (6): the prefetching part of its loop runs
        ([0, 1, 2, 3, 4, 5, 0, 1, 2], [1, 2, 3, 4, 5, 6, 7, 8, 1], [8, 7, 6, 5, 4, 3, 2, 1, 0]),
    ],
)
def test_bprmf_sgd_step_is_the_gradient_of_forward_loss(users, pos, neg, kernel, tables):
    # torch: small tables take the L2 terms as one scaling of the table (shrink_rows), large ones per triple;
    # numba: one compiled loop over the triples (the same update)
    if kernel == "numba":
        pytest.importorskip("numba")
    num_users, num_items = tables
    config = BPRMFConfig(num_users=num_users, num_items=num_items, factors=3, regularization=0.1, learning_rate=0.5)
    model = BPRMFModel(config)
    model.config.sgd_kernel = kernel
    with torch.no_grad():
        model.item_biases.weight.normal_()
    users, pos, neg = torch.tensor(users), torch.tensor(pos), torch.tensor(neg)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    loss = model(users, pos, neg).loss * len(users)  # forward averages; sgd_step applies per-triple gradients
    grads = torch.autograd.grad(loss, list(model.parameters()))
    step_loss = model.sgd_step(0.5, users, pos, neg)
    for (name, p), g in zip(model.named_parameters(), grads):
        np.testing.assert_allclose(p.detach().numpy(), (before[name] - 0.5 * g).numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(before[name])
        expected = float(F.softplus(-model(users, pos).scores + model(users, neg).scores).mean())
    assert step_loss == pytest.approx(expected, rel=1e-5)


def test_bprmf_numba_kernel_fits_like_the_torch_path():
    pytest.importorskip("numba")
    inter = random_interactions(30, 20, seed=3)
    fitted = {}
    for kernel in ("torch", "numba"):
        config = BPRMFConfig(factors=4, epochs=3, batch_size=64, sgd_kernel=kernel)
        fitted[kernel] = _fit(BPRMFModel(config), inter)
    for (name, a), (_, b) in zip(fitted["torch"].named_parameters(), fitted["numba"].named_parameters()):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-6, err_msg=name)


def test_bprmf_numba_step_split_over_threads_equals_one_thread_up_to_rounding():
    """Each thread accumulates its share of the triples; the shares are applied in a fixed order: the same update as
    one thread up to float32 rounding (a row touched by both shares is added twice), and the same on every run."""
    pytest.importorskip("numba")
    from hf_recsys_classic.bprmf import _kernel

    gen = torch.Generator().manual_seed(0)
    u, i, j = (torch.randint(0, n, (6000,), generator=gen) for n in (50, 80, 80))
    start = (torch.randn(50, 8, generator=gen) * 0.1, torch.randn(80, 8, generator=gen) * 0.1, torch.randn(80) * 0.1)
    out = {}
    for threads in (1, 2, 2):
        tables = tuple(t.clone() for t in start)
        loss = _kernel.BPRKernel(50, 80, 8, threads=threads).step(*tables, u, i, j, 0.05, 0.01, True)
        out.setdefault(threads, []).append((loss, tables))
    (loss1, one), (loss2, two), (_, again) = out[1][0], out[2][0], out[2][1]
    assert loss2 == pytest.approx(loss1, rel=1e-12)
    for s0, a, b, c in zip(start, one, two, again):
        assert not torch.equal(a, s0)  # the step moved every table
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
        assert torch.equal(b, c)
    with pytest.raises(ValueError, match="sgd_threads must be a positive integer"):
        BPRMFConfig(sgd_threads=0)


def test_bprmf_numba_kernel_refuses_what_it_cannot_run(monkeypatch):
    from hf_recsys_classic.bprmf import _kernel

    model = BPRMFModel(BPRMFConfig(num_users=3, num_items=4, factors=2, sgd_kernel="numba"))
    idx = torch.tensor([0, 1])
    monkeypatch.setattr(_kernel, "_HAS_NUMBA", False)  # as without numba
    with pytest.raises(ImportError, match=r"hf-recsys-classic\[fast\]"):
        model.sgd_step(0.1, idx, idx, idx + 1)
    model.config.sgd_kernel = "auto"  # falls back to the torch path
    assert np.isfinite(model.sgd_step(0.1, idx, idx, idx + 1))


def test_biased_mf_sgd_step_is_the_gradient_of_forward_loss():
    model = BiasedMFModel(BiasedMFConfig(num_users=5, num_items=7, factors=3, regularization=0.1, learning_rate=0.1))
    model.global_mean = torch.tensor(3.0)
    users, items, r = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([4.0, 2.0, 5.0])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    # Surprise's update is the gradient of 1/2 err^2 + reg/2 ||theta||^2 per rating
    out = model(users, items)
    pu, qi = model.user_embeddings(users), model.item_embeddings(items)
    bu, bi = model.user_biases(users).squeeze(-1), model.item_biases(items).squeeze(-1)
    half = 0.5 * (r - out.scores).square() + 0.05 * (bu**2 + bi**2 + (pu**2).sum(-1) + (qi**2).sum(-1))
    grads = torch.autograd.grad(half.sum(), list(model.parameters()))
    model.sgd_step(0.1, users, items, r)
    for (name, p), g in zip(model.named_parameters(), grads):
        np.testing.assert_allclose(p.detach().numpy(), (before[name] - 0.1 * g).numpy(), rtol=1e-5, atol=1e-6)


def test_biased_mf_fold_in_minimises_the_user_objective():
    inter = random_interactions(20, 15, seed=6)
    model = _fit(BiasedMFModel(BiasedMFConfig(factors=3, epochs=3, history_rating=4.0, regularization=0.1)), inter)
    hist = inter.to_csr()[[0]]
    theta = model.fold_in(hist)[0].clone().requires_grad_(True)
    items = torch.from_numpy(hist.indices.astype(np.int64))
    q, bi = model.item_embeddings.weight[items].detach(), model.item_biases.weight[items, 0].detach()
    err = 4.0 - (model.global_mean + theta[-1] + bi + q @ theta[:-1])
    objective = err.square().sum() + 0.1 * len(items) * theta.square().sum()
    (grad,) = torch.autograd.grad(objective, theta)
    assert grad.abs().max() < 1e-3


def test_neumf_all_item_scores_equal_pairwise_logits():
    model = NeuMFModel(NeuMFConfig(num_users=4, num_items=11, factors=3, mlp_layers=[8, 4, 2]))
    model.eval()
    users = torch.tensor([0, 3])
    full = model(users).scores
    pairs = model(users.repeat_interleave(11), torch.arange(11).repeat(2)).scores.view(2, 11)
    torch.testing.assert_close(full, pairs, rtol=1e-5, atol=1e-6)
    out = model(users, torch.tensor([1, 2]), labels=torch.tensor([1.0, 0.0]))
    assert out.loss is not None and out.loss.ndim == 0


def test_gradient_models_train_through_forward_with_a_torch_optimizer():
    inter = random_interactions(30, 20, seed=7)
    for model in (
        BPRMFModel(BPRMFConfig(factors=4, epochs=3, optimizer="adam", learning_rate=0.05, batch_size=64)),
        BiasedMFModel(BiasedMFConfig(factors=4, epochs=3, optimizer="adam", learning_rate=0.05, batch_size=64)),
    ):
        _fit(model, inter)
        assert model.last_training_history.epoch_losses[-1] < model.last_training_history.epoch_losses[0]
        assert all(p.requires_grad for p in model.parameters())


def test_closed_form_models_are_frozen():
    inter = random_interactions()
    for model in (ItemKNNModel(ItemKNNConfig()), EASEModel(EASEConfig(l2=1.0)), ALSModel(ALSConfig(factors=3))):
        _fit(model, inter)
        assert not any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    "cls, kwargs, match",
    [
        (ItemKNNConfig, {"weighting": "idf"}, "weighting"),
        (ItemKNNConfig, {"k": 0}, "k"),
        (EASEConfig, {"l2": -1}, "l2"),
        (ALSConfig, {"solver": "lu"}, "solver"),
        (BPRMFConfig, {"negative_sampling": "hard"}, "negative_sampling"),
        (BiasedMFConfig, {"optimizer": "lbfgs"}, "optimizer"),
        (NeuMFConfig, {"mlp_layers": [7, 3]}, "mlp_layers"),
    ],
)
def test_bad_options_are_named(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)


def test_biased_mf_needs_ratings():
    inter = random_interactions()
    inter.rating = None
    with pytest.raises(ValueError, match="rating"):
        _fit(BiasedMFModel(BiasedMFConfig()), inter)


def test_knn_prune_by_small_blocks_and_slabs_equals_one_block():
    from hf_recsys_classic._utils import knn_prune

    x = random_interactions(30, 50, seed=3).to_csr().T.tocsr()  # 50 items x 30 users
    for shrink in (0.0, 1.5):
        one_idx, one_val = knn_prune(x, x, 7, shrink, block_size=4096, kernel="torch")
        # 7 row blocks x 7 column slabs, on a thread pool
        idx, val = knn_prune(x, x, 7, shrink, block_size=8, kernel="torch")
        torch.testing.assert_close(val, one_val)
        assert torch.equal(idx[val > 0], one_idx[val > 0])


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    ("shrink", "normalize", "exclude_self", "other_left"),
    [(0.0, True, True, False), (1.5, True, True, False), (0.0, False, True, False), (1.5, True, False, True)],
    ids=["cosine", "shrunk", "dot", "other-left"],
)
def test_knn_prune_numba_loops_equal_the_torch_path(shrink, normalize, exclude_self, other_left, threads):
    """The co-occurrence loops give the torch path's values (same summation order) and, where a row's values do not
    tie, its indices; rows with fewer positive similarities than k keep zeros; on 1 and 2 threads."""
    pytest.importorskip("numba")
    from hf_recsys_classic._utils import knn_prune

    rng = np.random.default_rng(5)
    right = sp.random(90, 40, density=0.06, random_state=rng, format="csr", dtype=np.float32)
    right.data = rng.uniform(0.5, 2.0, right.nnz).astype(np.float32)
    left = sp.random(25, 40, density=0.1, random_state=rng, format="csr", dtype=np.float32) if other_left else right
    with torch_threads(threads):
        want_idx, want_val = knn_prune(left, right, 12, shrink, normalize, exclude_self, kernel="torch")
        idx, val = knn_prune(left, right, 12, shrink, normalize, exclude_self, kernel="numba")
    torch.testing.assert_close(val, want_val, rtol=1e-6, atol=0)
    assert (want_val == 0).any()  # some rows have fewer than k positive similarities: zeros, index 0
    assert torch.equal(idx[val == 0], torch.zeros_like(idx[val == 0]))
    untied = [r for r in range(len(val)) if len(set(val[r][val[r] > 0].tolist())) == int((val[r] > 0).sum())]
    assert len(untied) > len(val) // 2
    for r in untied:
        assert torch.equal(idx[r], want_idx[r])


def test_knn_prune_names_a_bad_kernel(monkeypatch):
    from hf_recsys_classic import _knn_kernel
    from hf_recsys_classic._utils import knn_prune

    x = sp.random(30, 10, density=0.3, random_state=0, format="csr", data_rvs=np.ones)
    with pytest.raises(ValueError, match="kernel must be one of"):
        knn_prune(x, x, 4, kernel="gpu")
    monkeypatch.setattr(_knn_kernel, "_HAS_NUMBA", False)
    with pytest.raises(ImportError, match=r"hf-recsys-classic\[fast\]"):
        knn_prune(x, x, 4, kernel="numba")
    assert knn_prune(x, x, 4, kernel="auto")[0].shape == (30, 4)  # without numba: the torch path


def test_negative_sampler_bit_table_and_binary_search_agree(monkeypatch):
    from hf_recsys_classic.bprmf.modeling_bprmf import NegativeSampler

    positives = random_interactions(40, 30, seed=2).to_csr()
    users, items = torch.randint(40, (500,)), torch.randint(30, (500,))
    dense = NegativeSampler(positives)
    monkeypatch.setattr(NegativeSampler, "dense_limit", 0)
    searched = NegativeSampler(positives)
    assert dense.dense is not None and searched.dense is None
    expected = torch.from_numpy(positives.toarray()[users.numpy(), items.numpy()] > 0)
    assert torch.equal(dense.is_positive(users, items), expected)
    assert torch.equal(searched.is_positive(users, items), expected)
    negs = searched.sample(users, torch.Generator().manual_seed(0))
    assert float(dense.is_positive(users, negs).float().mean()) < float(expected.float().mean())


def test_negative_sampler_compiled_path_draws_what_the_torch_path_draws(monkeypatch):
    from hf_recsys_classic.bprmf import _kernel
    from hf_recsys_classic.bprmf.modeling_bprmf import NegativeSampler

    if not _kernel.available():
        pytest.skip("numba is not installed (the fast extra)")
    positives = random_interactions(50, 12, seed=3, density=0.5).to_csr()  # dense rows: many clashes and redraws
    users = torch.randint(50, (4000,), generator=torch.Generator().manual_seed(1))
    for popularity, redraws in ((False, 3), (True, 3), (False, 1), (False, 0)):
        sampler = NegativeSampler(positives, popularity=popularity, redraws=redraws)
        compiled = sampler.sample(users, torch.Generator().manual_seed(7))
        with monkeypatch.context() as m:
            m.setattr(_kernel, "available", lambda: False)
            plain = sampler.sample(users, torch.Generator().manual_seed(7))
        assert torch.equal(compiled, plain), (popularity, redraws)
        if redraws:  # the redraws took effect: fewer positives than among plain uniform draws
            raw = torch.randint(12, (4000,), generator=torch.Generator().manual_seed(2))
            assert sampler.is_positive(users, compiled).float().mean() < sampler.is_positive(users, raw).float().mean()


@pytest.mark.parametrize("kernel", ["numba", "torch"])
def test_bpr_sgd_stops_at_a_non_finite_loss(kernel):
    """The SGD hook's loss is a host float, checked on the host: a diverging run still stops with a clear error, and
    the trainer's guard takes host floats as it takes device tensors."""
    from types import SimpleNamespace

    from hf_recsys.training.checkpoints import NonFiniteLossGuard

    from hf_recsys_classic.bprmf import _kernel

    if kernel == "numba" and not _kernel.available():
        pytest.skip("numba is not installed (the fast extra)")
    config = BPRMFConfig(factors=8, epochs=3, learning_rate=1e30, init_std=1.0, sgd_kernel=kernel)
    with pytest.raises(FloatingPointError, match="(?i)loss became nan"):
        _fit(BPRMFModel(config), random_interactions(30, 20, seed=4))
    guard, single = NonFiniteLossGuard(), SimpleNamespace(num_processes=1)
    guard.update(0.7, 1)
    guard.check(single)  # finite: nothing recorded
    guard.update(float("inf"), 2)
    guard.update(torch.tensor(float("nan")), 3)
    with pytest.raises(FloatingPointError, match="at step 2"):
        guard.check(single)


def test_knn_sparse_fallback_matches_dense(monkeypatch):
    from hf_recsys_classic import _utils

    inter = random_interactions(30, 20, seed=8)
    monkeypatch.setattr(_utils, "_use_sparse_knn", lambda *a: False)  # the torch path, dense and sparse
    dense = _fit(ItemKNNModel(ItemKNNConfig(k=5, shrink=1.0)), inter).similarity_matrix().toarray()
    monkeypatch.setattr(_utils, "DENSE_BUDGET", 0)
    sparse = _fit(ItemKNNModel(ItemKNNConfig(k=5, shrink=1.0)), inter).similarity_matrix().toarray()
    np.testing.assert_allclose(sparse, dense, rtol=1e-6)
    assert sp.issparse(inter.to_csr())


@pytest.mark.parametrize("name", ["bprmf", "biased_mf"])
def test_a_new_factor_model_starts_from_its_init_std(name):
    """Built directly (as a trainer does), not only through fit(): the tables follow init_std, not N(0, 1)."""
    from hf_recsys import AutoModelForRecommendation

    model = AutoModelForRecommendation.for_model(name, num_users=300, num_items=200, init_std=0.01)
    for table in (model.user_embeddings.weight, model.item_embeddings.weight):
        assert 0.005 < float(table.std()) < 0.02
