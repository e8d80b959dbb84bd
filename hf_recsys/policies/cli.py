"""``hf-recsys ope LOG --model MODEL --policy NAME``: off-policy evaluation of a policy over a saved model."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

POLICIES = ("epsilon_greedy", "softmax", "beta_thompson", "linucb", "linear_thompson")


def read_log(path: str):
    """A logged table from Parquet, CSV / TSV, JSON lines or a ``datasets.save_to_disk`` folder (pandas frame)."""
    import pandas as pd

    if os.path.isdir(path):
        import datasets

        return datasets.load_from_disk(path).to_pandas()
    readers = {
        ".parquet": pd.read_parquet,
        ".csv": pd.read_csv,
        ".tsv": lambda p: pd.read_csv(p, sep="\t"),
        ".jsonl": lambda p: pd.read_json(p, lines=True),
        ".json": lambda p: pd.read_json(p, lines=True),
    }
    ext = os.path.splitext(path)[1].lower()
    if ext not in readers:
        raise SystemExit(
            f"error: cannot read a log from {path!r}: use .parquet, .csv, .tsv, .jsonl or a dataset folder"
        )
    if not os.path.exists(path):
        raise SystemExit(f"error: no log file at {path!r}")
    return readers[ext](path)


def build_policy(name: str, model: Any, items: list | None, options: dict[str, Any], seed: int):
    """A policy of the given name over ``model`` (``items``: candidate ids, default all of the model's)."""
    from . import BetaThompsonPolicy, EpsilonGreedyPolicy, LinearThompsonPolicy, LinUCBPolicy, SoftmaxPolicy

    classes = {
        "epsilon_greedy": EpsilonGreedyPolicy,
        "softmax": SoftmaxPolicy,
        "beta_thompson": BetaThompsonPolicy,
        "linucb": LinUCBPolicy,
        "linear_thompson": LinearThompsonPolicy,
    }
    try:
        return classes[name](model=model, items=items, seed=seed, **options)
    except TypeError as exc:
        raise SystemExit(f"error: --policy-args for {name}: {exc}") from None


def cmd_ope(args: argparse.Namespace) -> int:
    from ..cli import _load_model, _parse_mapping, _parse_value
    from .ope import evaluate_policy

    log = read_log(args.log)
    columns = _parse_mapping(args.columns, "--columns") or None
    model = _load_model(args.model)
    options = {k: _parse_value(v) for k, v in _parse_mapping(args.policy_args, "--policy-args").items()}
    items = None
    if args.candidates_from_log:
        items = sorted(set(log[(columns or {}).get("item_id", "item_id")].tolist()))
    policy = build_policy(args.policy, model, items, options, args.seed)
    reward_model = _load_model(args.reward_model) if args.reward_model else None
    opts = {"alpha": args.alpha, "n_bootstrap": args.bootstrap, "seed": args.seed, "tau": args.tau}
    try:
        report = evaluate_policy(log, policy, args.estimators, reward_model, columns, **opts)
    except TypeError as exc:  # rewards or propensities that are not numbers
        raise SystemExit(f"error: {exc}") from None
    print(f"policy {args.policy} {options or ''} over {args.model}")
    print(report.to_markdown())
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(
                {"policy": args.policy, "policy_args": options, "model": args.model, **report.to_dict()},
                f,
                indent=2,
                default=float,
            )
        print(f"estimates -> {args.output}")
    return 0


def add_ope_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``hf-recsys ope`` on the command line's sub-parsers."""
    from .ope import ESTIMATORS

    p = sub.add_parser("ope", help="off-policy evaluation of a policy over a saved model on a logged slate file")
    p.add_argument("log", help="logged slates: .parquet/.csv/.jsonl or a dataset folder (Slates.to_dataset columns)")
    p.add_argument("--model", required=True, help="saved model folder or Hub repo id the target policy scores with")
    p.add_argument("--policy", required=True, choices=POLICIES, help="the target policy")
    p.add_argument("--policy-args", nargs="*", help="policy options as key=value, e.g. temperature=0.5 epsilon=0.1")
    p.add_argument(
        "--candidates-from-log",
        action="store_true",
        help="the target's candidates are the logged items (default: every item of the model)",
    )
    p.add_argument("--reward-model", help="saved model whose scores estimate rewards (for dm, dr, sndr, switch_dr)")
    p.add_argument("--estimators", nargs="+", choices=list(ESTIMATORS), help="default: those the log supports")
    p.add_argument("--columns", nargs="*", help="canonical=your column, e.g. propensity=pscore reward=click")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples per interval (default: 1000)")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - interval coverage (default: 0.05)")
    p.add_argument("--tau", type=float, default=10.0, help="Switch-DR weight threshold (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the policy and of the bootstrap (default: 0)")
    p.add_argument("--output", help="write the estimates as JSON")
    p.set_defaults(func=cmd_ope)
