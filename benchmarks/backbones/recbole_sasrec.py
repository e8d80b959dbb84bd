"""RecBole SASRec on exactly our leave-last-out split of ml-latest-small: throughput side by side.

RecBole 1.2.1 needs its own virtual environment (see ../shared/ECOSYSTEM.md):

    python -m venv /tmp/rbvenv && /tmp/rbvenv/bin/pip install torch==2.13.0 && /tmp/rbvenv/bin/pip install recbole \
        pyarrow && /tmp/rbvenv/bin/pip install "numpy==1.26.4" "pandas<3" "pyarrow<20" "scipy==1.11.4"

Then:

    .venv/bin/python benchmarks/backbones/recbole_sasrec.py --export          # writes the split as atomic files
    /tmp/rbvenv/bin/python benchmarks/backbones/recbole_sasrec.py --epochs 1  # trains, evaluates, writes results

Same size as our causal_sequential model: 64-d, 2 layers, 2 heads, at most 50 items, dropout 0.2, full-softmax
(CE) loss, one torch thread. RecBole trains on every prefix of every sequence (one target each); ours trains on
windows of up to 50 items with a target at every position, so both "sequences/s" and "targets/s" are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORK = HERE.parent / "_work" / "recbole"  # git-ignored


def export(max_len: int = 50) -> None:
    """Write the split as RecBole's pre-augmented sequential benchmark files: one row per target with its history
    (train: every prefix of the training sequence; valid: the training history; test: training + validation)."""
    import numpy as np
    import pandas as pd

    from hf_recsys.data import leave_last_out, load_movielens
    from hf_recsys.testing_utils import ml_latest_small_path

    inter, _ = load_movielens(ml_latest_small_path())
    splits = {k: v.to_pandas() for k, v in leave_last_out(inter, n_test=1, n_validation=1).items()}
    order = ["train", "validation", "test"]
    log = pd.concat([splits[k].assign(part=j) for j, k in enumerate(order)], ignore_index=True)
    log = log.sort_values(["user_id", "part", "timestamp"], kind="stable")
    rows = {k: [] for k in order}
    for user, g in log.groupby("user_id", sort=False):
        items, parts = g.item_id.to_numpy(), g.part.to_numpy()
        for t in range(1, len(items)):
            hist = " ".join(map(str, items[max(0, t - max_len) : t]))
            rows[order[parts[t]]].append((user, hist, items[t]))
    folder = WORK / "ml"
    folder.mkdir(parents=True, exist_ok=True)
    for ours, theirs in zip(order, ("train", "valid", "test")):
        df = pd.DataFrame(rows[ours], columns=["user_id:token", "item_id_list:token_seq", "item_id:token"])
        df.to_csv(folder / f"ml.{theirs}.inter", sep="\t", index=False)
        print(theirs, len(df), "rows;", np.mean([len(h.split()) for _, h, _ in rows[ours]]).round(1), "items/history")


def run(epochs: int, batch_size: int) -> None:
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    torch.set_num_threads(1)
    cfg = {
        "data_path": str(WORK), "benchmark_filename": ["train", "valid", "test"], "use_gpu": False, "device": "cpu",
        "USER_ID_FIELD": "user_id", "ITEM_ID_FIELD": "item_id",
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"]}, "MAX_ITEM_LIST_LENGTH": 50,
        "hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2, "hidden_dropout_prob": 0.2,
        "attn_dropout_prob": 0.2, "loss_type": "CE", "train_neg_sample_args": None, "epochs": epochs,
        "train_batch_size": batch_size, "eval_batch_size": 256, "learning_rate": 1e-3,
        "eval_args": {"order": "TO", "mode": "full", "group_by": "user"}, "metrics": ["Hit", "NDCG"], "topk": [10],
        "valid_metric": "NDCG@10", "show_progress": False, "checkpoint_dir": str(WORK / "ckpt"), "seed": 0,
        "reproducibility": True, "log_wandb": False,
    }  # fmt: skip
    config = Config(model="SASRec", dataset="ml", config_dict=cfg)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    model = SASRec(config, train_data.dataset).to("cpu")
    trainer = Trainer(config, model)
    n_train = len(train_data.dataset)
    t = time.time()
    for epoch in range(epochs):
        loss = trainer._train_epoch(train_data, epoch_idx=epoch, show_progress=False)
        print(f"epoch {epoch + 1}: loss {float(loss):.4f}, {time.time() - t:.0f}s", flush=True)
    train_s = time.time() - t
    t = time.time()
    result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    eval_s = time.time() - t
    n_users = len(test_data.dataset.inter_feat) if hasattr(test_data, "dataset") else 610
    out = {
        "epochs": epochs, "train_batch_size": batch_size, "train_s": train_s, "train_examples": n_train,
        "train_targets_per_s": n_train * epochs / train_s, "eval_s": eval_s, "test_users": n_users,
        "inference_users_per_s": n_users / eval_s, "test": {k: float(v) for k, v in dict(result).items()},
        "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }  # fmt: skip
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "recbole_sasrec.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--export", action="store_true")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    export() if args.export else run(args.epochs, args.batch_size)
