"""Unbiased inverse propensities of served slates (geometric draw counts) and the slate OPE they make unbiased."""

from __future__ import annotations

import numpy as np
import pytest

from hf_recsys.policies import BetaThompsonPolicy, EpsilonGreedyPolicy, SoftmaxPolicy, ope_inputs
from hf_recsys.policies.bandits import _geometric_counts
from hf_recsys.policies.ope import OPEInputs, estimate

classic = pytest.importorskip("hf_recsys_classic")

N_ITEMS, K = 6, 2


@pytest.fixture(scope="module")
def als():
    from hf_recsys.data import generate_interactions

    log, _ = generate_interactions(num_users=20, num_items=12, num_interactions=100, seed=0)
    return classic.ALSModel(classic.ALSConfig(factors=3, iterations=3)).fit(log, show_progress=False)


def _weight_sums(slates):
    """For every (position, item) the mean over served slates of ``inverse_propensity * [item shown there]``."""
    idx = slates.items
    out = []
    for j in range(slates.k):
        for item in np.unique(idx[:, j]):
            out.append(float((slates.inverse_propensity[:, j] * (idx[:, j] == item)).mean()))
    return np.array(out)


def test_geometric_counts_have_mean_one_over_p_and_the_stated_cap_bias():
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.1, 0.01])

    def hits_of(rows, s):
        return rng.random((len(rows), s, len(p))) < p

    counts = _geometric_counts(hits_of, 40_000, len(p), batch=7, cap=60)
    expected = (1 - (1 - p) ** 60) / p  # the capped mean: 2.0, 9.98, 45.3 (1/p = 100 for the rarest)
    assert counts.mean(0) == pytest.approx(expected, rel=0.03)
    assert counts.max() == 60 and counts.min() == 1


@pytest.mark.parametrize("policy_of", ["softmax", "beta_thompson"])
def test_inverse_propensities_of_served_slates_are_unbiased(als, policy_of):
    # E[inverse_propensity * 1{item i at position j}] = p(i at j) E[1 / p] = 1 for every shown (item, position):
    # no exact marginals are needed. The old weights 1 / propensity (served slate counted among 6 draws) fall short.
    items = als.item_vocab.decode(np.arange(N_ITEMS))
    user = als.user_vocab.decode(np.arange(1))[0]
    if policy_of == "softmax":
        policy = SoftmaxPolicy(als, temperature=2.0, items=items, n_samples=5, max_draws=400, seed=1)
    else:
        policy = BetaThompsonPolicy(items, alpha=2.0, beta=3.0, n_samples=5, max_draws=400, seed=1)
        policy.update([user] * 3, [[items[0], items[1]]] * 3, np.ones((3, 2)))
    slates = policy.sample([user] * 6000, k=K)
    new = _weight_sums(slates)
    old = _weight_sums(type(slates)(**{**vars(slates), "inverse_propensity": 1.0 / slates.propensity}))
    assert new == pytest.approx(np.ones_like(new), abs=0.12)
    assert old.mean() < 0.9
    if policy_of == "softmax":  # exact prefix probabilities: exact inverses
        assert slates.inverse_cascade_propensity == pytest.approx(1.0 / slates.cascade_propensity)
    else:  # no unbiased prefix inverses for Thompson sampling: none logged
        assert slates.inverse_cascade_propensity is None
        assert "inverse_cascade_propensity" not in slates.to_dataset().column_names


def _slate_bandit(als, rounds, seed, n_samples=5):
    """A position-based slate bandit: softmax logging, epsilon-greedy target, exact truth."""
    items = als.item_vocab.decode(np.arange(N_ITEMS))
    users = als.user_vocab.decode(np.arange(8))
    q = np.random.default_rng(123).uniform(0.1, 0.9, (len(users), N_ITEMS))  # click rate of item i for user u
    exam = 1.0 / (np.arange(K) + 1)  # examination probability of position j
    target = EpsilonGreedyPolicy(als, epsilon=0.3, items=items)
    greedy = np.argsort(-target._model_scores(users), axis=1, kind="stable")[:, :K]
    truth = (0.7 * (np.take_along_axis(q, greedy, 1) * exam).sum(1) + 0.3 * q.mean(1) * exam.sum()).mean()
    rng = np.random.default_rng(seed)
    logging = SoftmaxPolicy(als, temperature=1.0, items=items, n_samples=n_samples, seed=seed)
    u = rng.integers(0, len(users), rounds)
    served = logging.sample(users[u], k=K)
    shown = als.item_vocab.encode(served.items.reshape(-1)).reshape(rounds, K)
    reward = (rng.random((rounds, K)) < q[u[:, None], shown] * exam).astype(float)
    return served.to_dataset(rewards=reward), target, truth


def test_slate_estimators_are_unbiased_with_the_inverse_propensity_column(als):
    errors = {}
    for rounds in (150, 2400):
        errs = []
        for seed in range(12):
            log, target, truth = _slate_bandit(als, rounds, seed)
            x = ope_inputs(log, target)
            old = OPEInputs(x.reward, x.p_log, x.p_target, x.cascade_log, x.cascade_target)
            errs.append([(estimate(v, e) - truth) / truth for v in (x, old) for e in ("iips", "pseudo_inverse")])
        errors[rounds] = np.array(errs)
    mean_abs = {n: np.abs(e).mean(0) for n, e in errors.items()}
    assert (mean_abs[2400][:2] < mean_abs[150][:2]).all(), mean_abs  # the new weights' error shrinks with rounds
    bias, se = errors[2400].mean(0), errors[2400].std(0, ddof=1) / np.sqrt(12)
    assert (np.abs(bias[:2]) < 3 * se[:2] + 0.01).all(), (bias, se)  # new: mean error ~ 0
    assert (bias[2:] < -5 * se[2:]).all(), (bias, se)  # old (served slate among the draws): biased low


def test_inverse_propensity_columns_are_checked(als):
    log, target, _ = _slate_bandit(als, 20, 0)
    assert {"inverse_propensity", "inverse_cascade_propensity"} <= set(log.column_names)
    bad = log.to_pandas()
    bad.loc[3, "inverse_propensity"] = 0.5
    with pytest.raises(ValueError, match="inverse_propensity value.*>= 1"):
        ope_inputs(bad, target)
