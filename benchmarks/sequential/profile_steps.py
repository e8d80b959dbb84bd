"""Profile a few training steps of a sequential model on ML-1M (SASRec's ml-1m.txt) with torch.profiler.

    nice -n 10 .venv/bin/python benchmarks/sequential/profile_steps.py examples/train/causal_sequential_ml1m.yaml \
        --steps 4 [--model-config '{"precision": "fp32"}'] [--out benchmarks/sequential/results/profile_causal.md]

Prints (and with ``--out`` writes, with the machine, load, date and commit) the top operators by self CPU time and the
seconds per step. The step is the engine's (:class:`~hf_recsys.training.RecTrainer`): its batch, its precision.
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

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import encode_interactions, leave_last_out, load_movielens_1m_sasrec
from hf_recsys.data.views import build_vocabs
from hf_recsys.training.engine import autocast_dtype
from hf_recsys.training.trainer import step_generator

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ml1m import machine  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config", help="an examples/train/*ml1m*.yaml config")
    p.add_argument("--data", default="../shared/data/ml-1m")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model-config", default="{}", help="JSON overrides of the config's model_config")
    p.add_argument("--out", default=None, help="write the profile to this Markdown file")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg = yaml.safe_load(Path(args.config).read_text())
    model_config = dict(cfg["model_config"]) | json.loads(args.model_config)
    log, _ = load_movielens_1m_sasrec(args.data)
    train = leave_last_out(log, n_validation=1)["train"]
    torch.manual_seed(0)
    model = AutoModelForRecommendation.for_model(cfg["model_type"], **model_config)
    model.set_vocabs(*build_vocabs(train))
    examples = model.training_examples(encode_interactions(train, model.user_vocab, model.item_vocab))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    dtype = autocast_dtype(model.config.precision, "cpu")
    model.train()
    order = torch.randperm(len(examples))
    bs = model.config.batch_size

    def step(i: int) -> None:
        batch = examples.collate(order[i * bs : (i + 1) * bs], step_generator(0, 0, i, 0, 0))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()

    step(0)  # warm-up
    from torch.profiler import ProfilerActivity, profile

    load_start = [round(x, 2) for x in os.getloadavg()]
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        for i in range(1, args.steps + 1):
            step(i)
        seconds = (time.perf_counter() - started) / args.steps
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
    load_end = [round(x, 2) for x in os.getloadavg()]
    summary = (
        f"{seconds:.3f} s/step ({bs / seconds:.1f} users/s, under the profiler); config {args.config} with "
        f"{model_config}; autocast {dtype}"
    )
    print(table)
    print(summary)
    if args.out:
        m = machine()
        head = (
            f"# Profile of {args.steps} training steps: {Path(args.config).stem}\n\n{m['date_utc']} UTC, commit "
            f"{m['commit']}, {m['cpu']} ({m['cores']} cores, AVX512-BF16 {m['avx512_bf16']}, AMX {m['amx']}), torch "
            f"{m['torch']}, {args.threads} threads; load {load_start} at start, {load_end} at end.\n\n{summary}\n\n"
        )
        Path(args.out).write_text(head + "```\n" + table + "\n```\n")


if __name__ == "__main__":
    main()
