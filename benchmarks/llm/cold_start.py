"""Cold start with LLM item text embeddings vs MiniLM's, the protocol of benchmarks/backbones/cold_start.py.

10% of the catalogue's items (seeded) are test-cold and another 10% validation-cold; all their interactions are
removed from training. For each item encoder (MiniLM-L6 mean-pooled, the reference; SmolLM2-135M mean-pooled
hidden states after its first ``--layers`` decoder layers, :func:`hf_recsys.models.llm.encode_item_texts`), two
rankings of the test-cold items: zero-shot (cosine between the user's mean history embedding and each item, no
training) and the frozen-feature text two-tower model (user tower 'id', the backbone benchmark's choice; epochs
chosen on the validation-cold items, retrained on train + validation). Recall@20 / HR@20 among the test-cold items.
Both encoders run in the same process, so their costs compare directly.

Run:  nice -n 10 .venv/bin/python benchmarks/llm/cold_start.py [--layers 6] [--epochs 3]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch
from llm_common import HERE, git_commit, load_note, machine_note, minilm_features, peak_rss_mb, write_result

# isort: split
from cold_start import K, model_scores, recall_among, split, zero_shot_scores  # benchmarks/backbones/cold_start.py
from common import load_ml_latest_small, minilm_path  # benchmarks/backbones/common.py

from hf_recsys import IdVocab
from hf_recsys.models.llm import encode_item_text_layers, encode_item_texts, smollm2_path
from hf_recsys.models.two_tower import TwoTowerConfig, TwoTowerModel


def two_tower(path, feats, vocab, train, ids, texts, epochs, on_epoch_end=None):
    torch.manual_seed(0)
    model = TwoTowerModel(TwoTowerConfig(backbone_name_or_path=path, freeze_backbone=True, user_tower="id"))
    model.fit(
        train, item_vocab=vocab, item_texts=(ids, texts), backbone_features=feats, epochs=epochs, batch_size=512,
        learning_rate=1e-3, show_progress=False, on_epoch_end=on_epoch_end,
    )  # fmt: skip
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=6, help="SmolLM2 decoder layers read (of 30)")
    ap.add_argument(
        "--choose-layers",
        default="",
        help="e.g. '3,6,9,12': read these depths with mean and last pooling in one pass and keep the one with the "
        "best zero-shot Recall@20 on the validation-cold items (overrides --layers and --pooling)",
    )
    ap.add_argument("--max-length", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--name", default="cold_start", help="result file name")
    ap.add_argument("--pooling", default="mean", choices=["mean", "last"])
    ap.add_argument("--zero-shot-only", action="store_true", help="skip the two-tower models (CPU time)")
    ap.add_argument("--max-items", type=int, default=0, help="keep only the N most-interacted items (0: all)")
    ap.add_argument(
        "--minilm-from-results",
        action="store_true",
        help="take MiniLM's rows from benchmarks/backbones/results/cold_start.json (same protocol and seeds, an "
        "earlier run) instead of encoding the catalogue with MiniLM again",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.time()
    inter_ds, items_ds = load_ml_latest_small()
    inter, items = inter_ds.to_pandas(), items_ds.to_pandas()
    if args.max_items:
        keep = inter.item_id.value_counts().index[: args.max_items]
        inter, items = inter[inter.item_id.isin(keep)], items[items.item_id.isin(keep)]
    catalogue = items.item_id.to_numpy()
    vocab = IdVocab.from_values(catalogue, "item")
    order = np.argsort(vocab.encode(catalogue))
    ids, texts = catalogue[order], items.text.to_numpy()[order]
    train, val, test, val_cold, test_cold = split(inter, catalogue)
    val, test = val[val.user_id.isin(train.user_id)], test[test.user_id.isin(train.user_id)]
    final_train = pd.concat([train, val])
    val_users, val_idx = sorted(val.user_id.unique()), np.sort(vocab.encode(val_cold))
    test_users, test_idx = sorted(test.user_id.unique()), np.sort(vocab.encode(test_cold))
    out = {"args": vars(args), "random": K / len(test_idx), "encoders": [], "load_start": load_note()}

    chosen_feats = None
    if args.choose_layers:
        t = time.time()
        layers = [int(x) for x in args.choose_layers.split(",")]
        feats_by = encode_item_text_layers(
            texts, smollm2_path(), layers, max_length=args.max_length, batch_size=64, show_progress=False
        )
        out["choice_encode_s"] = time.time() - t
        out["choice"] = []
        for (n, pool), f in feats_by.items():
            r, h = recall_among(zero_shot_scores(train, val_users, vocab, f), val_users, val, val_idx, vocab)
            out["choice"].append({"layers": n, "pooling": pool, "val_recall@20": r, "val_hr@20": h})
            print(out["choice"][-1], flush=True)
        best = max(out["choice"], key=lambda c: c["val_recall@20"])
        args.layers, args.pooling = best["layers"], best["pooling"]
        chosen_feats = feats_by[args.layers, args.pooling]  # the values encode_item_texts gives (tested)
        print("chosen on validation:", best, f"({out['choice_encode_s']:.0f}s for the pass)", load_note(), flush=True)
        write_result(args.name, out, "")
    encoders = [
        ("MiniLM-L6 (384-d, mean-pooled)", minilm_path(), lambda: minilm_features(ids, texts)),
        (
            f"SmolLM2-135M, first {args.layers} of 30 layers (576-d, {args.pooling}-pooled)",
            smollm2_path(),
            lambda: (
                chosen_feats
                if chosen_feats is not None
                else encode_item_texts(
                    texts,
                    smollm2_path(),
                    pooling=args.pooling,
                    num_layers=args.layers,
                    max_length=args.max_length,
                    batch_size=64,
                )
            ),
        ),
    ]
    if args.minilm_from_results:
        encoders = encoders[1:]
        ref = json.loads((HERE.parent / "backbones" / "results" / "cold_start.json").read_text())
        rows = {r[0].split(":")[0].split(",")[0]: r[1:] for r in ref["rows"]}
        out["encoders"].append({
            "encoder": "MiniLM-L6 (384-d, mean-pooled), from benchmarks/backbones/results/cold_start.json",
            "dim": 384, "encode_s": float("nan"), "zero_shot": rows["Zero-shot MiniLM"],
            "two_tower": rows["Text two-tower"], "epochs": 1, "curve": ref["tuning"], "peak_rss_mb": float("nan"),
        })  # fmt: skip
    for label, path, encode in encoders:
        t = time.time()
        feats = encode()
        encode_s = time.time() - t
        if chosen_feats is not None and path == smollm2_path(show_progress=False):
            encode_s = out["choice_encode_s"]  # the one pass that read every candidate depth
        print(label, f"features {feats.shape} in {encode_s:.0f}s", load_note(), flush=True)
        zs = recall_among(zero_shot_scores(final_train, test_users, vocab, feats), test_users, test, test_idx, vocab)
        if args.zero_shot_only:
            out["encoders"].append({"encoder": label, "dim": int(feats.shape[1]), "encode_s": encode_s,
                                    "zero_shot": zs, "two_tower": (float("nan"), float("nan")), "epochs": "-",
                                    "peak_rss_mb": peak_rss_mb()})  # fmt: skip
            print(out["encoders"][-1], flush=True)
            write_result(args.name, out, "")
            continue
        curve = []
        holder = {}

        def on_epoch_end(epoch, loss, holder=holder, curve=curve, label=label):
            r, h = recall_among(model_scores(holder["m"], val_users), val_users, val, val_idx, vocab)
            curve.append({"epoch": epoch + 1, "loss": loss, "recall@20": r, "hr@20": h})
            print(label, curve[-1], flush=True)

        t = time.time()
        torch.manual_seed(0)
        holder["m"] = TwoTowerModel(TwoTowerConfig(backbone_name_or_path=path, freeze_backbone=True, user_tower="id"))
        holder["m"].fit(
            train, item_vocab=vocab, item_texts=(ids, texts), backbone_features=feats, epochs=args.epochs,
            batch_size=512, learning_rate=1e-3, show_progress=False, on_epoch_end=on_epoch_end,
        )  # fmt: skip
        tune_s = time.time() - t
        best = max(curve, key=lambda c: c["recall@20"])
        t = time.time()
        model = two_tower(path, feats, vocab, final_train, ids, texts, best["epoch"])
        final_s = time.time() - t
        tt = recall_among(model_scores(model, test_users), test_users, test, test_idx, vocab)
        out["encoders"].append({
            "encoder": label, "dim": int(feats.shape[1]), "encode_s": encode_s, "zero_shot": zs, "two_tower": tt,
            "curve": curve, "epochs": best["epoch"], "tune_s": tune_s, "final_s": final_s,
            "peak_rss_mb": peak_rss_mb(),
        })  # fmt: skip
        print(out["encoders"][-1], flush=True)
        write_result(args.name, out, "")
    out["wall_s"] = time.time() - t0
    out["machine"], out["commit"], out["load_end"] = machine_note(), git_commit(), load_note()
    out["n_test_users"], out["n_test_items"], out["n_items"] = len(test_users), len(test_idx), len(catalogue)
    write_result(args.name, out, markdown(out))


def markdown(out) -> str:
    rnd = out["random"]
    lines = [
        "# Cold start: SmolLM2 item text embeddings vs MiniLM (ml-latest-small)",
        "",
        "Protocol of benchmarks/backbones/cold_start.py on "
        + (
            f"the {out['n_items']:,} most-interacted items (`--max-items`; all: 9,742)"
            if out["args"]["max_items"]
            else f"all {out['n_items']:,} items"
        )
        + f": {out['n_test_items']} test-cold items (10%, seed 0) never "
        f"seen in training, ranked among themselves for {out['n_test_users']} users; Recall@20 / HR@20 "
        f"(random: {rnd:.4f}).",
        "",
        f"| item encoder | encode s ({out['n_items']:,} texts) | zero-shot Recall@20 | zero-shot HR@20 | "
        "two-tower Recall@20 | two-tower HR@20 | two-tower epochs (validation) | two-tower train s (tuning run; "
        "final fit) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in out["encoders"]:
        (zr, zh), (tr, th) = e["zero_shot"], e["two_tower"]
        lines.append(
            f"| {e['encoder']} | {e['encode_s']:.0f} | {zr:.4f} | {zh:.4f} | {tr:.4f} | {th:.4f} | {e['epochs']} | "
            f"{e.get('tune_s', float('nan')):.0f}; {e.get('final_s', float('nan')):.0f} |"
        )
    if len(out["encoders"]) == 2:
        a, b = out["encoders"]
        lines += [
            "",
            f"SmolLM2 / MiniLM: zero-shot Recall@20 {b['zero_shot'][0] / max(a['zero_shot'][0], 1e-12):.2f}x, "
            f"two-tower Recall@20 {b['two_tower'][0] / max(a['two_tower'][0], 1e-12):.2f}x (nan: not run). An encode "
            "time of 0 s means the features came from the disk cache of an earlier run.",
        ]
    if out.get("choice"):
        lines += [
            "",
            "SmolLM2's depth and pooling were chosen on the validation-cold items (zero-shot Recall@20), from one "
            f"encoding pass of {out['choice_encode_s']:.0f} s up to the deepest candidate (SmolLM2's encode time "
            "above is that pass's; its features are the chosen depth's from it):",
            "",
            "| layers read | pooling | validation zero-shot Recall@20 | HR@20 |",
            "| --- | --- | --- | --- |",
            *(
                f"| {c['layers']} | {c['pooling']} | {c['val_recall@20']:.4f} | {c['val_hr@20']:.4f} |"
                for c in out["choice"]
            ),
        ]
    lines += [
        "",
        f"Machine: {out['machine']}; {out['load_end']} at the end; commit {out['commit']}; wall time "
        f"{out['wall_s']:.0f} s; process peak RSS {out['encoders'][-1]['peak_rss_mb']:.0f} MB; "
        f"{out['load_start']} at the start.",
        "",
        "Command: `nice -n 10 .venv/bin/python benchmarks/llm/cold_start.py "
        + " ".join(
            f"--{k.replace('_', '-')}" + ("" if isinstance(v, bool) else f" {v}")
            for k, v in out["args"].items()
            if v is not False
        )
        + "`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
