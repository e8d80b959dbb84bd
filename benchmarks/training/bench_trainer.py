"""The Accelerate trainer (`RecTrainer`) against a bare PyTorch loop, and 1 vs 2 CPU processes.

    python benchmarks/training/bench_trainer.py --out benchmarks/training/results_trainer.md

Two measurements, on BPRMF (64 factors, 1,024 pairs per step) and the GPT-2 causal sequential model (64 hidden,
2 layers, 50 items of history, full softmax, 32 users per step), both on ml-latest-small (or a synthetic log of the
same shape when it is absent):

1. **Loop overhead.** The same model, the same training examples and the same collate function (so the same
   negative sampling), AdamW and gradient clipping, one process: a bare loop (collate, forward, backward, clip,
   step) against `RecTrainer.train()` with its defaults (progress bar, loss logging every 10 steps, per-step
   generators, loss weighting). Per-step times are taken between consecutive step ends (a callback for the trainer,
   the same clock for the bare loop); the first steps are dropped as warm-up. Loops alternate within each repeat.
2. **Scaling.** `RecTrainer` under `torchrun --nproc_per_node 1` and `2` (one torch thread per process), the same
   per-process batch, so two processes handle twice the examples per step; plus one process with two threads, the
   other way to use both cores. Reported: optimiser steps/s and training examples/s.

Validation and checkpoints are off in both: they are measured by the evaluation benchmark and are I/O.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

MODELS = {
    "bprmf": {"model_type": "bprmf", "config": {"factors": 64}, "batch": 1024, "steps": 120, "warmup": 10},
    "gpt": {
        "model_type": "causal_sequential",
        "config": {"hidden_size": 64, "num_layers": 2, "num_heads": 2, "max_sequence_length": 50, "loss": "full"},
        "batch": 32,
        "steps": 14,
        "warmup": 3,
    },
}


def load_log():
    from hf_recsys.data import generate_interactions, leave_last_out, load_movielens
    from hf_recsys.testing_utils import ml_latest_small_path

    path = ml_latest_small_path()
    if path is not None:
        ratings, _ = load_movielens(path)
        name = "ml-latest-small"
    else:
        ratings, _ = generate_interactions(num_users=610, num_items=9742, num_interactions=100_836, seed=0)
        name = "synthetic (ml-latest-small shape)"
    return leave_last_out(ratings)["train"], name


def build(model_name: str, train_log):
    import torch

    from hf_recsys import AutoModelForRecommendation
    from hf_recsys.data import build_vocabs, encode_interactions

    spec = MODELS[model_name]
    torch.manual_seed(0)
    model = AutoModelForRecommendation.for_model(spec["model_type"], **spec["config"])
    model.set_vocabs(*build_vocabs(train_log))
    return model, encode_interactions(train_log, model.user_vocab, model.item_vocab)


def bare_loop(model_name: str, train_log, steps: int) -> list[float]:
    """Per-step seconds of collate + forward + backward + clip + AdamW, nothing else."""
    import torch

    model, train = build(model_name, train_log)
    examples = model.training_examples(train)
    batch_size = MODELS[model_name]["batch"]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    order = torch.randperm(len(examples), generator=gen)
    model.train()
    ends = [time.perf_counter()]
    for step in range(steps):
        start = (step * batch_size) % max(len(examples) - batch_size, 1)
        batch = examples.collate(order[start : start + batch_size], gen)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], 1.0)
        opt.step()
        ends.append(time.perf_counter())
    return [b - a for a, b in zip(ends[:-1], ends[1:])]


def trainer_loop(model_name: str, train_log, steps: int, output_dir: str) -> tuple[list[float], int, int]:
    """Per-step seconds of RecTrainer.train() with default logging and progress bar; (times, processes, batch)."""
    from hf_recsys.training import RecTrainer, RecTrainingArguments, TrainerCallback

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_train_begin(self, trainer):
            self.ends.append(time.perf_counter())

        def on_step_end(self, trainer):
            self.ends.append(time.perf_counter())

    model, train = build(model_name, train_log)
    args = RecTrainingArguments(
        output_dir=output_dir,
        max_steps=steps,
        per_device_train_batch_size=MODELS[model_name]["batch"],
        learning_rate=1e-3,
        eval_strategy="no",
        save_strategy="no",
        report_to=[],
    )
    clock = Clock()
    trainer = RecTrainer(model, args, train, callbacks=[clock])
    trainer.train()
    times = [b - a for a, b in zip(clock.ends[:-1], clock.ends[1:])]
    return times, trainer.accelerator.num_processes, MODELS[model_name]["batch"] * trainer.accelerator.num_processes


def overhead(args) -> list[dict]:
    import torch
    from accelerate.state import AcceleratorState, GradientState

    torch.set_num_threads(args.threads)
    train_log, _ = load_log()
    rows = []
    for model_name in args.models:
        spec = MODELS[model_name]
        per = {"bare": [], "trainer": []}
        for repeat in range(args.repeats):
            for loop in ("bare", "trainer") if repeat % 2 == 0 else ("trainer", "bare"):
                load = os.getloadavg()[0]
                if loop == "bare":
                    times = bare_loop(model_name, train_log, spec["steps"])
                else:
                    with tempfile.TemporaryDirectory() as tmp:
                        times, _, _ = trainer_loop(model_name, train_log, spec["steps"], tmp)
                    AcceleratorState._reset_state(reset_partial_state=True)
                    GradientState._reset_state()
                timed = times[spec["warmup"] :]
                per[loop].append({"median": statistics.median(timed), "mean": statistics.fmean(timed), "load": load})
                print(
                    f"{model_name} {loop} repeat {repeat}: median {per[loop][-1]['median'] * 1e3:.2f} ms/step "
                    f"(load {load:.2f})",
                    file=sys.stderr,
                )
        bare = statistics.median(r["median"] for r in per["bare"])
        for loop in ("bare", "trainer"):
            med = statistics.median(r["median"] for r in per[loop])
            rows.append(
                {
                    "model": model_name,
                    "loop": loop,
                    "threads": args.threads,
                    "median_s": med,
                    "best_of_repeats_s": min(r["median"] for r in per[loop]),
                    "overhead": med / bare - 1,
                    "loads": [round(r["load"], 2) for r in per[loop]],
                }
            )
    return rows


def worker(args) -> None:
    """Run under torchrun: time RecTrainer, write rank 0's numbers."""
    import torch

    torch.set_num_threads(args.threads)
    train_log, _ = load_log()
    spec = MODELS[args.models[0]]
    with tempfile.TemporaryDirectory() as tmp:
        times, world, global_batch = trainer_loop(args.models[0], train_log, spec["steps"] * 2, tmp)
    if int(os.environ.get("RANK", "0")) == 0:
        timed = times[spec["warmup"] :]
        step = statistics.median(timed)
        Path(args.worker_out).write_text(
            json.dumps(
                {
                    "processes": world,
                    "threads": args.threads,
                    "median_step_s": step,
                    "steps_per_s": 1 / step,
                    "examples_per_step": global_batch,
                    "examples_per_s": global_batch / step,
                }
            )
        )
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def scaling(args) -> list[dict]:
    rows = []
    for model_name in args.models:
        for procs, threads in ((1, 1), (2, 1), (1, 2)):
            for repeat in range(args.repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    out = Path(tmp) / "w.json"
                    env = dict(os.environ, OMP_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1")
                    load = os.getloadavg()[0]
                    cmd = [
                        sys.executable,
                        "-m",
                        "torch.distributed.run",
                        "--standalone",
                        "--nproc_per_node",
                        str(procs),
                        __file__,
                        "--mode",
                        "worker",
                        "--models",
                        model_name,
                        "--threads",
                        str(threads),
                        "--worker-out",
                        str(out),
                    ]
                    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)
                    if proc.returncode != 0:
                        raise RuntimeError(proc.stderr[-3000:])
                    rec = json.loads(out.read_text())
                rec.update(model=model_name, repeat=repeat, load=round(load, 2))
                print(rec, file=sys.stderr)
                rows.append(rec)
    return rows


def report(over: list[dict], scale: list[dict], started: str, seconds: float, out: str | None) -> str:
    import accelerate
    import torch
    import transformers

    _, data_name = load_log()
    lines = [
        "# RecTrainer: loop overhead against bare PyTorch, and 1 vs 2 CPU processes",
        "",
        f"Generated by `benchmarks/training/bench_trainer.py` in {seconds:.0f} s, started {started}.",
        "",
        f"- machine: {platform.platform()}, `nproc` = {os.cpu_count()}, no GPU; data: {data_name}",
        f"- versions: python {platform.python_version()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, accelerate {accelerate.__version__}",
        "- load averages are the 1-minute value before each run (the machine is shared)",
        "",
        "## Loop overhead (one process)",
        "",
        "| model | loop | torch threads | ms/step (median of repeats) | best repeat ms/step | overhead vs bare "
        "| loads |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in over:
        extra = "-" if r["loop"] == "bare" else f"{r['overhead']:+.1%}"
        lines.append(
            f"| {r['model']} | {r['loop']} | {r['threads']} | {r['median_s'] * 1e3:.2f} | "
            f"{r['best_of_repeats_s'] * 1e3:.2f} | {extra} | {r['loads']} |"
        )
    lines += [
        "",
        "## Scaling: RecTrainer under torchrun",
        "",
        "| model | processes x threads | examples per step | steps/s (median over repeats) | examples/s | loads |",
        "|---|---|---:|---:|---:|---|",
    ]
    groups: dict = {}
    for r in scale:
        groups.setdefault((r["model"], r["processes"], r["threads"]), []).append(r)
    for (model, procs, threads), rs in groups.items():
        sps = statistics.median(r["steps_per_s"] for r in rs)
        eps = statistics.median(r["examples_per_s"] for r in rs)
        lines.append(
            f"| {model} | {procs} x {threads} | {rs[0]['examples_per_step']} | {sps:.2f} | {eps:,.0f} | "
            f"{[r['load'] for r in rs]} |"
        )
    text = "\n".join(lines) + "\n"
    if out:
        Path(out).write_text(text)
        Path(out).with_suffix(".json").write_text(json.dumps({"overhead": over, "scaling": scale}, indent=1))
    return text


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("all", "overhead", "scaling", "worker"), default="all")
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (overhead mode and workers)")
    p.add_argument("--worker-out")
    p.add_argument("--out", help="write the markdown table here (and the raw numbers beside it as .json)")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.mode == "worker":
        worker(args)
        return
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.time()
    over = overhead(args) if args.mode in ("all", "overhead") else []
    scale = scaling(args) if args.mode in ("all", "scaling") else []
    print(report(over, scale, started, time.time() - t0, args.out))


if __name__ == "__main__":
    main()
