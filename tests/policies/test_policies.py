"""Exploration policies: exact probabilities where they have a closed form, agreement with mabwiser, logging."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hf_recsys.data import generate_interactions
from hf_recsys.policies import (
    BetaThompsonPolicy,
    EpsilonGreedyPolicy,
    LinearThompsonPolicy,
    LinUCBPolicy,
    SoftmaxPolicy,
)

classic = pytest.importorskip("hf_recsys_classic")


@pytest.fixture(scope="module")
def als():
    log, _ = generate_interactions(num_users=40, num_items=30, num_interactions=400, seed=0)
    return classic.ALSModel(classic.ALSConfig(factors=4, iterations=3)).fit(log, show_progress=False)


@pytest.fixture(scope="module")
def users(als):
    return als.user_vocab.decode(np.arange(8))


def _frequencies(policy, user, k, draws):
    slates = policy.sample([user] * draws, k=k).items
    keys, counts = np.unique(slates, axis=0, return_counts=True)
    return {tuple(key): c / draws for key, c in zip(keys.tolist(), counts)}


def _all_slates(items, k):
    return [list(s) for s in itertools.permutations(items, k)]


def test_epsilon_greedy_probabilities_are_exact(als, users):
    items = als.item_vocab.decode(np.arange(5))
    policy = EpsilonGreedyPolicy(als, epsilon=0.3, items=items, seed=1)
    slates = _all_slates(items, 2)
    _, casc = policy.propensities([users[0]] * len(slates), slates)
    assert casc[:, -1].sum() == pytest.approx(1.0, abs=1e-12)
    # the greedy slate: (1 - eps) + eps / (5 * 4)
    greedy = als.recommend([users[0]], k=2, exclude_seen=False, items=items).item_ids[0]
    marg, casc = policy.propensities([users[0]], [greedy])
    assert casc[0, -1] == pytest.approx(0.7 + 0.3 / 20)
    assert marg[0].tolist() == pytest.approx([0.7 + 0.3 / 5] * 2)
    freq = _frequencies(policy, users[0], 2, 4000)
    assert freq[tuple(greedy)] == pytest.approx(0.7 + 0.3 / 20, abs=0.03)
    probs = policy.action_probabilities(users)
    assert probs.sum(1) == pytest.approx(np.ones(len(users)))


def test_softmax_slate_probabilities_sum_to_one_and_match_sampling(als, users):
    items = als.item_vocab.decode(np.arange(4))
    policy = SoftmaxPolicy(als, temperature=0.5, items=items, n_samples=4000, seed=2)
    slates = _all_slates(items, 2)
    marg, casc = policy.propensities([users[1]] * len(slates), slates)
    assert casc[:, -1].sum() == pytest.approx(1.0, abs=1e-12)
    p = policy.action_probabilities([users[1]])[0]
    assert casc[:, 0] == pytest.approx(p[policy._item_index([s[0] for s in slates])])
    # the position-1 marginal (Monte Carlo) equals the sum of exact slate probabilities with that second item
    exact = {i: sum(c for s, c in zip(slates, casc[:, -1]) if s[1] == i) for i in items.tolist()}
    assert marg[:, 1] == pytest.approx([exact[s[1]] for s in slates], abs=0.03)
    policy.n_samples = 10  # the served slates' marginals are not under test here
    freq = _frequencies(policy, users[1], 2, 4000)
    assert [freq.get(tuple(s), 0.0) for s in slates] == pytest.approx(casc[:, -1].tolist(), abs=0.03)


def test_sampling_is_seeded_and_respects_seen_items(als, users):
    a = SoftmaxPolicy(als, temperature=2.0, exclude_seen=True, seed=7).sample(users, k=5)
    b = SoftmaxPolicy(als, temperature=2.0, exclude_seen=True, seed=7).sample(users, k=5)
    assert (a.items == b.items).all() and a.items.shape == (len(users), 5)
    seen = als.seen_items[als.user_vocab.encode(list(users))].toarray() > 0
    shown = als.item_vocab.encode(a.items.reshape(-1)).reshape(a.items.shape)
    assert not seen[np.arange(len(users))[:, None], shown].any()
    assert all(len(set(row)) == 5 for row in a.items.tolist())


def test_slates_log_as_a_dataset(als, users):
    slates = EpsilonGreedyPolicy(als, epsilon=0.5, seed=0).sample(users, k=3)
    log = slates.to_dataset(rewards=np.ones((len(users), 3)), timestamps=np.arange(len(users)), first_slate_id=10)
    assert log.num_rows == 3 * len(users)
    row = log[4]
    assert (row["slate_id"], row["position"], row["policy"]) == (11, 1, "epsilon_greedy")
    assert row["item_id"] == slates.items[1, 1] and row["user_id"] == users[1]
    assert row["slate_propensity"] == pytest.approx(slates.slate_propensity[1])
    assert set(log.column_names) >= {"propensity", "cascade_propensity", "reward", "timestamp"}


@pytest.mark.parametrize(
    "rewards, error, match",
    [
        (np.array([["a", "b"]] * 2), TypeError, "must be numbers"),
        (np.array([[np.nan, 1.0]] * 2), ValueError, "NaN"),
        (np.ones(3), ValueError, "shape"),
        (np.full((2, 2), 2.0), ValueError, r"\[0.0, 1.0\]"),
    ],
)
def test_bad_rewards_are_refused(als, users, rewards, error, match):
    policy = BetaThompsonPolicy(model=als, n_samples=10)
    items = als.item_vocab.decode(np.arange(4)).reshape(2, 2)
    with pytest.raises(error, match=match):
        policy.update(users[:2], items, rewards)


def test_non_learning_policy_says_how_to_learn(als, users):
    with pytest.raises(NotImplementedError, match="partial_fit"):
        EpsilonGreedyPolicy(als).update(users[:1], als.item_vocab.decode([0]), [1.0])
    with pytest.raises(ValueError, match="not candidates"):
        EpsilonGreedyPolicy(als, items=als.item_vocab.decode([0, 1])).propensities(users[:1], ["nope"])


# ---------------------------------------------------------------------------------------------- against mabwiser
def _bandit_data(seed=0, n_users=5, n_items=12, d=3, rounds=300):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n_items, d))
    users = rng.integers(0, n_users, rounds)
    shown = rng.integers(0, n_items, rounds)
    true = rng.normal(size=(n_users, d))
    rewards = (rng.random(rounds) < 1 / (1 + np.exp(-(true[users] * features[shown]).sum(1)))).astype(float)
    return features, users, shown, rewards


def test_linucb_equals_mabwiser():
    mabwiser = pytest.importorskip("mabwiser.mab")
    features, users, shown, rewards = _bandit_data()
    items = [f"i{j}" for j in range(len(features))]
    policy = LinUCBPolicy(items=items, item_features=features, alpha=1.5, l2_lambda=0.7)
    policy.update(users, np.array(items)[shown], rewards)
    # mabwiser's disjoint LinUCB with one arm per user and the item vectors as contexts is the same model
    mab = mabwiser.MAB(list(range(5)), mabwiser.LearningPolicy.LinUCB(alpha=1.5, l2_lambda=0.7), seed=0)
    mab.fit(users, rewards, features[shown])
    expect = mab.predict_expectations(features)  # per item (context): {user (arm): ucb}
    theirs = np.array([[e[u] for e in expect] for u in range(5)])
    ours = policy.upper_bounds(np.arange(5))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)
    assert np.argmax(ours, axis=0).tolist() == mab.predict(features)  # the same choice of arm per context
    for u in range(5):
        np.testing.assert_allclose(policy.theta[policy._slot[u]], mab._imp.arm_to_model[u].beta, atol=1e-9)


def test_linear_thompson_posterior_equals_mabwiser_and_samples_from_it():
    mabwiser = pytest.importorskip("mabwiser.mab")
    features, users, shown, rewards = _bandit_data(seed=1)
    items = [f"i{j}" for j in range(len(features))]
    policy = LinearThompsonPolicy(items=items, item_features=features, alpha=0.5, l2_lambda=1.0, n_samples=20000)
    policy.update(users, np.array(items)[shown], rewards)
    mab = mabwiser.MAB(list(range(5)), mabwiser.LearningPolicy.LinTS(alpha=0.5, l2_lambda=1.0), seed=0)
    mab.fit(users, rewards, features[shown])
    for u in range(5):
        model = mab._imp.arm_to_model[u]
        np.testing.assert_allclose(policy.theta[policy._slot[u]], model.beta, atol=1e-9)
        np.testing.assert_allclose(policy.A_inv[policy._slot[u]], model.A_inv, atol=1e-9)
    draws = policy._draw(np.arange(5), 20000)  # (users, samples, items): mean -> theta . x
    np.testing.assert_allclose(draws.mean(1), policy.expected_rewards(np.arange(5)), atol=0.02)
    # mabwiser draws one coefficient vector per context row: the sampled expectations have the same law
    theirs = np.array([[e[u] for e in mab.predict_expectations(features)] for _ in range(500) for u in range(5)])
    theirs = theirs.reshape(500, 5, 12)
    np.testing.assert_allclose(draws.std(1), theirs.std(0), rtol=0.15)
    np.testing.assert_allclose(draws.mean(1), theirs.mean(0), atol=0.05)


def test_beta_thompson_matches_mabwiser_posterior_and_choices():
    mabwiser = pytest.importorskip("mabwiser.mab")
    rng = np.random.default_rng(3)
    arms = ["a", "b", "c", "d"]
    decisions = rng.choice(arms, 200)
    rate = {"a": 0.1, "b": 0.5, "c": 0.4, "d": 0.2}
    rewards = (rng.random(200) < np.array([rate[a] for a in decisions])).astype(int)
    policy = BetaThompsonPolicy(items=arms, n_samples=20000, seed=0)
    policy.update(np.zeros(200, dtype=int), decisions, rewards)
    mab = mabwiser.MAB(arms, mabwiser.LearningPolicy.ThompsonSampling(), seed=0)
    mab.fit(decisions, rewards)
    assert policy.alpha.tolist() == [mab._imp.arm_to_success_count[a] for a in arms]
    assert policy.beta.tolist() == [mab._imp.arm_to_fail_count[a] for a in arms]
    ours = policy.action_probabilities([0])[0]
    picks = [mab.predict() for _ in range(2000)]
    theirs = np.array([picks.count(a) / 2000 for a in arms])
    assert np.abs(ours - theirs).max() < 0.04


def test_linear_policies_start_from_the_model_and_learn(als, users):
    ucb = LinUCBPolicy(als, alpha=0.0)  # no updates, no exploration: the model's own scores
    np.testing.assert_allclose(ucb.upper_bounds(users), als.score(list(users), list(ucb.item_ids)), atol=1e-5)
    first = ucb.sample(users[:1], k=1).items[0, 0]
    for _ in range(5):  # the user never clicks their top item: it drops below others
        ucb.update(users[:1], [first], [0.0])
    assert ucb.sample(users[:1], k=1).items[0, 0] != first
    beta = BetaThompsonPolicy(items=["a", "b", "c"], n_samples=500, seed=0)
    beta.update(["u"] * 20, ["b"] * 20, np.ones(20))
    assert beta.action_probabilities(["u"])[0].argmax() == 1 and beta.posterior_mean()[1] == pytest.approx(21 / 22)
