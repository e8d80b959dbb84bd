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
    run(cfg, dict(cfg["model_config"]) | {"compile": False}, d["splits"]["train"], 1)  # process warm-up, not timed
    for name, extra in (("eager", {"compile": False}), ("compiled", {"compile": True})):
        for steps in (1, args.steps):  # the difference isolates the per-step time from set-up and compilation
            res = run(cfg, dict(cfg["model_config"]) | extra, d["splits"]["train"], steps)
            out[f"{name}_{steps}_steps"] = res
            print(name, steps, res, flush=True)
    # eager: the difference of the two runs is the steps alone; compiled: the second run reuses the first one's
    # compiled graph (the compile cache of the process), so its time over its steps bounds the step time from above
    e1, e_many = out["eager_1_steps"]["seconds_total"], out[f"eager_{args.steps}_steps"]["seconds_total"]
    c1, c_many = out["compiled_1_steps"]["seconds_total"], out[f"compiled_{args.steps}_steps"]["seconds_total"]
    out["eager_seconds_per_step"] = round((e_many - e1) / (args.steps - 1), 2)
    out["compiled_seconds_per_step_at_most"] = round(c_many / args.steps, 2)
    out["compile_seconds_about"] = round(c1 - e1, 1)
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
        f"| variant | first run: 1 step (s, set-up included) | second run: {args.steps} steps (s) | s/step |",
        "| --- | ---: | ---: | ---: |",
        f"| eager | {e1} | {e_many} | {out['eager_seconds_per_step']} (difference of the runs) |",
        f"| compiled | {c1} (compiles) | {c_many} (graph cached) | <= {out['compiled_seconds_per_step_at_most']} |",
        "",
        f"Compile time about {out['compile_seconds_about']} s (first compiled step minus first eager step). Losses "
        f"after {args.steps} steps: eager {out[f'eager_{args.steps}_steps']['losses'][-1]}, compiled "
        f"{out[f'compiled_{args.steps}_steps']['losses'][-1]} (dropout draws differ).",
    ]
    (HERE / "results" / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
