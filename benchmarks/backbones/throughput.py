"""Throughput of the causal sequential model alone (ids only, same size as the RecBole SASRec run): training
sequences/s and targets/s for a few epochs, and full-ranking users/s through ``score_users`` and ``evaluate_model``.

Run:  .venv/bin/python benchmarks/backbones/throughput.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from common import RESULTS, load_ml_latest_small, machine_note

from hf_recsys.data import leave_last_out
from hf_recsys.evaluation import evaluate_model
from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    inter, _ = load_ml_latest_small()
    splits = leave_last_out(inter, n_test=1, n_validation=1)
    train, test = splits["train"].to_pandas(), splits["test"].to_pandas()
    cfg = CausalSequentialConfig(max_sequence_length=50, hidden_size=64, num_layers=2, num_heads=2, dropout=0.2)
    torch.manual_seed(0)
    model = CausalSequentialRecommender(cfg)
    t = time.time()
    model.fit(train, epochs=args.epochs, batch_size=args.batch_size, learning_rate=2e-3, show_progress=False)
    train_s = time.time() - t
    n = train.groupby("user_id").size().to_numpy()
    targets = int((np.minimum(n, 51) - 1).sum())
    t = time.time()
    idx = torch.arange(model.config.num_users)
    with torch.no_grad():
        for b in idx.split(256):
            model.score_users(b)
    score_s = time.time() - t
    t = time.time()
    evaluate_model(model, train, test, ks=(10,), show_progress=False)
    eval_s = time.time() - t
    out = {
        "epochs": args.epochs, "batch_size": args.batch_size, "train_s": train_s,
        "sequences_per_s": len(n) * args.epochs / train_s, "targets_per_s": targets * args.epochs / train_s,
        "score_users_per_s": model.config.num_users / score_s, "evaluate_users_per_s": len(test) / eval_s,
        "machine": machine_note(),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
