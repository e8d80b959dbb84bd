"""Paired significance tests and bootstrap confidence intervals over per-user metric values."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_BOOT_CELLS = 4_000_000  # resampled values held in memory at once


def _bootstrap(n: int, statistic: Callable[[np.ndarray], np.ndarray], n_boot: int, seed: int) -> np.ndarray:
    """``statistic`` of ``n_boot`` resamples of ``range(n)``, in chunks of index matrices ``(chunk, n)``."""
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CELLS // max(n, 1))
    out = [statistic(rng.integers(0, n, size=(min(chunk, n_boot - s), n))) for s in range(0, n_boot, chunk)]
    return np.concatenate(out)


def _interval(stats: np.ndarray, level: float) -> tuple[float, float]:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}.")
    low, high = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def bootstrap_ci(values: Any, level: float = 0.95, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean.

    Args:
        values: 1-D per-user values.
        level: confidence level.
        n_boot: bootstrap resamples.
        seed: random seed.

    Returns:
        ``(low, high)``; ``(nan, nan)`` for no values.

    Example:
        ```python
        >>> low, high = bootstrap_ci([0.0, 1.0, 1.0, 0.0, 1.0])
        ```
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"bootstrap_ci needs 1-D values, got shape {x.shape}.")
    if len(x) == 0:
        return float("nan"), float("nan")
    return _interval(_bootstrap(len(x), lambda idx: x[idx].mean(1), n_boot, seed), level)


def pooled_rating_ci(
    stats: Mapping[str, np.ndarray], metric: str, level: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Bootstrap interval of pooled RMSE or MAE, resampling users (``stats``: per-user ``n``, ``sse``, ``sae``)."""
    keep = stats["n"] > 0
    n, num = stats["n"][keep], stats["sse" if metric == "rmse" else "sae"][keep]
    if len(n) == 0:
        return float("nan"), float("nan")

    def pooled(idx: np.ndarray) -> np.ndarray:
        ratio = num[idx].sum(1) / n[idx].sum(1)
        return np.sqrt(ratio) if metric == "rmse" else ratio

    return _interval(_bootstrap(len(n), pooled, n_boot, seed), level)


@dataclass
class Comparison:
    """Paired comparison of two results on one metric, over the users both evaluated.

    Args:
        metric: the metric compared.
        num_users: common users with a value in both results.
        mean_a, mean_b: the means of the two results over those users.
        mean_diff: ``mean(a - b)``.
        ci_low, ci_high: percentile bootstrap interval of ``mean_diff`` at ``level``.
        level: confidence level.
        t_pvalue: two-sided paired t-test p-value (``scipy.stats.ttest_rel``).
        wilcoxon_pvalue: two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``).
    """

    metric: str
    num_users: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    level: float
    t_pvalue: float
    wilcoxon_pvalue: float

    def significant(self, alpha: float = 0.05, test: str = "t") -> bool:
        """Whether the chosen test (``"t"`` or ``"wilcoxon"``) rejects equal means at ``alpha``."""
        p = self.t_pvalue if test == "t" else self.wilcoxon_pvalue
        return bool(p < alpha)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        pct = int(round(self.level * 100))
        return (
            f"{self.metric}: {self.mean_a:.4f} vs {self.mean_b:.4f}, difference {self.mean_diff:+.4f} "
            f"({pct}% CI [{self.ci_low:+.4f}, {self.ci_high:+.4f}]), paired t-test p={self.t_pvalue:.3g}, "
            f"Wilcoxon p={self.wilcoxon_pvalue:.3g}, over {self.num_users} users"
        )


def protocol_difference(result_a: Any, result_b: Any, names: tuple[str, str] = ("A", "B")) -> str | None:
    """How the protocols of two results differ, which is which and how to make them comparable (``None`` if equal).

    The common case: the models were fit on logs with different item sets (e.g. one on train + validation, the
    other on train), so one ranks among more items than the other.
    """
    if result_a.protocol == result_b.protocol:
        return None

    def label(r: Any, name: str) -> str:
        model_type = (getattr(r, "metadata", None) or {}).get("model_type")
        return f"{name} ({model_type})" if model_type else name

    la, lb = label(result_a, names[0]), label(result_b, names[1])
    na, nb = getattr(result_a, "num_items", 0), getattr(result_b, "num_items", 0)
    sampled = [getattr(r, "sampled_negatives", None) for r in (result_a, result_b)]
    if sampled[0] != sampled[1]:
        how = {None: "full ranking"}
        return (
            f"{la} used {how.get(sampled[0], f'{sampled[0]} sampled negatives')} and {lb} "
            f"{how.get(sampled[1], f'{sampled[1]} sampled negatives')}: evaluate both the same way (sampled numbers "
            "are optimistic and not comparable with full ranking)."
        )
    if na and nb and na != nb:
        more, fewer = (la, lb) if na > nb else (lb, la)
        return (
            f"{la} ranks among {na:,} items and {lb} among {nb:,}: the models were fit on logs with different items "
            f"({more} probably on more data, e.g. train + validation, {fewer} on train). Fit both on the same log to "
            "compare them fairly; a model ranking among more items is at a small disadvantage."
        )
    return f"{la}: {result_a.protocol}; {lb}: {result_b.protocol}. Evaluate both with the same options."


def paired_values(result_a: Any, result_b: Any, metric: str, warn: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The per-user values of ``metric`` of two results over their common users (NaN pairs dropped); logs a warning
    when the two protocols differ (``warn=False`` silences it)."""
    for r in (result_a, result_b):
        if metric not in r.per_user:
            raise KeyError(f"No per-user values for {metric!r}; available: {sorted(r.per_user)}.")
    difference = protocol_difference(result_a, result_b) if warn else None
    if difference:
        logger.warning("Comparing results of different protocols: %s", difference)
    _, ia, ib = np.intersect1d(result_a.users, result_b.users, assume_unique=True, return_indices=True)
    a, b = result_a.per_user[metric][ia], result_b.per_user[metric][ib]
    keep = ~(np.isnan(a) | np.isnan(b))
    return a[keep], b[keep]


def paired_tests(a: Any, b: Any) -> tuple[float, float]:
    """Two-sided p-values of the paired t-test and the Wilcoxon signed-rank test of ``a`` against ``b``.

    Identical samples give 1.0 for both (scipy would return NaN); fewer than 2 pairs give NaN.
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2:
        return float("nan"), float("nan")
    diff = a - b
    if not np.any(diff):
        return 1.0, 1.0
    t_p = 0.0 if np.all(diff == diff[0]) else float(stats.ttest_rel(a, b).pvalue)  # constant non-zero shift
    return t_p, float(stats.wilcoxon(a, b).pvalue)


def compare(
    result_a: Any, result_b: Any, metric: str, level: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> Comparison:
    """Paired comparison of two :class:`EvaluationResult`s on ``metric`` over their common users.

    Args:
        result_a, result_b: results of two models on the same test set.
        metric: a per-user metric, e.g. ``"ndcg@10"``.
        level: confidence level of the bootstrap interval of the mean difference.
        n_boot: bootstrap resamples.
        seed: random seed.

    Returns:
        A :class:`Comparison` (mean difference ``a - b``, its bootstrap interval, paired t-test and Wilcoxon p-values).

    Example:
        ```python
        >>> c = compare(result_ease, result_pop, "ndcg@10")  # doctest: +SKIP
        >>> c.mean_diff, c.t_pvalue, c.wilcoxon_pvalue  # doctest: +SKIP
        ```
    """
    a, b = paired_values(result_a, result_b, metric)
    diff = a - b
    t_p, w_p = paired_tests(a, b)
    low, high = bootstrap_ci(diff, level=level, n_boot=n_boot, seed=seed)
    nan = float("nan")
    return Comparison(
        metric=metric,
        num_users=len(a),
        mean_a=float(a.mean()) if len(a) else nan,
        mean_b=float(b.mean()) if len(b) else nan,
        mean_diff=float(diff.mean()) if len(diff) else nan,
        ci_low=low,
        ci_high=high,
        level=level,
        t_pvalue=t_p,
        wilcoxon_pvalue=w_p,
    )


def comparison_table(
    results: Mapping[str, Any] | Sequence[tuple[str, Any]],
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    alpha: float = 0.05,
    test: str = "t",
    digits: int = 4,
) -> str:
    """A Markdown table of several results (one row each), optionally marking significant differences.

    Args:
        results: ``{name: EvaluationResult}`` (or ``(name, result)`` pairs), in display order.
        metrics: columns (default: the summary metrics every result has, in the first result's order).
        baseline: a name in ``results``; other rows get ``*`` where they differ from it significantly (paired test
            over common users; catalogue-level metrics such as coverage are not tested).
        alpha: significance level.
        test: ``"t"`` (paired t-test) or ``"wilcoxon"``.
        digits: decimals shown.

    Returns:
        The Markdown text: the protocol line(s), the table and a footnote explaining ``*``.

    Example:
        ```python
        >>> print(comparison_table({"MostPopular": r_pop, "EASE": r_ease}, baseline="MostPopular"))  # doctest: +SKIP
        ```
    """
    items = list(results.items()) if isinstance(results, Mapping) else list(results)
    if not items:
        raise ValueError("comparison_table needs at least one result.")
    if test not in ("t", "wilcoxon"):
        raise ValueError(f"test must be 't' or 'wilcoxon', got {test!r}.")
    names = [n for n, _ in items]
    if baseline is not None and baseline not in names:
        raise ValueError(f"baseline {baseline!r} is not one of the results {names}.")
    if metrics is None:
        metrics = [m for m in items[0][1].summary if all(m in r.summary for _, r in items[1:])]
    base = dict(items)[baseline] if baseline is not None else None
    protocols = list(dict.fromkeys(r.protocol for _, r in items))
    lines = [f"**Protocol:** {p}." for p in protocols]
    if len(protocols) > 1:
        first = items[0]
        notes = [protocol_difference(first[1], r, (first[0], n)) for n, r in items[1:]]
        lines.append("**Warning:** the results were produced under different protocols; compare with care.")
        lines += [f"- {n}" for n in dict.fromkeys(notes) if n]
    lines += ["", "| model | " + " | ".join(metrics) + " |", "| --- |" + " ---: |" * len(metrics)]
    for name, r in items:
        cells = []
        for m in metrics:
            cell = f"{r.summary[m]:.{digits}f}" if m in r.summary else "-"
            if base is not None and r is not base and m in r.per_user and m in base.per_user:
                t_p, w_p = paired_tests(*paired_values(r, base, m, warn=False))
                if (t_p if test == "t" else w_p) < alpha:
                    cell += "*"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if base is not None:
        test_name = "paired t-test" if test == "t" else "Wilcoxon signed-rank test"
        lines += ["", f"\\* p < {alpha} against {baseline} ({test_name} over the users both evaluated)."]
    return "\n".join(lines)


__all__ = [
    "Comparison",
    "bootstrap_ci",
    "compare",
    "comparison_table",
    "paired_tests",
    "paired_values",
    "pooled_rating_ci",
    "protocol_difference",
]
