"""Off-policy evaluation: the value of a target policy estimated from slates logged by another policy.

Every estimator is written as per-round terms ``(c, a, b)`` with ``value = mean(c) + sum(a) / sum(b)``, so the
same code gives the point estimate and its bootstrap replicates (rows resampled with replacement):

=============  ===============================================  ======================  =========
estimator      c                                                a                       b
=============  ===============================================  ======================  =========
ips            0                                                w r                     1
snips          0                                                w r                     w
dm             q_target                                         0                       1
dr             q_target + w (r - q_logged)                      0                       1
sndr           q_target                                         w (r - q_logged)        w
switch_dr      q_target + [w <= tau] w (r - q_logged)           0                       1
iips           sum_j w_j r_j (item-position weights)            0                       1
rips           sum_j (cascade_target_j / cascade_log_j) r_j     0                       1
slate_ips      (slate_target / slate_log) sum_j r_j             0                       1
pseudo_inverse (1 - k + sum_j w_j) sum_j r_j                    0                       1
=============  ===============================================  ======================  =========

``w = p_target / p_log`` for the logged item (``p_target * inv_p_log`` when the log has an ``inverse_propensity``
column, and the prefix weights likewise with ``inverse_cascade_propensity``: unbiased where the logging
probability is a Monte-Carlo estimate, see :mod:`hf_recsys.policies.base`), ``q`` a reward model's estimate
(``q_target``: its mean under the target policy's action distribution). DM, DR, SNDR and Switch-DR (as defined
in Open Bandit Pipeline) are for single-item logs (``k = 1``); the slate estimators use each position's reward.
IPS / SNIPS / their Gaussian and Clopper-Pearson intervals, and the pseudo-inverse estimator, are those of
``vw-estimators`` (tested equal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from ..data.arrays import unique
from .base import Policy, check_rewards

__all__ = [
    "ESTIMATORS",
    "OPEInputs",
    "OPEReport",
    "bootstrap_interval",
    "clopper_pearson_interval",
    "estimate",
    "evaluate_policy",
    "gaussian_interval",
    "ope_inputs",
]

Terms = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class OPEInputs:
    """Aligned arrays of a logged bandit or slate feedback log, one row per round (slate).

    Args:
        reward: ``(n, k)`` reward of each shown item.
        p_log: ``(n, k)`` logging policy's probability of showing each item at its position.
        p_target: ``(n, k)`` the same under the target policy.
        cascade_log, cascade_target: ``(n, k)`` probabilities of each slate prefix (``None`` when not logged).
        q_logged: ``(n, k)`` reward model's estimate for the shown items (``None`` without a reward model).
        q_target: ``(n,)`` reward model's mean under the target's action distribution (single-item logs).
        users, items: the logged users ``(n,)`` and item ids ``(n, k)``.
        inv_p_log, inv_cascade_log: ``(n, k)`` unbiased estimates of ``1 / p_log`` and ``1 / cascade_log`` (the
            log's ``inverse_propensity`` / ``inverse_cascade_propensity`` columns); used instead of dividing when
            given.
    """

    reward: np.ndarray
    p_log: np.ndarray
    p_target: np.ndarray | None = None
    cascade_log: np.ndarray | None = None
    cascade_target: np.ndarray | None = None
    q_logged: np.ndarray | None = None
    q_target: np.ndarray | None = None
    users: np.ndarray | None = None
    items: np.ndarray | None = None
    inv_p_log: np.ndarray | None = None
    inv_cascade_log: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        """Item-position importance weights ``p_target / p_log``."""
        return self.p_target * self.inv_p_log if self.inv_p_log is not None else self.p_target / self.p_log

    @property
    def cascade_weights(self) -> np.ndarray:
        """Prefix importance weights ``cascade_target / cascade_log`` (last column: the whole slate's)."""
        if self.inv_cascade_log is not None:
            return self.cascade_target * self.inv_cascade_log
        return self.cascade_target / self.cascade_log

    @property
    def k(self) -> int:
        return self.reward.shape[1]


# ---------------------------------------------------------------------------------------------- per-round terms
def _need(inputs: OPEInputs, name: str, *fields: str) -> None:
    missing = [f for f in fields if getattr(inputs, f) is None]
    if missing:
        hint = {
            "q_logged": "pass a reward_model",
            "q_target": "pass a reward_model",
            "p_target": "pass the target policy",
            "cascade_log": "log the cascade_propensity column (Slates.to_dataset writes it)",
            "cascade_target": "pass the target policy",
        }
        raise ValueError(f"{name} needs {', '.join(missing)}: {'; '.join(hint[m] for m in missing)}.")


def _single(inputs: OPEInputs, name: str) -> None:
    if inputs.k != 1:
        raise ValueError(
            f"{name} is defined here for single-item logs (k = 1), the log has slates of {inputs.k}: use iips, "
            "rips, slate_ips or pseudo_inverse."
        )


def _zeros(n: int) -> np.ndarray:
    return np.zeros(n)


def _ips(x: OPEInputs, **_) -> Terms:
    _need(x, "ips", "p_target")
    return _zeros(len(x.reward)), (x.weights * x.reward).sum(1), np.ones(len(x.reward))


def _snips(x: OPEInputs, **_) -> Terms:
    _need(x, "snips", "p_target")
    _single(x, "snips")
    w = x.weights[:, 0]
    return _zeros(len(w)), w * x.reward[:, 0], w


def _dm(x: OPEInputs, **_) -> Terms:
    _need(x, "dm", "q_target")
    _single(x, "dm")
    return x.q_target, _zeros(len(x.q_target)), np.ones(len(x.q_target))


def _residual(x: OPEInputs, name: str) -> tuple[np.ndarray, np.ndarray]:
    _need(x, name, "p_target", "q_logged", "q_target")
    _single(x, name)
    w = x.weights[:, 0]
    return w, w * (x.reward[:, 0] - x.q_logged[:, 0])


def _dr(x: OPEInputs, **_) -> Terms:
    _, res = _residual(x, "dr")
    return x.q_target + res, _zeros(len(res)), np.ones(len(res))


def _sndr(x: OPEInputs, **_) -> Terms:
    w, res = _residual(x, "sndr")
    return x.q_target, res, w


def _switch_dr(x: OPEInputs, tau: float = np.inf, **_) -> Terms:
    w, res = _residual(x, "switch_dr")
    return x.q_target + (w <= tau) * res, _zeros(len(res)), np.ones(len(res))


def _iips(x: OPEInputs, **_) -> Terms:
    return _ips(x)[1], _zeros(len(x.reward)), np.ones(len(x.reward))


def _rips(x: OPEInputs, **_) -> Terms:
    _need(x, "rips", "cascade_log", "cascade_target")
    c = (x.cascade_weights * x.reward).sum(1)
    return c, _zeros(len(c)), np.ones(len(c))


def _slate_ips(x: OPEInputs, **_) -> Terms:
    _need(x, "slate_ips", "cascade_log", "cascade_target")
    c = x.cascade_weights[:, -1] * x.reward.sum(1)
    return c, _zeros(len(c)), np.ones(len(c))


def _pseudo_inverse(x: OPEInputs, **_) -> Terms:
    _need(x, "pseudo_inverse", "p_target")
    c = (1 - x.k + x.weights.sum(1)) * x.reward.sum(1)
    return c, _zeros(len(c)), np.ones(len(c))


ESTIMATORS: dict[str, Callable[..., Terms]] = {
    "ips": _ips,
    "snips": _snips,
    "dm": _dm,
    "dr": _dr,
    "sndr": _sndr,
    "switch_dr": _switch_dr,
    "iips": _iips,
    "rips": _rips,
    "slate_ips": _slate_ips,
    "pseudo_inverse": _pseudo_inverse,
}


def _value(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``mean(c) + sum(a) / sum(b)`` over the last axis (a ratio over zero weight is NaN)."""
    den = b.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(den != 0, a.sum(-1) / np.where(den != 0, den, 1), np.where(a.any(-1), np.nan, 0.0))
    return c.mean(-1) + ratio


def _terms(inputs: OPEInputs, estimator: str, **kwargs) -> Terms:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; known: {', '.join(ESTIMATORS)}.")
    return ESTIMATORS[estimator](inputs, **kwargs)


def estimate(inputs: OPEInputs, estimator: str = "ips", **kwargs) -> float:
    """The value of the target policy by one estimator.

    Args:
        inputs: the aligned log (:func:`ope_inputs`).
        estimator: one of :data:`ESTIMATORS` (``ips``, ``snips``, ``dm``, ``dr``, ``sndr``, ``switch_dr``,
            ``iips``, ``rips``, ``slate_ips``, ``pseudo_inverse``).
        **kwargs: estimator options (``tau`` of ``switch_dr``: rounds with weight above it use the DM term only).

    Returns:
        The estimated expected reward per round (summed over the slate's positions for slates).
    """
    return float(_value(*_terms(inputs, estimator, **kwargs)))


def bootstrap_interval(
    inputs: OPEInputs,
    estimator: str = "ips",
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    seed: int = 0,
    **kwargs,
) -> tuple[float, float]:
    """Percentile bootstrap ``(1 - alpha)`` interval of an estimator (rounds resampled with replacement).

    Args:
        inputs, estimator, **kwargs: as in :func:`estimate`.
        alpha: 1 - the coverage (0.05: a 95% interval).
        n_bootstrap: number of resamples.
        seed: seed of the resampling.

    Returns:
        ``(low, high)``.
    """
    c, a, b = _terms(inputs, estimator, **kwargs)
    rng, n = np.random.default_rng(seed), len(c)
    step = max(1, 2**22 // max(n, 1))
    values = []
    for start in range(0, n_bootstrap, step):
        idx = rng.integers(0, n, size=(min(step, n_bootstrap - start), n))
        values.append(_value(c[idx], a[idx], b[idx]))
    lo, hi = np.nanquantile(np.concatenate(values), [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def gaussian_interval(inputs: OPEInputs, alpha: float = 0.05) -> tuple[float, float]:
    """Normal-approximation interval of IPS: ``ips +- z sqrt(var(w r) / n)`` (``vw-estimators`` gaussian)."""
    _need(inputs, "gaussian_interval", "p_target")
    v = (inputs.weights * inputs.reward).sum(1)
    n = len(v)
    if n <= 1:
        raise ValueError("a Gaussian interval needs at least two rounds.")
    delta = stats.norm.ppf(1 - alpha / 2) * np.sqrt(max(0.0, v.var(ddof=1)) / n)
    return float(v.mean() - delta), float(v.mean() + delta)


def clopper_pearson_interval(
    inputs: OPEInputs, alpha: float = 0.05, rmin: float = 0.0, rmax: float = 1.0
) -> tuple[float, float]:
    """Clopper-Pearson interval of IPS with weights rescaled by the largest one (``vw-estimators``).

    Rewards must lie in ``[rmin, rmax]``.
    """
    _need(inputs, "clopper_pearson_interval", "p_target")
    r = check_rewards(inputs.reward, inputs.reward.shape, rmin, rmax)
    w = inputs.weights
    w_max = float(w.max())
    if w_max <= 0:
        raise ValueError("the target policy gives every logged item probability 0: there is nothing to weigh.")
    successes = float(((r - rmin) / (rmax - rmin) * w).sum()) / w_max
    n = w.size / w_max
    lo = stats.beta.ppf(alpha / 2, successes, n - successes + 1) if successes > 0 else 0.0
    hi = stats.beta.ppf(1 - alpha / 2, successes + 1, n - successes) if successes < n else 1.0
    return float(rmin + lo * (rmax - rmin)), float(rmin + hi * (rmax - rmin))


# ---------------------------------------------------------------------------------------------- logs -> inputs
LOG_COLUMNS = ("slate_id", "user_id", "item_id", "position", "propensity", "cascade_propensity", "reward")


def _frame(log: Any, columns: dict[str, str] | None):
    import pandas as pd

    if isinstance(log, pd.DataFrame):
        frame = log
    elif hasattr(log, "to_pandas"):
        frame = log.to_pandas()
    else:
        raise TypeError(f"log must be a datasets.Dataset or a pandas DataFrame, got {type(log).__name__}.")
    if columns:
        absent = [src for src in columns.values() if src not in frame.columns]
        if absent:
            raise ValueError(f"columns= maps from {absent}, which the log does not have: {list(frame.columns)}.")
        frame = frame.rename(columns={src: dst for dst, src in columns.items()})
    return frame


_INVERSE_COLUMNS = {"inv_p_log": "inverse_propensity", "inv_cascade_log": "inverse_cascade_propensity"}


def _check_log(frame) -> None:
    import pandas as pd

    for col, why in (
        ("user_id", "who was shown the slate"),
        ("item_id", "what was shown"),
        ("reward", "what each shown item earned"),
        ("propensity", "the logging policy's probability of each shown item, which IPS-type estimators divide by"),
    ):
        if col not in frame.columns:
            raise ValueError(
                f"the log has no '{col}' column ({why}); it has {list(frame.columns)}. Name yours with "
                f"columns={{'{col}': 'your_column'}}."
            )
    for col in ("reward", "propensity", "cascade_propensity"):
        if col in frame.columns and not (pd.api.types.is_numeric_dtype(frame[col]) and frame[col].dtype != bool):
            if not (col == "reward" and frame[col].dtype == bool):
                raise TypeError(f"the log's '{col}' column must hold numbers, it has dtype {frame[col].dtype}.")
    for col in ("reward", "propensity"):
        bad = ~np.isfinite(frame[col].to_numpy(dtype=np.float64))
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} row(s) of the log have no finite '{col}' (first: row {int(np.argmax(bad))})."
            )
    for col in ("propensity", "cascade_propensity"):
        if col in frame.columns:
            p = frame[col].to_numpy(dtype=np.float64)
            bad = ~((p > 0) & (p <= 1))
            if bad.any():
                raise ValueError(
                    f"{int(bad.sum())} {col} value(s) lie outside (0, 1] (first: {p[bad][0]!r} in row "
                    f"{int(np.argmax(bad))}): a logged item must have had a positive probability of being shown."
                )
    for col in _INVERSE_COLUMNS.values():
        if col in frame.columns:
            inv = frame[col].to_numpy(dtype=np.float64)
            bad = ~(np.isfinite(inv) & (inv >= 1))
            if bad.any():
                raise ValueError(
                    f"{int(bad.sum())} {col} value(s) are not finite numbers >= 1 (first: {inv[bad][0]!r} in row "
                    f"{int(np.argmax(bad))}): an inverse probability is at least 1."
                )


def _slates(frame) -> tuple[Any, int]:
    """The log sorted into equal-size slates: ``(frame, k)``; rows without slate_id are slates of one item."""
    if "slate_id" not in frame.columns:
        frame = frame.assign(slate_id=np.arange(len(frame)), position=0)
    if "position" not in frame.columns:
        frame = frame.assign(position=frame.groupby("slate_id", sort=False).cumcount())
    frame = frame.sort_values(["slate_id", "position"], kind="stable")
    sizes = frame.groupby("slate_id", sort=False).size().to_numpy()
    if (sizes != sizes[0]).any():
        raise ValueError(
            f"the log's slates have different sizes ({sorted(set(sizes.tolist()))[:5]}): give equal ones."
        )
    k = int(sizes[0])
    pos = frame["position"].to_numpy().reshape(-1, k)
    wrong = (pos != np.arange(k)).any(1)
    if wrong.any():
        raise ValueError(f"each slate must list positions 0..{k - 1} once; {int(wrong.sum())} slate(s) do not.")
    return frame, k


def _reward_fn(reward_model: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    if reward_model is None or callable(reward_model) and not hasattr(reward_model, "score"):
        return reward_model
    return lambda users, items: np.asarray(reward_model.score(list(users), list(items)), dtype=np.float64)


def ope_inputs(
    log: Any,
    policy: Policy | None = None,
    reward_model: Any = None,
    columns: dict[str, str] | None = None,
) -> OPEInputs:
    """Map a logged table to aligned OPE arrays, with the target policy's probabilities of the logged slates.

    Args:
        log: ``datasets.Dataset`` or pandas DataFrame, one row per shown item (``Slates.to_dataset`` writes one):
            ``user_id``, ``item_id``, ``reward``, ``propensity`` and optionally ``slate_id``, ``position``,
            ``cascade_propensity``, ``inverse_propensity``, ``inverse_cascade_propensity`` (when present, the
            weights multiply by these instead of dividing by the propensities). A table without ``slate_id`` is a
            single-item log (one round per row).
        policy: the target policy (its ``propensities`` of the logged slates); ``None`` for logging-side only.
        reward_model: for DM / DR / SNDR / Switch-DR: a fitted recommender (its ``score(users, items)``) or a
            callable ``(users, items) -> (len(users), len(items))`` array of expected rewards.
        columns: ``{canonical: your_column}`` for logs with other column names, e.g. ``{"propensity": "pscore"}``.

    Returns:
        :class:`OPEInputs`.

    Raises:
        ValueError: a missing column, propensities outside ``(0, 1]``, missing values, unequal slates.
        TypeError: rewards or propensities that are not numbers.
    """
    frame, k = _slates(_frame(log, columns))
    _check_log(frame)
    n = len(frame) // k
    users = frame["user_id"].to_numpy()[::k]
    items = frame["item_id"].to_numpy().reshape(n, k)
    x = OPEInputs(
        reward=frame["reward"].to_numpy(dtype=np.float64).reshape(n, k),
        p_log=frame["propensity"].to_numpy(dtype=np.float64).reshape(n, k),
        cascade_log=frame["cascade_propensity"].to_numpy(np.float64).reshape(n, k)
        if "cascade_propensity" in frame.columns
        else None,
        users=users,
        items=items,
        **{f: frame[c].to_numpy(np.float64).reshape(n, k) for f, c in _INVERSE_COLUMNS.items() if c in frame.columns},
    )
    if policy is not None:
        x.p_target, x.cascade_target = _target_propensities(policy, users, items)
    if reward_model is not None:
        x.q_logged, x.q_target = _reward_terms(_reward_fn(reward_model), policy, users, items)
    return x


def _target_propensities(policy: Policy, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The target's probabilities of the logged slates; a slate with a non-candidate item has probability 0 from
    that position on."""
    cand = np.isin(items, policy.item_ids)
    marg, casc = np.zeros(items.shape), np.zeros(items.shape)
    rows = cand.all(1)
    if rows.any():
        marg[rows], casc[rows] = policy.propensities(users[rows], items[rows])
    part = ~rows & cand.any(1)
    if part.any():
        raise ValueError(
            f"{int(part.sum())} logged slate(s) mix candidates of the target policy with other items: give the "
            "target policy every logged item as a candidate (items=)."
        )
    return marg, casc


def _reward_terms(q: Callable, policy: Policy | None, users: np.ndarray, items: np.ndarray):
    """``q_logged (n, k)`` and, for single-item logs with a target policy, ``q_target (n,)``."""
    every = unique(np.concatenate([items.reshape(-1), [] if policy is None else policy.item_ids]))
    position = {item: j for j, item in enumerate(every.tolist())}
    q_all = np.asarray(q(users, every), dtype=np.float64)
    if q_all.shape != (len(users), len(every)):
        raise ValueError(f"the reward model returned shape {q_all.shape}, expected {(len(users), len(every))}.")
    cols = np.array([position[i] for i in items.reshape(-1).tolist()]).reshape(items.shape)
    q_logged = np.take_along_axis(q_all, cols, 1)
    q_target = None
    if policy is not None and items.shape[1] == 1:
        probs = policy.action_probabilities(users)
        q_target = (probs * q_all[:, [position[i] for i in policy.item_ids.tolist()]]).sum(1)
    return q_logged, q_target


# ---------------------------------------------------------------------------------------------- the report
@dataclass
class OPEReport:
    """Estimates of one target policy on one log, with bootstrap intervals.

    Args:
        rows: ``[{"estimator", "value", "ci_low", "ci_high"}, ...]``.
        num_rounds: rounds (slates) in the log; ``k``: items per slate.
        logged_value: the mean logged reward per round (the logging policy's own value, on-policy).
    """

    rows: list[dict[str, Any]]
    num_rounds: int
    k: int
    logged_value: float
    alpha: float = 0.05
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "num_rounds": self.num_rounds,
            "k": self.k,
            "logged_value": self.logged_value,
            "alpha": self.alpha,
            "estimates": self.rows,
            **self.extra,
        }

    def to_markdown(self) -> str:
        pct = round(100 * (1 - self.alpha))
        lines = [
            f"{self.num_rounds} logged rounds, slates of {self.k}; logged (behaviour) value {self.logged_value:.4f}",
            "",
            f"| estimator | value | {pct}% CI (bootstrap) |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {r['estimator']} | {r['value']:.4f} | [{r['ci_low']:.4f}, {r['ci_high']:.4f}] |" for r in self.rows
        ]
        return "\n".join(lines)


def evaluate_policy(
    log: Any,
    policy: Policy,
    estimators: Sequence[str] | None = None,
    reward_model: Any = None,
    columns: dict[str, str] | None = None,
    alpha: float = 0.05,
    n_bootstrap: int = 1000,
    seed: int = 0,
    tau: float = 10.0,
) -> OPEReport:
    """Off-policy estimates of ``policy``'s value on a logged table, each with a bootstrap interval.

    Args:
        log: the logged table (see :func:`ope_inputs`).
        policy: the target policy.
        estimators: names from :data:`ESTIMATORS`; default: those the log supports (``ips``, ``snips`` and, with
            a reward model, ``dm``, ``dr``, ``sndr``, ``switch_dr`` for single-item logs; ``iips``, ``rips``,
            ``slate_ips``, ``pseudo_inverse`` for slates).
        reward_model: a recommender or callable giving expected rewards (DM and the doubly robust estimators).
        columns: column names of the log, as in :func:`ope_inputs`.
        alpha: 1 - the intervals' coverage.
        n_bootstrap: bootstrap resamples per estimator.
        seed: seed of the bootstrap.
        tau: Switch-DR's weight threshold.

    Returns:
        :class:`OPEReport` (``to_markdown()``, ``to_dict()``).

    Example:
        ```python
        >>> report = evaluate_policy(log, SoftmaxPolicy(model, temperature=0.5))  # doctest: +SKIP
        >>> print(report.to_markdown())  # doctest: +SKIP
        ```
    """
    x = ope_inputs(log, policy, reward_model, columns)
    if estimators is None:
        if x.k == 1:
            estimators = ["ips", "snips"] + (["dm", "dr", "sndr", "switch_dr"] if reward_model is not None else [])
        else:
            estimators = ["iips", "rips", "slate_ips", "pseudo_inverse"] if x.cascade_log is not None else ["iips"]
    rows = []
    for name in estimators:
        opts = {"tau": tau} if name == "switch_dr" else {}
        lo, hi = bootstrap_interval(x, name, alpha, n_bootstrap, seed, **opts)
        rows.append({"estimator": name, "value": estimate(x, name, **opts), "ci_low": lo, "ci_high": hi})
    return OPEReport(rows, len(x.reward), x.k, float(x.reward.sum(1).mean()), alpha)
