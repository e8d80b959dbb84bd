"""Profile a few training steps of the causal sequential model on ML-1M (SASRec's ml-1m.txt) with torch.profiler.

    nice -n 10 .venv/bin/python benchmarks/sequential/profile_steps.py --steps 4 [--model-config '{"dropout": 0.1}']

Prints the top operators by self CPU time, and the seconds per step.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from hf_recsys.data import encode_interactions, leave_last_out, load_movielens_1m_sasrec
from hf_recsys.data.views import build_vocabs
from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender
from hf_recsys.training.trainer import step_generator


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/data/ml-1m")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model-config", default="{}")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    log, _ = load_movielens_1m_sasrec(args.data)
    train = leave_last_out(log, n_validation=1)["train"]
    cfg = dict(hidden_size=64, num_layers=2, num_heads=2, max_sequence_length=200, dropout=0.2, loss="full")
    cfg.update(json.loads(args.model_config))
    model = CausalSequentialRecommender(CausalSequentialConfig(**cfg))
    model.set_vocabs(*build_vocabs(train))
    inter = encode_interactions(train, model.user_vocab, model.item_vocab)
    examples = model.training_examples(inter)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    order = torch.randperm(len(examples))

    def step(i: int) -> None:
        batch = examples.collate(order[i * args.batch_size : (i + 1) * args.batch_size], step_generator(0, 0, i, 0, 0))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    step(0)  # warm-up
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        for i in range(1, args.steps + 1):
            step(i)
        seconds = (time.perf_counter() - started) / args.steps
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    print(f"{seconds:.3f} s/step ({args.batch_size / seconds:.1f} users/s); config {cfg}; precision {args.precision}")


if __name__ == "__main__":
    main()
