"""Paired tests against scipy, user alignment, bootstrap intervals and the comparison table."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from hf_recsys.evaluation import EvaluationResult, bootstrap_ci, compare, comparison_table, paired_tests


def make_result(users, values, metric="ndcg@10", protocol="full-ranking over all 10 items, training items masked"):
    values = np.asarray(values, dtype=float)
    return EvaluationResult(
        summary={metric: float(values.mean())},
        per_user={metric: values},
        users=np.asarray(users, dtype=object),
        protocol=protocol,
        num_users=len(users),
        skipped_users=np.array([]),
    )


def test_paired_tests_equal_scipy():
    rng = np.random.default_rng(0)
    a = rng.random(200)
    b = a - 0.03 + rng.normal(0, 0.1, 200)
    t_p, w_p = paired_tests(a, b)
    assert t_p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)
    assert w_p == pytest.approx(stats.wilcoxon(a, b).pvalue, rel=1e-12)
    assert paired_tests(a, a) == (1.0, 1.0)
    assert all(np.isnan(paired_tests([1.0], [0.0])))


def test_compare_aligns_users_by_id():
    rng = np.random.default_rng(1)
    users = [f"u{i}" for i in range(300)]
    a_vals, b_vals = rng.random(300), rng.random(300)
    # b lists the users in another order and lacks some; a lacks others
    perm = rng.permutation(300)[:250]
    ra = make_result(users[20:], a_vals[20:])
    rb = make_result([users[i] for i in perm], b_vals[perm])
    c = compare(ra, rb, "ndcg@10", n_boot=200)
    common = sorted(set(users[20:]) & {users[i] for i in perm})
    x = np.array([a_vals[users.index(u)] for u in common])
    y = np.array([b_vals[users.index(u)] for u in common])
    assert c.num_users == len(common)
    assert c.mean_diff == pytest.approx((x - y).mean())
    assert c.t_pvalue == pytest.approx(stats.ttest_rel(x, y).pvalue)
    assert c.wilcoxon_pvalue == pytest.approx(stats.wilcoxon(x, y).pvalue)
    assert c.ci_low < c.mean_diff < c.ci_high
    assert set(c.to_dict()) >= {"mean_diff", "t_pvalue", "wilcoxon_pvalue", "ci_low", "ci_high"}


def test_bootstrap_interval_agrees_with_the_normal_approximation():
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 2.0, 4000)
    low, high = bootstrap_ci(x, level=0.95, n_boot=2000, seed=0)
    half = stats.norm.ppf(0.975) * x.std(ddof=1) / np.sqrt(len(x))
    assert low == pytest.approx(x.mean() - half, abs=0.2 * half)
    assert high == pytest.approx(x.mean() + half, abs=0.2 * half)
    assert bootstrap_ci(x, seed=5) == bootstrap_ci(x, seed=5)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(x, level=95)


def test_comparison_table_marks_significant_rows_only():
    rng = np.random.default_rng(3)
    users = [f"u{i}" for i in range(400)]
    base = rng.random(400)
    results = {
        "base": make_result(users, base),
        "better": make_result(users, base + rng.normal(0.2, 0.1, 400)),
        "same": make_result(users, base.copy()),
    }
    table = comparison_table(results, baseline="base")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert "*" in rows["better"] and "*" not in rows["same"] and "*" not in rows["base"]
    assert "ndcg@10" in rows["model"] and "Protocol:" in table and "paired t-test" in table
    mixed = comparison_table({"a": results["base"], "b": make_result(users, base, protocol="SAMPLED ranking")})
    assert "different protocols" in mixed
    with pytest.raises(ValueError, match="baseline"):
        comparison_table(results, baseline="nope")


def test_comparison_prints_a_readable_line():
    users = [f"u{i}" for i in range(50)]
    rng = np.random.default_rng(4)
    c = compare(make_result(users, rng.random(50)), make_result(users, rng.random(50)), "ndcg@10", n_boot=100)
    text = str(c)
    assert text.startswith("ndcg@10:") and "t-test p=" in text and "Wilcoxon p=" in text and "50 users" in text
