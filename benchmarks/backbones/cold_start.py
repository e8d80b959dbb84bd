"""Cold start on ml-latest-small: the text two-tower model ranks items it never saw in training.

Protocol: 10% of the catalogue's items (seeded) are test-cold and another 10% validation-cold; every interaction
with them is removed from training. Hyper-parameters (user tower, epochs) are chosen on the validation-cold items;
the chosen setting is retrained on train + validation interactions and scored on the test-cold items only: for each
user with test-cold interactions, the test-cold items are ranked (only among themselves) and Recall@20 / HR@20 are
averaged over users. Baselines: random ranking (exact expectation), popularity of the cold items measured on the
test interactions themselves (an oracle no real system has), and the untrained MiniLM similarity between a user's
history and each item (zero-shot content kNN). The frozen MiniLM features are computed once and cached.

Run:  .venv/bin/python benchmarks/backbones/cold_start.py [--epochs 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from common import git_commit, load_ml_latest_small, machine_note, minilm_features, minilm_path, write_result

from hf_recsys import IdVocab
from hf_recsys.models.two_tower import TwoTowerConfig, TwoTowerModel

K = 20


def split(inter: pd.DataFrame, catalogue: np.ndarray, seed: int = 0):
    rng = np.random.default_rng(seed)
    perm = rng.permutation(catalogue)
    n = len(catalogue) // 10
    test_cold, val_cold = perm[:n], perm[n : 2 * n]
    is_test, is_val = inter.item_id.isin(test_cold), inter.item_id.isin(val_cold)
    return inter[~is_test & ~is_val], inter[is_val], inter[is_test], val_cold, test_cold


def recall_among(scores: np.ndarray, users: list, truth: pd.DataFrame, cand_idx: np.ndarray, vocab: IdVocab):
    """Mean Recall@K and HR@K of rankings restricted to ``cand_idx`` (scores: users x all items)."""
    sub = scores[:, cand_idx]
    top = cand_idx[np.argsort(-sub, axis=1)[:, :K]]
    rel = truth.groupby("user_id").item_id.apply(lambda s: set(vocab.encode(s.tolist()).tolist()))
    rec, hit = [], []
    for row, u in zip(top, users):
        r = rel[u]
        h = len(r & set(row.tolist()))
        rec.append(h / len(r))
        hit.append(float(h > 0))
    return float(np.mean(rec)), float(np.mean(hit))


def model_scores(model: TwoTowerModel, users: list) -> np.ndarray:
    idx = torch.as_tensor(model.user_vocab.encode(users))
    return torch.cat([model.score_users(b) for b in idx.split(512)]).numpy()


def zero_shot_scores(train: pd.DataFrame, users: list, vocab: IdVocab, feats: np.ndarray) -> np.ndarray:
    f = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    hist = train[train.user_id.isin(users)]
    prof = pd.DataFrame(f[vocab.encode(hist.item_id.tolist())]).groupby(hist.user_id.to_numpy()).mean()
    return prof.loc[users].to_numpy() @ f.T


def build(cfg: dict, vocab, train, ids, texts, feats, epochs, seed=0, on_epoch_end=None):
    torch.manual_seed(seed)
    model = TwoTowerModel(TwoTowerConfig(backbone_name_or_path=minilm_path(), freeze_backbone=True, **cfg))
    model.fit(
        train,
        item_vocab=vocab,
        item_texts=(ids, texts),
        backbone_features=feats,
        epochs=epochs,
        batch_size=512,
        learning_rate=1e-3,
        seed=seed,
        show_progress=False,
        on_epoch_end=on_epoch_end,
    )
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    inter_ds, items_ds = load_ml_latest_small()
    inter, items = inter_ds.to_pandas(), items_ds.to_pandas()
    catalogue = items.item_id.to_numpy()
    vocab = IdVocab.from_values(catalogue, "item")
    order = np.argsort(vocab.encode(catalogue))  # items in vocabulary order
    ids, texts = catalogue[order], items.text.to_numpy()[order]
    feats = minilm_features(ids, texts)
    train, val, test, val_cold, test_cold = split(inter, catalogue)
    val, test = val[val.user_id.isin(train.user_id)], test[test.user_id.isin(train.user_id)]
    print(
        f"train {len(train)} rows; validation-cold {len(val_cold)} items / {len(val)} rows; test-cold "
        f"{len(test_cold)} items / {len(test)} rows; features {time.time() - t0:.0f}s"
    )

    val_users, val_idx = sorted(val.user_id.unique()), np.sort(vocab.encode(val_cold))
    grid = [{"user_tower": "id", "embedding_dim": 64}, {"user_tower": "content", "embedding_dim": 64}]
    tuning = []
    for cfg in grid:
        curve = []
        holder = {}

        def on_epoch_end(epoch, loss, holder=holder, curve=curve, cfg=cfg):
            r, h = recall_among(model_scores(holder["m"], val_users), val_users, val, val_idx, vocab)
            curve.append({"epoch": epoch + 1, "loss": loss, "recall@20": r, "hr@20": h})
            print(cfg, curve[-1], flush=True)

        torch.manual_seed(0)
        holder["m"] = TwoTowerModel(TwoTowerConfig(backbone_name_or_path=minilm_path(), freeze_backbone=True, **cfg))
        t = time.time()
        holder["m"].fit(
            train,
            item_vocab=vocab,
            item_texts=(ids, texts),
            backbone_features=feats,
            epochs=args.epochs,
            batch_size=512,
            learning_rate=1e-3,
            show_progress=False,
            on_epoch_end=on_epoch_end,
        )
        best = max(curve, key=lambda c: c["recall@20"])
        tuning.append({"config": cfg, "curve": curve, "best": best, "train_s": time.time() - t})
    chosen = max(tuning, key=lambda t: t["best"]["recall@20"])

    final_train = pd.concat([train, val])
    t = time.time()
    model = build(chosen["config"], vocab, final_train, ids, texts, feats, chosen["best"]["epoch"])
    final_s = time.time() - t
    test_users, test_idx = sorted(test.user_id.unique()), np.sort(vocab.encode(test_cold))
    tt_recall, tt_hr = recall_among(model_scores(model, test_users), test_users, test, test_idx, vocab)
    zs_recall, zs_hr = recall_among(
        zero_shot_scores(final_train, test_users, vocab, feats), test_users, test, test_idx, vocab
    )
    pop = np.zeros(len(vocab))
    np.add.at(pop, vocab.encode(test.item_id.tolist()), 1.0)
    pop_recall, pop_hr = recall_among(np.tile(pop, (len(test_users), 1)), test_users, test, test_idx, vocab)
    random_recall = K / len(test_idx)
    rows = [
        ("Random ranking (expected)", random_recall, float("nan")),
        ("Popularity of cold items, measured on the test interactions (oracle)", pop_recall, pop_hr),
        ("Zero-shot MiniLM: cosine(user's mean history text, item text), no training", zs_recall, zs_hr),
        (
            f"Text two-tower, frozen MiniLM, user tower '{chosen['config']['user_tower']}' (chosen on validation)",
            tt_recall,
            tt_hr,
        ),
    ]
    md = [
        "# Cold start: text two-tower on ml-latest-small",
        "",
        f"Machine: {machine_note()}; commit {git_commit()}. Total wall time {time.time() - t0:.0f} s.",
        "",
        f"Test-cold items: {len(test_idx)} (10% of the catalogue, seed 0) with all {len(test)} of their "
        f"interactions removed from training; {len(test_users)} test users. Ranking among the test-cold items only.",
        "",
        "| ranking | Recall@20 | HR@20 | x random |",
        "| --- | --- | --- | --- |",
        *[f"| {n} | {r:.4f} | {h:.4f} | {r / random_recall:.1f} |" for n, r, h in rows],
        "",
        f"Two-tower vs oracle popularity: {tt_recall / max(pop_recall, 1e-12):.2f}x.",
        "",
        "Validation (validation-cold items, model trained without them):",
        "",
        "| user tower | best epoch | Recall@20 | train s |",
        "| --- | --- | --- | --- |",
        *[
            f"| {t['config']['user_tower']} | {t['best']['epoch']} | {t['best']['recall@20']:.4f} | "
            f"{t['train_s']:.0f} |"
            for t in tuning
        ],
        "",
        f"Final model retrained on train + validation interactions for the chosen epochs: {final_s:.0f} s.",
        "Command: `.venv/bin/python benchmarks/backbones/cold_start.py`",
        "",
    ]
    write_result("cold_start", {"rows": rows, "tuning": tuning, "random": random_recall}, "\n".join(md))


if __name__ == "__main__":
    main()
