"""The REINFORCE top-K policy against its logging policy and the greedy recommender, in the user simulator built
from ml-latest-small, with confidence intervals; and its off-policy estimate on held-out logs next to the simulated
truth.

The world: EASE fitted on ml-latest-small (items with >= 10 ratings) is the simulator's truth
(:class:`hf_recsys.simulation.UserSimulator`: a logit over the slate with position bias and a no-click option, genre
satiation, repeat/boredom penalties, leaving). The recommender: a causal sequential model fitted on the same log.

1. The logging policy (softmax over the sequential model's scores, ``hf_recsys.policies.SoftmaxPolicy``) serves
   ``--train-rounds`` rounds of sessions (one per user per round); they are logged with their propensities.
2. The REINFORCE policy (:class:`hf_recsys.policies.reinforce.TopKReinforceRecommender`) starts from the sequential
   model and trains on those logs through the training engine.
3. Each agent runs ``--eval-rounds`` fresh rounds (new seeds, the same for every agent): mean clicks per session,
   95% bootstrap interval (``policies.bootstrap_interval``), and the paired difference to the logging policy.
4. OPE: the logging policy serves ``--heldout-rounds`` more rounds; the estimators (``policies.estimate``) value
   the target policies on them; the simulated truth is what the simulator says the target's own slate would earn
   in the same logged states (expected clicks per slate).

Run: ``nice -n 10 python benchmarks/online/simulator.py [--quick]``; results go to
``benchmarks/online/results_simulator.{json,md}`` (``--quick``: a smoke run on 60 users, not written there).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "classic"))
from _common import load_average, machine, markdown_table  # noqa: E402

from hf_recsys import AutoModelForRecommendation  # noqa: E402
from hf_recsys.data import kcore_filter, load_movielens  # noqa: E402
from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender  # noqa: E402
from hf_recsys.policies import OPEInputs, SoftmaxPolicy, bootstrap_interval, estimate, ope_inputs  # noqa: E402
from hf_recsys.policies.reinforce import LoggedSlates, TopKReinforceRecommender  # noqa: E402
from hf_recsys.simulation import UserSimulator  # noqa: E402
from hf_recsys.simulation.rollout import GreedyAgent, PolicyAgent, SessionState, mean_interval, run_sessions  # noqa: E402
from hf_recsys.testing_utils import ml_latest_small_path  # noqa: E402

SEEDS = {"train": 1000, "heldout": 2000, "eval": 3000}
OPE_ESTIMATORS = ("iips", "rips", "pseudo_inverse")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--item-k", type=int, default=10, help="keep items with at least this many ratings")
    p.add_argument("--slate-size", type=int, default=10)
    p.add_argument("--train-rounds", type=int, default=4)
    p.add_argument("--heldout-rounds", type=int, default=1)
    p.add_argument("--eval-rounds", type=int, default=3)
    p.add_argument("--temperature", type=float, default=0.15, help="of the logging softmax (and the policy's start)")
    p.add_argument("--seq-epochs", type=int, default=15)
    p.add_argument("--rl-epochs", type=int, default=3)
    p.add_argument("--rl-lr", type=float, default=1e-3)
    p.add_argument("--weight-cap", type=float, default=10.0)
    p.add_argument("--gamma", type=float, default=0.0)
    p.add_argument("--n-samples", type=int, default=100, help="Monte-Carlo slates for position marginals (OPE)")
    p.add_argument("--users", type=int, default=None, help="use only this many users (smoke runs)")
    p.add_argument("--ablation", action="store_true", help="also train REINFORCE without the top-K correction")
    p.add_argument("--cache", type=Path, default=None, help="folder to keep the fitted EASE / sequential models")
    p.add_argument("--quick", action="store_true", help="a smoke run: 60 users, 1 round each, tiny training")
    p.add_argument("--out", type=Path, default=HERE / "results_simulator")
    args = p.parse_args(argv)
    if args.quick:
        args.users, args.train_rounds, args.eval_rounds, args.seq_epochs, args.rl_epochs = 60, 1, 1, 2, 1
        args.n_samples, args.out = 20, Path("/tmp/hf-recsys-simulator-quick")
    return args


def git_commit() -> str:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
    return out.stdout.strip() or "unknown"


# ---------------------------------------------------------------------------------------------- the world
def load_world(args):
    path = ml_latest_small_path()
    if path is None:
        raise SystemExit("ml-latest-small not found: set HF_RECSYS_ML_LATEST_SMALL or put it in ../shared/data/.")
    log, items = load_movielens(path)
    log = kcore_filter(log, user_k=5, item_k=args.item_k)
    if args.users:
        keep = set(sorted(set(log["user_id"]))[: args.users])
        log = log.filter(lambda b: [u in keep for u in b["user_id"]], batched=True)
    return log, items


def fitted(name: str, args, build):
    """A model from the cache folder, else fitted by ``build()`` (and cached)."""
    folder = None if args.cache is None else args.cache / f"{name}-items{args.item_k}-users{args.users}"
    if folder is not None and (folder / "config.json").is_file():
        print(f"{name}: loaded from {folder}", flush=True)
        return AutoModelForRecommendation.from_pretrained(folder), True
    model = build()
    if folder is not None:
        model.save_pretrained(folder)
    return model, False


def build_models(log, args, timings):
    t = time.perf_counter()
    ease, cached = fitted("ease", args, lambda: AutoModelForRecommendation.for_model("ease", l2=200.0).fit(log))
    timings["ease_load_s" if cached else "ease_fit_s"] = time.perf_counter() - t
    cfg = CausalSequentialConfig(
        max_sequence_length=30, hidden_size=32, num_layers=2, num_heads=2, dropout=0.2, epochs=args.seq_epochs
    )
    t = time.perf_counter()
    seq, cached = fitted("causal", args, lambda: CausalSequentialRecommender(cfg).fit(log, show_progress=False))
    timings["sequential_load_s" if cached else "sequential_fit_s"] = time.perf_counter() - t
    return ease, seq


# ---------------------------------------------------------------------------------------------- runs
def rounds(sim, agent, kind: str, num_rounds: int, log: bool = False, on_step=None):
    """``num_rounds`` rounds of one session per user; returns (per-session clicks, per-session steps, logs)."""
    import datasets

    n = sim.num_users
    returns, lengths, logs, first = [], [], [], 0
    for r in range(num_rounds):
        res = run_sessions(
            sim,
            agent,
            seed=SEEDS[kind] + r,
            session_ids=r * n + np.arange(n),
            log=log,
            first_slate_id=first,
            on_step=on_step,
        )
        returns.append(res.returns)
        lengths.append(res.lengths)
        if log:
            logs.append(res.log)
            first += res.log.num_rows // sim.config.slate_size
    dataset = datasets.concatenate_datasets(logs) if log else None
    return np.concatenate(returns), np.concatenate(lengths), dataset


def mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and its 95% bootstrap interval."""
    lo, hi = mean_interval(values)
    return float(np.mean(values)), lo, hi


class TruthProbe:
    """Called before every held-out logging step: what each target's own slate would earn in that state."""

    def __init__(self, sim, agents: dict):
        self.sim, self.agents = sim, agents
        self.sums = dict.fromkeys(agents, 0.0)
        self.count = 0
        for agent in agents.values():
            agent.begin(sim)

    def __call__(self, sim, obs, rows):
        for name, agent in self.agents.items():
            slates = agent.act(sim, obs, rows)["slates"]
            self.sums[name] += float((1.0 - sim.click_probabilities(slates, rows)[:, 0]).sum())
        self.count += len(rows)

    def close(self) -> dict:
        for agent in self.agents.values():
            agent.end()
        return {name: s / self.count for name, s in self.sums.items()}


def target_inputs(heldout, policy, users_per_round: int) -> OPEInputs:
    """OPE inputs of a target policy on the held-out log, its propensities computed in each logged state (the
    user's history then the session's earlier clicks), step by step."""
    x = ope_inputs(heldout)
    model = policy.model
    logged = LoggedSlates.from_log(heldout, model.user_vocab, model.item_vocab, "action_propensity")
    clicks = logged.prior_clicks()
    df = heldout.to_pandas().sort_values(["slate_id", "position"], kind="stable").iloc[:: x.k]
    group = (df["session_id"].to_numpy() // users_per_round) * 1000 + logged.step
    state = SessionState(model)
    marg, casc = np.zeros_like(x.reward), np.zeros_like(x.reward)
    try:
        for g in np.unique(group):
            rows = np.flatnonzero(group == g)
            state.apply(logged.users[rows], clicks[rows])
            marg[rows], casc[rows] = policy.propensities(x.users[rows], x.items[rows])
    finally:
        state.restore()
    x.p_target, x.cascade_target = marg, casc
    return x


def ope_rows(heldout, targets: dict, truth: dict, users_per_round: int) -> list[dict]:
    out = []
    for name, policy in targets.items():
        x = target_inputs(heldout, policy, users_per_round)
        row = {"target": name, "truth": truth[name], "slates": len(x.reward)}
        for est in OPE_ESTIMATORS:
            lo, hi = bootstrap_interval(x, est, n_bootstrap=500, seed=0)
            row[est] = (estimate(x, est), lo, hi)
        out.append(row)
    return out


# ---------------------------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(0)
    load_before, t0, timings, commit = load_average(), time.perf_counter(), {}, git_commit()
    log, items = load_world(args)
    ease, seq = build_models(log, args, timings)
    sim = UserSimulator.from_model(ease, items=items, slate_size=args.slate_size)
    users = sim.num_users
    print(f"{log.num_rows} ratings, {users} users, {sim.num_items} items; {sim}", flush=True)

    # 1. logs of the logging policy
    logging_policy = SoftmaxPolicy(seq, temperature=args.temperature, exclude_seen=True, n_samples=1, seed=1)
    t = time.perf_counter()
    _, _, train_log = rounds(sim, PolicyAgent(logging_policy), "train", args.train_rounds, log=True)
    timings["train_logs_s"] = time.perf_counter() - t
    print(f"training log: {train_log.num_rows // args.slate_size} slates", flush=True)

    # 2. REINFORCE with the top-K correction, warm-started from the sequential model
    def reinforce(topk: bool):
        rl = TopKReinforceRecommender.from_recommender(
            seq,
            slate_size=args.slate_size,
            weight_cap=args.weight_cap,
            gamma=args.gamma,
            topk_correction=topk,
            softmax_temperature=args.temperature,  # pi starts as the logging policy: softmax(scores / T)
            epochs=args.rl_epochs,
            learning_rate=args.rl_lr,
            batch_size=128,
        )
        return rl.fit(log, logged_slates=train_log, show_progress=False)

    t = time.perf_counter()
    rl = reinforce(True)
    timings["reinforce_fit_s"] = time.perf_counter() - t
    policies = {"REINFORCE top-K (sampled)": rl}
    if args.ablation:
        policies["REINFORCE, no top-K correction (sampled)"] = reinforce(False)

    # 3. every agent in fresh rounds with the same seeds
    agents = {
        "greedy sequential recommender": GreedyAgent(seq),
        f"logging policy (softmax, T={args.temperature:g})": PolicyAgent(
            SoftmaxPolicy(seq, temperature=args.temperature, exclude_seen=True, n_samples=1, seed=2)
        ),
        "REINFORCE top-K (greedy top-K)": GreedyAgent(rl),
        **{
            name: PolicyAgent(SoftmaxPolicy(m, temperature=1.0, exclude_seen=True, n_samples=1, seed=3))
            for name, m in policies.items()
        },
        "reference: greedy on the simulator's own model (EASE)": GreedyAgent(ease),
    }
    t = time.perf_counter()
    results = {name: rounds(sim, agent, "eval", args.eval_rounds) for name, agent in agents.items()}
    timings["evaluation_s"] = time.perf_counter() - t
    logging_name = list(agents)[1]
    sim_rows = []
    for name, (ret, steps, _) in results.items():
        m, lo, hi = mean_ci(ret)
        dm, dlo, dhi = mean_ci(ret - results[logging_name][0])
        sim_rows.append({"agent": name, "clicks": (m, lo, hi), "vs_logging": (dm, dlo, dhi), "steps": steps.mean()})
        print(f"{name}: {m:.3f} [{lo:.3f}, {hi:.3f}] clicks/session, {steps.mean():.2f} steps", flush=True)

    # 4. OPE on held-out logs of the logging policy, next to the simulated truth in the same states
    targets = {
        "logging policy (itself)": SoftmaxPolicy(
            seq, temperature=args.temperature, exclude_seen=True, n_samples=args.n_samples, seed=4
        ),
        **{
            name: SoftmaxPolicy(m, temperature=1.0, exclude_seen=True, n_samples=args.n_samples, seed=5)
            for name, m in policies.items()
        },
    }
    probe = TruthProbe(
        sim,
        {
            "logging policy (itself)": PolicyAgent(
                SoftmaxPolicy(seq, temperature=args.temperature, exclude_seen=True, n_samples=1, seed=6)
            ),
            **{
                name: PolicyAgent(SoftmaxPolicy(m, temperature=1.0, exclude_seen=True, n_samples=1, seed=7))
                for name, m in policies.items()
            },
        },
    )
    heldout_policy = SoftmaxPolicy(seq, temperature=args.temperature, exclude_seen=True, n_samples=args.n_samples)
    t = time.perf_counter()
    _, _, heldout = rounds(sim, PolicyAgent(heldout_policy), "heldout", args.heldout_rounds, log=True, on_step=probe)
    truth = probe.close()
    ope = ope_rows(heldout, targets, truth, users)
    timings["ope_s"] = time.perf_counter() - t
    for row in ope:
        print(row, flush=True)
    timings["total_s"] = time.perf_counter() - t0
    write(args, sim, log, train_log, heldout, sim_rows, ope, timings, load_before, commit)


def _fmt(triple) -> str:
    m, lo, hi = triple
    return f"{m:.3f} [{lo:.3f}, {hi:.3f}]"


def write(args, sim, log, train_log, heldout, sim_rows, ope, timings, load_before, commit):
    k = args.slate_size
    info = {
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "commit": commit,
        "args": {a: str(v) if isinstance(v, Path) else v for a, v in vars(args).items()},
        "data": {"ratings": log.num_rows, "users": sim.num_users, "items": sim.num_items},
        "simulator": repr(sim),
        "train_slates": train_log.num_rows // k,
        "heldout_slates": heldout.num_rows // k,
        "timings_s": timings,
        "simulation": sim_rows,
        "ope": ope,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2, default=float))
    m = info["machine"]
    head = [
        "# REINFORCE top-K vs its logging policy and the greedy recommender, in the simulator",
        "",
        f"{m['date']}, commit {info['commit']}; {m['cpu']}, {m['cores']} cores shared with other jobs (load average "
        f"{load_before} before, {info['load_average_after']} after); torch {m['torch']}, {m['torch_threads']} "
        f"thread(s). Produced by `benchmarks/online/simulator.py` ({' '.join(sys.argv[1:]) or 'defaults'}).",
        "",
        f"World: ml-latest-small, items with >= {args.item_k} ratings ({log.num_rows:,} ratings, {sim.num_users} "
        f"users, {sim.num_items:,} items); truth = EASE (l2=200); `{sim!r}`. Slates of {k}. Training log: "
        f"{args.train_rounds} round(s) of one session per user under the logging policy ({info['train_slates']:,} "
        f"slates); evaluation: {args.eval_rounds} fresh round(s) per agent with the same seeds (common random "
        "numbers); 95% bootstrap intervals over sessions.",
        "",
        "## Clicks per session in the simulator",
        "",
    ]
    table = markdown_table(
        ["agent", "clicks per session [95% CI]", "minus logging policy, paired [95% CI]", "steps per session"],
        [[r["agent"], _fmt(r["clicks"]), _fmt(r["vs_logging"]), f"{r['steps']:.2f}"] for r in sim_rows],
    )
    ope_head = [
        "",
        "## Off-policy estimates on held-out logs vs the simulated truth",
        "",
        f"{info['heldout_slates']:,} held-out slates of the logging policy. Value = expected clicks per slate in the "
        "logged states. Truth: the simulator's click probability of the target's own slate in each logged state "
        "(one slate drawn per state), averaged. Estimates with 95% bootstrap intervals; position marginals by "
        f"{args.n_samples} Monte-Carlo slates.",
        "",
    ]
    ope_table = markdown_table(
        ["target", "simulated truth", *OPE_ESTIMATORS],
        [[r["target"], f"{r['truth']:.4f}", *(_fmt(r[e]) for e in OPE_ESTIMATORS)] for r in ope],
    )
    times = ", ".join(f"{k_} {v:.0f} s" for k_, v in timings.items())
    text = "\n".join([*head, table, *ope_head, ope_table, "", f"Timings: {times}.", ""])
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
