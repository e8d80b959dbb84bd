"""Slate estimators against a known truth: independent-IPS, reward-interaction IPS, slate IPS, pseudo-inverse.

Two ALS models fitted on generated interactions (``hf_recsys.data.generate_interactions``, 200 users, 50 items)
score the items; the logging policy is epsilon-greedy (epsilon 0.8) over model A, the target epsilon-greedy
(epsilon 0.2) over model B, slates of 3 (both policies' probabilities are exact). The click probability of item
``i`` for user ``u`` is ``q(u, i) = sigmoid(2 z(u, i))``, ``z`` the standardised score of a third ALS model (the
"true" tastes), and clicks follow one of two user models:

- position-based (PBM): a click at position ``j`` with probability ``q(u, i) / (j + 1)``, independently;
- cascade: the user scans down and clicks the first item that attracts them (probability ``q(u, i)``), then stops.

The truth is exact for PBM (the target's item-position marginals) and, for the cascade, exact for the greedy part
and a 20,000-slate Monte-Carlo mean per user for the uniform part. Under PBM every estimator is unbiased; under the
cascade the reward at a position depends on the items above it, which independent-IPS ignores (biased) and
reward-interaction IPS accounts for. Mean relative error over ``--seeds`` logs per number of rounds.

A second table logs with a softmax (Plackett-Luce) policy over model A instead (temperature ``--temperature``,
``--n-samples`` Monte-Carlo draws), whose item-position marginals beyond position 0 are Monte-Carlo estimates: it
compares independent-IPS and the pseudo-inverse weighted by ``1 / propensity`` (the served slate counted among the
``n_samples + 1`` draws: biased up, so the estimates come out low) with the same estimators weighted by the logged
``inverse_propensity`` (a geometric draw count, unbiased up to its cap), as signed mean relative errors.

Usage (from the repository root): ``OMP_NUM_THREADS=1 nice -n 10 python benchmarks/online/ope_slates.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ope import _meta  # noqa: E402  (the machine / load / commit header shared with ope.py)

from hf_recsys.policies import EpsilonGreedyPolicy, OPEInputs, SoftmaxPolicy, estimate  # noqa: E402

ESTIMATORS = ("iips", "rips", "slate_ips", "pseudo_inverse")
SOFTMAX_COLUMNS = ("iips 1/propensity", "iips inverse_propensity", "pi 1/propensity", "pi inverse_propensity", "rips")
K = 3


def models():
    from hf_recsys_classic import ALSConfig, ALSModel

    from hf_recsys.data import generate_interactions

    log, _ = generate_interactions(num_users=200, num_items=50, num_interactions=3000, seed=0)
    fit = lambda f, s: ALSModel(ALSConfig(factors=f, iterations=5, seed=s)).fit(log, show_progress=False)  # noqa: E731
    return fit(8, 1), fit(4, 2), fit(16, 3)


def click_probs(truth_model, users, items) -> np.ndarray:
    z = truth_model.score(list(users), list(items)).astype(np.float64)
    z = (z - z.mean()) / z.std()
    return 1.0 / (1.0 + np.exp(-2 * z))


def clicks(q_shown: np.ndarray, kind: str, rng) -> np.ndarray:
    """``(n, K)`` Bernoulli clicks of the shown items' click probabilities under the user model."""
    if kind == "pbm":
        return (rng.random(q_shown.shape) < q_shown / (np.arange(K) + 1)).astype(float)
    attract = rng.random(q_shown.shape) < q_shown
    first = np.cumsum(attract, 1) == 1
    return (attract & first).astype(float)


def slate_value(q_shown: np.ndarray, kind: str) -> np.ndarray:
    """Expected clicks per slate of given shown-item click probabilities ``(..., K)``."""
    if kind == "pbm":
        return (q_shown / (np.arange(K) + 1)).sum(-1)
    return 1.0 - np.prod(1.0 - q_shown, axis=-1)  # P(at least one attracts) = expected clicks (at most one)


def true_value(target, q_all: np.ndarray, kind: str, rng) -> float:
    """The target's expected clicks per slate, averaged over users (uniform user distribution)."""
    users = np.arange(q_all.shape[0])
    greedy = np.argsort(-target._model_scores(target.model.user_vocab.decode(users)), axis=1, kind="stable")[:, :K]
    v_greedy = slate_value(np.take_along_axis(q_all, greedy, 1), kind)
    if kind == "pbm":
        v_uniform = slate_value(np.repeat(q_all.mean(1, keepdims=True), K, 1), kind)
    else:
        draws = np.argsort(rng.random((len(users), 20000, q_all.shape[1])), axis=-1)[..., :K]
        v_uniform = slate_value(q_all[users[:, None, None], draws], kind).mean(1)
    return float(((1 - target.epsilon) * v_greedy + target.epsilon * v_uniform).mean())


def run(rounds: list[int], seeds: int) -> dict:
    model_a, model_b, truth_model = models()
    user_ids = model_a.user_vocab.decode(np.arange(200))
    item_ids = model_a.item_vocab.decode(np.arange(50))
    q_all = click_probs(truth_model, user_ids, item_ids)
    out = {}
    for kind in ("pbm", "cascade"):
        target = EpsilonGreedyPolicy(model_b, epsilon=0.2, items=item_ids)
        truth = true_value(target, q_all, kind, np.random.default_rng(99))
        table = {}
        for n in rounds:
            errs = np.empty((seeds, len(ESTIMATORS)))
            for s in range(seeds):
                rng = np.random.default_rng(7919 * s + n)
                logging = EpsilonGreedyPolicy(model_a, epsilon=0.8, items=item_ids, seed=s)
                users = user_ids[rng.integers(0, 200, n)]
                served = logging.sample(users, k=K)
                shown = model_a.item_vocab.encode(served.items.reshape(-1)).reshape(n, K)
                u_idx = model_a.user_vocab.encode(list(users))
                reward = clicks(q_all[u_idx[:, None], shown], kind, rng)
                marg, casc = target.propensities(users, served.items)
                x = OPEInputs(reward, served.propensity, marg, served.cascade_propensity, casc)
                errs[s] = [abs(estimate(x, e) - truth) / truth for e in ESTIMATORS]
            table[n] = {
                "mean": dict(zip(ESTIMATORS, errs.mean(0).tolist())),
                "stderr": dict(zip(ESTIMATORS, (errs.std(0, ddof=1) / np.sqrt(seeds)).tolist())),
            }
        out[kind] = {"truth": truth, "table": table}
    return out


def run_softmax(rounds: list[int], seeds: int, n_samples: int, temperature: float) -> dict:
    """Signed relative errors under softmax logging, old (``1 / propensity``) and new (``inverse_propensity``)."""
    model_a, model_b, truth_model = models()
    user_ids = model_a.user_vocab.decode(np.arange(200))
    item_ids = model_a.item_vocab.decode(np.arange(50))
    q_all = click_probs(truth_model, user_ids, item_ids)
    target = EpsilonGreedyPolicy(model_b, epsilon=0.2, items=item_ids)
    truth = {kind: true_value(target, q_all, kind, np.random.default_rng(99)) for kind in ("pbm", "cascade")}
    table: dict = {kind: {} for kind in truth}
    for n in rounds:
        errs = {kind: np.empty((seeds, len(SOFTMAX_COLUMNS))) for kind in truth}
        for s in range(seeds):
            rng = np.random.default_rng(7919 * s + n)
            logging = SoftmaxPolicy(model_a, temperature, items=item_ids, n_samples=n_samples, seed=s)
            users = user_ids[rng.integers(0, 200, n)]
            served = logging.sample(users, k=K)
            shown = model_a.item_vocab.encode(served.items.reshape(-1)).reshape(n, K)
            q_shown = q_all[model_a.user_vocab.encode(list(users))[:, None], shown]
            marg, casc = target.propensities(users, served.items)
            for kind in truth:
                reward = clicks(q_shown, kind, rng)
                old = OPEInputs(reward, served.propensity, marg, served.cascade_propensity, casc)
                new = OPEInputs(reward, served.propensity, marg, served.cascade_propensity, casc)
                new.inv_p_log, new.inv_cascade_log = served.inverse_propensity, served.inverse_cascade_propensity
                values = [estimate(x, e) for e in ("iips", "pseudo_inverse") for x in (old, new)]
                errs[kind][s] = (np.array([*values, estimate(new, "rips")]) - truth[kind]) / truth[kind]
        for kind in truth:
            table[kind][n] = {
                "mean": dict(zip(SOFTMAX_COLUMNS, errs[kind].mean(0).tolist())),
                "stderr": dict(zip(SOFTMAX_COLUMNS, (errs[kind].std(0, ddof=1) / np.sqrt(seeds)).tolist())),
            }
    return {kind: {"truth": truth[kind], "table": table[kind]} for kind in truth}


def _softmax_markdown(result: dict, meta: dict) -> list[str]:
    lines = [
        "",
        f"# Softmax logging (temperature {meta['temperature']}, n_samples {meta['n_samples']}): signed mean relative "
        f"error ± s.e. over {meta['seeds']} seeds",
        "",
        "Same target and truth as above. `1/propensity`: the weights divide by the logged Monte-Carlo marginal (the "
        "served slate counted among the draws); `inverse_propensity`: they multiply by the logged geometric draw "
        "count. RIPS uses the exact prefix probabilities of the softmax policy.",
    ]
    for kind, res in result.items():
        lines += ["", f"## {kind} clicks (true value {res['truth']:.5f})", ""]
        lines += ["| rounds | " + " | ".join(SOFTMAX_COLUMNS) + " |", "| --- |" + " --- |" * len(SOFTMAX_COLUMNS)]
        for n, row in res["table"].items():
            cells = [f"{row['mean'][e]:+.4f} ± {row['stderr'][e]:.4f}" for e in SOFTMAX_COLUMNS]
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    return lines


def _markdown(result: dict, meta: dict) -> str:
    lines = [
        f"# Slate OPE relative error (k={K}, 50 items, 200 users), mean ± s.e. over {meta['seeds']} seeds",
        "",
        f"Machine: {meta['machine']}. Load (uptime) before: {meta['load_before']}; after: {meta['load_after']}.",
        f"Date {meta['date']}, commit {meta['commit']}. Logging: epsilon-greedy 0.8 over ALS A; target: "
        "epsilon-greedy 0.2 over ALS B.",
    ]
    for kind, res in result.items():
        if kind == "softmax":
            continue
        lines += ["", f"## {kind} clicks (true value {res['truth']:.5f} clicks per slate)", ""]
        lines += ["| rounds | " + " | ".join(ESTIMATORS) + " |", "| --- |" + " --- |" * len(ESTIMATORS)]
        for n, row in res["table"].items():
            cells = [f"{row['mean'][e]:.4f} ± {row['stderr'][e]:.4f}" for e in ESTIMATORS]
            lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    if "softmax" in result:
        lines += _softmax_markdown(result["softmax"], meta)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, nargs="*", default=[1000, 10000, 100000], help="[] to skip")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--softmax-rounds", type=int, nargs="*", default=[1000, 10000, 100000], help="[] to skip")
    parser.add_argument("--n-samples", type=int, default=50, help="softmax logging: Monte-Carlo draws")
    parser.add_argument("--temperature", type=float, default=0.5, help="softmax logging temperature")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_ope_slates")), help="without suffix")
    args = parser.parse_args()
    args.beta = args.epsilon = args.tau = None
    meta = _meta(args)
    meta["temperature"], meta["n_samples"] = args.temperature, args.n_samples
    meta["load_before"] = os.popen("uptime").read().strip()
    result = run(args.rounds, args.seeds) if args.rounds else {}
    if args.softmax_rounds:
        result["softmax"] = run_softmax(args.softmax_rounds, args.seeds, args.n_samples, args.temperature)
    meta["load_after"] = os.popen("uptime").read().strip()
    text = _markdown(result, meta)
    print(text)
    Path(args.out + ".md").write_text(text, encoding="utf-8")
    Path(args.out + ".json").write_text(json.dumps({**meta, **result}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
