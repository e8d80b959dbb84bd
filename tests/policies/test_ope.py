"""Off-policy estimators: equal to vw-estimators, exact identities, shrinking error, logs in and bad logs out."""

from __future__ import annotations

import numpy as np
import pytest

from hf_recsys.policies import EpsilonGreedyPolicy, SoftmaxPolicy
from hf_recsys.policies.ope import (
    OPEInputs,
    bootstrap_interval,
    clopper_pearson_interval,
    estimate,
    evaluate_policy,
    gaussian_interval,
    ope_inputs,
)
from hf_recsys.policies.synthetic import SyntheticBandit


def _random_log(n=500, k=1, seed=0):
    rng = np.random.default_rng(seed)
    p_log = rng.uniform(0.05, 1.0, (n, k))
    p_target = rng.uniform(0.0, 1.0, (n, k))
    reward = (rng.random((n, k)) < 0.3).astype(float) * rng.uniform(0.5, 1.0, (n, k))
    return OPEInputs(reward=reward, p_log=p_log, p_target=p_target)


def test_ips_snips_and_intervals_equal_vw_estimators():
    pytest.importorskip("estimators")
    from estimators.bandits import clopper_pearson, gaussian, ips, snips

    x = _random_log()
    e_ips, e_snips, g, cp = ips.Estimator(), snips.Estimator(), gaussian.Interval(), clopper_pearson.Interval()
    for p_log, r, p_pred in zip(x.p_log[:, 0], x.reward[:, 0], x.p_target[:, 0]):
        for est in (e_ips, e_snips, g, cp):
            est.add_example(p_log, r, p_pred)
    assert estimate(x, "ips") == pytest.approx(e_ips.get(), abs=1e-9, rel=0)
    assert estimate(x, "snips") == pytest.approx(e_snips.get(), abs=1e-9, rel=0)
    for alpha in (0.05, 0.1):
        np.testing.assert_allclose(gaussian_interval(x, alpha), g.get(alpha), rtol=0, atol=1e-9)
        np.testing.assert_allclose(clopper_pearson_interval(x, alpha), cp.get(alpha), rtol=0, atol=1e-9)


def test_slate_pseudo_inverse_equals_vw_estimators():
    pytest.importorskip("estimators")
    from estimators.slates import pseudo_inverse

    x = _random_log(n=300, k=3, seed=1)
    vw = pseudo_inverse.Estimator()
    for p_log, r, p_pred in zip(x.p_log, x.reward.sum(1), x.p_target):
        vw.add_example(p_log.tolist(), float(r), p_pred.tolist())
    assert estimate(x, "pseudo_inverse") == pytest.approx(vw.get(), abs=1e-9, rel=0)


def test_estimator_identities():
    x = _random_log(seed=2)
    on_policy = OPEInputs(
        reward=x.reward, p_log=x.p_log, p_target=x.p_log, cascade_log=x.p_log, cascade_target=x.p_log
    )
    mean = x.reward.mean()
    for name in ("ips", "snips", "iips", "rips", "slate_ips"):
        assert estimate(on_policy, name) == pytest.approx(mean, abs=1e-12), name
    rng = np.random.default_rng(0)
    x.q_logged, x.q_target = rng.random((len(x.reward), 1)), rng.random(len(x.reward))
    assert estimate(x, "dm") == pytest.approx(x.q_target.mean())
    assert estimate(x, "switch_dr", tau=0.0) == pytest.approx(estimate(x, "dm"))
    assert estimate(x, "switch_dr", tau=np.inf) == pytest.approx(estimate(x, "dr"))
    w = x.weights[:, 0]
    assert estimate(x, "dr") == pytest.approx(np.mean(x.q_target + w * (x.reward[:, 0] - x.q_logged[:, 0])))
    zero_q = OPEInputs(x.reward, x.p_log, x.p_target, q_logged=np.zeros_like(x.reward), q_target=np.zeros(len(w)))
    assert estimate(zero_q, "dr") == pytest.approx(estimate(x, "ips"))
    assert estimate(zero_q, "sndr") == pytest.approx(estimate(x, "snips"))
    lo, hi = bootstrap_interval(x, "ips", n_bootstrap=500)
    assert lo < estimate(x, "ips") < hi
    g_lo, g_hi = gaussian_interval(x)
    assert abs((hi - lo) - (g_hi - g_lo)) < 0.25 * (g_hi - g_lo)  # bootstrap and normal widths agree


def test_errors_shrink_with_rounds_on_a_synthetic_bandit():
    bandit = SyntheticBandit(n_actions=10, dim=3, beta=0.5, seed=1)
    target = bandit.greedy_target(0.2)
    truth = bandit.policy_value(target, n=200_000)
    errors = {}
    for n in (300, 3000, 30000):
        errs = []
        for seed in range(8):
            logged = bandit.log(n, seed)
            q_true = bandit.expected_rewards(logged["contexts"])
            x = bandit.ope_inputs(logged, target, q_hat=q_true)
            errs.append([abs(estimate(x, e) - truth) / truth for e in ("ips", "snips", "dr")])
        errors[n] = np.mean(errs, 0)
    assert (errors[30000] < errors[3000]).all() and (errors[3000] < errors[300]).all(), errors
    assert errors[30000][2] < errors[30000][0]  # DR with the true reward model beats IPS


# ---------------------------------------------------------------------------------------------- logs
@pytest.fixture(scope="module")
def logged():
    classic = pytest.importorskip("hf_recsys_classic")
    from hf_recsys.data import generate_interactions

    log, _ = generate_interactions(num_users=30, num_items=20, num_interactions=300, seed=0)
    model = classic.ALSModel(classic.ALSConfig(factors=4, iterations=3)).fit(log, show_progress=False)
    users = np.repeat(model.user_vocab.decode(np.arange(30)), 10)
    behaviour = EpsilonGreedyPolicy(model, epsilon=0.5, seed=0)
    slates = behaviour.sample(users, k=1)
    rewards = np.random.default_rng(0).random((len(users), 1)) < 0.3
    return model, slates.to_dataset(rewards=rewards.astype(float), timestamps=np.arange(len(users)))


def test_evaluate_policy_on_a_logged_dataset(logged):
    model, log = logged
    target = SoftmaxPolicy(model, temperature=0.3, seed=1)
    report = evaluate_policy(log, target, reward_model=model, n_bootstrap=200)
    names = [r["estimator"] for r in report.rows]
    assert names == ["ips", "snips", "dm", "dr", "sndr", "switch_dr"]
    x = ope_inputs(log, target)
    assert report.rows[0]["value"] == pytest.approx(np.mean(x.reward[:, 0] * x.p_target[:, 0] / x.p_log[:, 0]))
    assert all(r["ci_low"] <= r["value"] <= r["ci_high"] for r in report.rows)
    assert "| ips |" in report.to_markdown() and report.num_rounds == 300


def test_plain_tables_map_to_ope_inputs(logged):
    model, log = logged
    frame = log.to_pandas()[["user_id", "item_id", "propensity", "reward"]].rename(columns={"propensity": "pscore"})
    x = ope_inputs(frame, EpsilonGreedyPolicy(model, epsilon=0.5), columns={"propensity": "pscore"})
    assert x.reward.shape == (300, 1)
    assert estimate(x, "ips") == pytest.approx(log.to_pandas()["reward"].mean())  # target == logging policy


@pytest.mark.parametrize(
    "change, error, match",
    [
        (lambda f: f.drop(columns="propensity"), ValueError, "no 'propensity' column"),
        (lambda f: f.assign(propensity=0.0), ValueError, r"outside \(0, 1\]"),
        (lambda f: f.assign(propensity=1.5), ValueError, r"outside \(0, 1\]"),
        (lambda f: f.assign(reward="click"), TypeError, "'reward' column must hold numbers"),
        (lambda f: f.assign(reward=np.nan), ValueError, "no finite 'reward'"),
        (lambda f: f.assign(reward=np.inf), ValueError, "no finite 'reward'"),
    ],
)
def test_bad_logs_are_refused(logged, change, error, match):
    model, log = logged
    with pytest.raises(error, match=match):
        ope_inputs(change(log.to_pandas()), EpsilonGreedyPolicy(model))


def test_estimators_say_what_they_need():
    x = _random_log(k=2)
    with pytest.raises(ValueError, match="single-item logs"):
        estimate(x, "snips")
    with pytest.raises(ValueError, match="cascade_log"):
        estimate(x, "rips")
    with pytest.raises(ValueError, match="reward_model"):
        estimate(_random_log(), "dr")
    with pytest.raises(ValueError, match="unknown estimator"):
        estimate(x, "magic")
    assert estimate(x, "iips") == pytest.approx(np.mean((x.weights * x.reward).sum(1)))
