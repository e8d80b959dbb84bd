"""Eager vs ``compile: true`` training of a sequential model on ML-1M: the compile time and the step time after it.

    nice -n 10 .venv/bin/python benchmarks/sequential/compile_time.py examples/train/causal_sequential_ml1m.yaml \
        --users 1024 --steps 6

Each variant trains ``--steps`` optimiser steps with ``fit(max_steps=...)`` (the engine, with the config's precision)
on the first ``--users`` users; a one-step run and a ``--steps`` run of each give the set-up + compile time and the
seconds per step after it. Prints, and writes to ``results/compile_<config>.md``, with machine, load, commit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ml1m import load_data, machine  # noqa: E402


def run(cfg: dict, model_config: dict, train, steps: int) -> dict:
    """Seconds of ``fit(max_steps=steps)`` (set-up included) and the step losses."""
    from hf_recsys import AutoModelForRecommendation

    torch.manual_seed(0)
    model = AutoModelForRecommendation.for_model(cfg["model_type"], **model_config)
    started = time.perf_counter()
    model.fit(train, max_steps=steps, show_progress=False)
    seconds = time.perf_counter() - started
    losses = [round(x, 4) for x in model.last_training_history.step_losses]
    return {"seconds_total": round(seconds, 2), "losses": losses}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config")
    p.add_argument("--data", default=str(HERE.parents[1].parent / "shared" / "data" / "ml-1m"))
    p.add_argument("--users", type=int, default=1024)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load(Path(args.config).read_text())
    d = load_data(args.data, args.users)
    out = {"config": args.config, "machine": machine(), "load_start": [round(x, 2) for x in os.getloadavg()]}
    for name, extra in (("eager", {"compile": False}), ("compiled", {"compile": True})):
        for steps in (1, args.steps):  # the difference isolates the per-step time from set-up and compilation
            res = run(cfg, dict(cfg["model_config"]) | extra, d["splits"]["train"], steps)
            out[f"{name}_{steps}_steps"] = res
            print(name, steps, res, flush=True)
    for name in ("eager", "compiled"):
        one, many = out[f"{name}_1_steps"]["seconds_total"], out[f"{name}_{args.steps}_steps"]["seconds_total"]
        out[f"{name}_seconds_per_step_after_the_first"] = round((many - one) / (args.steps - 1), 2)
    out["load_end"] = [round(x, 2) for x in os.getloadavg()]
    stem = f"compile_{Path(args.config).stem}"
    (HERE / "results" / f"{stem}.json").write_text(json.dumps(out, indent=1, default=str))
    m = out["machine"]
    lines = [
        f"# torch.compile vs eager: {Path(args.config).stem}, first {args.users} users of ML-1M",
        "",
        f"{m['date_utc']} UTC, commit {m['commit']}, {m['cpu']} ({m['cores']} cores), torch {m['torch']}, "
        f"{args.threads} threads; load {out['load_start']} at start, {out['load_end']} at end.",
        "",
        "| variant | 1 step (s, incl. set-up and compile) | "
        f"{args.steps} steps (s) | s/step after the first | loss after {args.steps} steps |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name in ("eager", "compiled"):
        one, many = out[f"{name}_1_steps"], out[f"{name}_{args.steps}_steps"]
        lines.append(
            f"| {name} | {one['seconds_total']} | {many['seconds_total']} | "
            f"{out[f'{name}_seconds_per_step_after_the_first']} | {many['losses'][-1]} |"
        )
    (HERE / "results" / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
