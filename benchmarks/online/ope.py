"""Off-policy estimators against the known value of synthetic bandits: relative error as the log grows.

Setting (``hf_recsys.policies.SyntheticBandit``): 30 actions, 5-d Gaussian contexts, Bernoulli rewards with
``q(x, a) = sigmoid(x . theta_a + b_a)``, a linear softmax logging policy (``--beta``), and as target an
epsilon-greedy policy (epsilon 0.1) on the true expected rewards. The ground truth is the target's mean
expected reward over 10^6 fresh contexts. The reward model of DM / DR / SNDR / Switch-DR is a per-action
least-squares linear model on ``(x, 1)`` (misspecified on purpose: real reward models are), cross-fitted on two
halves of each log. Switch-DR's threshold is fixed a priori at ``tau = 50`` (nothing is tuned on these runs).

For each number of rounds and ``--seeds`` logs, the table gives the mean relative error ``|V_hat - V| / V`` of
each estimator (and its standard error over seeds), next to Open Bandit Pipeline's published table (synthetic
data, 10k rounds, 30 actions: DM 0.074, IPW 0.0095, SNIPW 0.0067, DR 0.0062) — a different generator (obp's
reward and behaviour functions, a learned evaluation policy), so an anchor, not an oracle.

Usage (from the repository root): ``OMP_NUM_THREADS=1 nice -n 10 python benchmarks/online/ope.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from hf_recsys.policies import SyntheticBandit, estimate

ESTIMATORS = ("dm", "ips", "snips", "dr", "sndr", "switch_dr")
OBP_10K_30 = {"dm": 0.074, "ips": 0.0095, "snips": 0.0067, "dr": 0.0062}  # obp README / docs table


def linear_reward_model(x: np.ndarray, actions: np.ndarray, rewards: np.ndarray, n_actions: int) -> np.ndarray:
    """Per-action ridge regression of the reward on ``(x, 1)``, cross-fitted on two halves: ``(n, n_actions)``."""
    feats = np.hstack([x, np.ones((len(x), 1))])
    q_hat = np.empty((len(x), n_actions))
    half = np.arange(len(x)) < len(x) // 2
    for fold in (half, ~half):
        train = ~fold
        for a in range(n_actions):
            sel = train & (actions == a)
            gram = feats[sel].T @ feats[sel] + 1e-3 * np.eye(feats.shape[1])
            coef = np.linalg.solve(gram, feats[sel].T @ rewards[sel])
            q_hat[fold, a] = feats[fold] @ coef
    return q_hat


def run(rounds: list[int], seeds: int, beta: float, epsilon: float, tau: float) -> dict:
    bandit = SyntheticBandit(n_actions=30, dim=5, beta=beta, seed=0)
    target = bandit.greedy_target(epsilon)
    truth = bandit.policy_value(target, n=1_000_000)
    table = {}
    for n in rounds:
        errs = np.empty((seeds, len(ESTIMATORS)))
        start = time.perf_counter()
        for s in range(seeds):
            logged = bandit.log(n, seed=1000 * s + n)
            q_hat = linear_reward_model(logged["contexts"], logged["actions"], logged["rewards"], bandit.n_actions)
            x = bandit.ope_inputs(logged, target, q_hat)
            errs[s] = [
                abs(estimate(x, e, **({"tau": tau} if e == "switch_dr" else {})) - truth) / truth for e in ESTIMATORS
            ]
        table[n] = {
            "mean": dict(zip(ESTIMATORS, errs.mean(0).tolist())),
            "stderr": dict(zip(ESTIMATORS, (errs.std(0, ddof=1) / np.sqrt(seeds)).tolist())),
            "seconds": time.perf_counter() - start,
        }
    return {"truth": truth, "table": table}


def _markdown(result: dict, meta: dict) -> str:
    head = "| rounds | " + " | ".join(ESTIMATORS) + " |"
    lines = [
        f"# OPE relative error on a synthetic bandit (30 actions, 5-d contexts), mean over {meta['seeds']} seeds",
        "",
        f"Machine: {meta['machine']}. Load (uptime) before: {meta['load_before']}; after: {meta['load_after']}.",
        f"Date {meta['date']}, commit {meta['commit']}. Logging softmax beta={meta['beta']}, target epsilon-greedy "
        f"(epsilon={meta['epsilon']}) on the true rewards, true value {result['truth']:.5f}; "
        f"Switch-DR tau={meta['tau']}.",
        "",
        head,
        "| --- |" + " --- |" * len(ESTIMATORS),
    ]
    for n, row in result["table"].items():
        cells = [f"{row['mean'][e]:.4f} ± {row['stderr'][e]:.4f}" for e in ESTIMATORS]
        lines.append(f"| {n:,} | " + " | ".join(cells) + " |")
    obp = [f"{OBP_10K_30[e]:.4f}" if e in OBP_10K_30 else "–" for e in ESTIMATORS]
    lines.append("| obp published, 10,000 | " + " | ".join(obp) + " |")
    return "\n".join(lines) + "\n"


def _meta(args) -> dict:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    isa = ("AVX512_BF16" if "avx512_bf16" in flags else "no AVX512_BF16") + (
        ", AMX" if "amx_tile" in flags else ", no AMX"
    )
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "machine": f"{cpu}, {isa}, {os.cpu_count()} cores, {mem:.0f} GiB, no GPU",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit,
        "seeds": args.seeds,
        "beta": args.beta,
        "epsilon": args.epsilon,
        "tau": args.tau,
        "threads": os.environ.get("OMP_NUM_THREADS", "unset"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--beta", type=float, default=0.5, help="inverse temperature of the logging policy")
    parser.add_argument("--epsilon", type=float, default=0.1, help="exploration of the target policy")
    parser.add_argument("--tau", type=float, default=50.0, help="Switch-DR weight threshold")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_ope")), help="path without suffix")
    args = parser.parse_args()
    meta = _meta(args)
    meta["load_before"] = os.popen("uptime").read().strip()
    result = run(args.rounds, args.seeds, args.beta, args.epsilon, args.tau)
    meta["load_after"] = os.popen("uptime").read().strip()
    text = _markdown(result, meta)
    print(text)
    Path(args.out + ".md").write_text(text, encoding="utf-8")
    Path(args.out + ".json").write_text(json.dumps({**meta, **result}, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
