"""GPT-style sequential recommender vs EASE and popularity on ml-latest-small, leave-last-out, full ranking.

Protocol: each user's last interaction is the test item and the one before it the validation item (users with
fewer than three interactions stay in training). Every model's hyper-parameters are chosen on validation NDCG@10
(the sequential model's epochs too, checked every ``--eval-every`` epochs, early stopping). Classic models are
refitted on train + validation; the sequential model keeps its best-validation weights and reads the validation
item as part of each test-time history (``update_histories``). Each is scored once on test: HR@10 and NDCG@10
over the full catalogue, training items masked (``hf_recsys.evaluation.evaluate_model``). Also measured: training
throughput (sequences/s) and full-ranking inference (users/s) of the sequential model.

Run (the commands behind results/):
  .venv/bin/python benchmarks/backbones/sequential_vs_classic.py --epochs 40 --eval-every 4
  .venv/bin/python benchmarks/backbones/sequential_vs_classic.py --epochs 40 --eval-every 4 --text-fusion add \
      --skip-classic     # the MiniLM text-fused variant (also NDCG@10 on items with few interactions)
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import pandas as pd
import torch
from common import git_commit, load_ml_latest_small, machine_note, minilm_features, write_result

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import leave_last_out
from hf_recsys.evaluation import evaluate_model
from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender

FEW = 10  # "items with few interactions": at most this many training interactions


def evaluate(model, train, test):
    r = evaluate_model(model, train, test, ks=(10,), show_progress=False)
    return {"ndcg@10": r.summary["ndcg@10"], "hr@10": r.summary["hit_rate@10"]}, r


def tune_classic(name, grid, train, val, final_train, test):
    rows = []
    for kw in grid:
        t = time.time()
        model = AutoModelForRecommendation.for_model(name, **kw).fit(train, show_progress=False)
        rows.append({"params": kw, **evaluate(model, train, val)[0], "fit_s": time.time() - t})
        print(name, rows[-1], flush=True)
    best = max(rows, key=lambda r: r["ndcg@10"])
    model = AutoModelForRecommendation.for_model(name, **best["params"]).fit(final_train, show_progress=False)
    return {"model": name, "chosen": best["params"], "validation": rows, "test": evaluate(model, final_train, test)[0]}


def fit_sequential(cfg, train, val, args, text=None):
    """Train on ``train``, evaluating on ``val`` every ``eval_every`` epochs with early stopping (``patience``);
    returns the model restored to its best validation epoch, the curve and the pure training seconds."""
    import copy

    torch.manual_seed(0)
    model = CausalSequentialRecommender(CausalSequentialConfig(**cfg))
    curve, state, t0, eval_s = [], {}, time.time(), [0.0]

    def on_epoch_end(epoch, loss):
        if (epoch + 1) % args.eval_every:
            return False
        t = time.time()
        curve.append({"epoch": epoch + 1, "loss": loss, **evaluate(model, train, val)[0]})
        eval_s[0] += time.time() - t
        print(cfg.get("text_fusion", "none"), curve[-1], f"{time.time() - t0:.0f}s", flush=True)
        if curve[-1]["ndcg@10"] >= max(c["ndcg@10"] for c in curve):
            state["best"] = copy.deepcopy(model.state_dict())
        best_at = max(range(len(curve)), key=lambda j: curve[j]["ndcg@10"])
        return len(curve) - 1 - best_at >= args.patience

    model.fit(
        train,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        show_progress=False,
        on_epoch_end=on_epoch_end,
        item_text_embeddings=text,
    )
    train_s = time.time() - t0 - eval_s[0]
    epochs_run = len(model.last_training_history.epoch_losses)
    model.load_state_dict(state["best"])
    return model, curve, train_s, epochs_run


def few_interaction_ndcg(result, test, train_counts, few=FEW):
    """Mean NDCG@10 over test users whose test item has at most ``few`` training interactions."""
    per_user = pd.Series(result.per_user["ndcg@10"], index=result.users)
    item_of = test.set_index("user_id").item_id
    counts = item_of.map(train_counts).fillna(0)
    users = counts.index[counts <= few]
    return float(per_user.reindex(users).dropna().mean()), int(len(users))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--text-fusion", default="none", choices=["none", "add"])
    ap.add_argument("--skip-classic", action="store_true")
    ap.add_argument("--configs", default='[{"loss": "full"}]', help="JSON list of config overrides to tune over")
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--patience", type=int, default=2, help="validation checks without improvement before stopping")
    ap.add_argument("--name", default=None, help="result file name (default from --text-fusion)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.time()
    inter, items = load_ml_latest_small()
    splits = leave_last_out(inter, n_test=1, n_validation=1)
    train, val, test = (splits[s].to_pandas() for s in ("train", "validation", "test"))
    final_train = pd.concat([train, val], ignore_index=True)
    out = {"commit": git_commit(), "rows": len(inter), "classic": [], "args": vars(args)}

    if not args.skip_classic:
        out["classic"].append(tune_classic("most_popular", [{}], train, val, final_train, test))
        out["classic"].append(
            tune_classic("ease", [{"l2": v} for v in (50.0, 100.0, 250.0, 500.0)], train, val, final_train, test)
        )

    text = None
    base = {"max_sequence_length": 50, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2}
    if args.text_fusion != "none":
        ids = np.asarray(items["item_id"])
        feats = minilm_features(ids, np.asarray(items["text"]))
        text = (ids, feats)
        base |= {"item_text_dim": feats.shape[1], "text_fusion": args.text_fusion}
    tuning, best_model = [], None
    for over in json.loads(args.configs):
        cfg = base | over
        model, curve, secs, epochs_run = fit_sequential(cfg, train, val, args, text)
        best = max(curve, key=lambda c: c["ndcg@10"])
        tuning.append({"config": cfg, "curve": curve, "best": best, "train_s": secs, "epochs_run": epochs_run})
        if best_model is None or best["ndcg@10"] > max(t["best"]["ndcg@10"] for t in tuning[:-1]):
            best_model = model
    chosen = max(tuning, key=lambda t: t["best"]["ndcg@10"])
    # the sequential model is not retrained: it reads the validation item as part of each test-time history
    best_model.update_histories(final_train)
    t = time.time()
    test_metrics, test_result = evaluate(best_model, final_train, test)
    infer_s = time.time() - t
    n_seq = int((train.groupby("user_id").size() >= 2).sum())
    counts = final_train.item_id.value_counts()
    few, n_few = few_interaction_ndcg(test_result, test, counts)
    out["n_train_sequences"] = n_seq
    out["sequential"] = {
        "tuning": tuning,
        "chosen": chosen["config"],
        "epochs": chosen["best"]["epoch"],
        "test": test_metrics,
        "train_s": chosen["train_s"],
        "train_sequences_per_s": n_seq * chosen["epochs_run"] / chosen["train_s"],
        "inference_users_per_s": len(test) / infer_s,
        "few_ndcg@10": few,
        "n_few": n_few,
    }
    out["wall_s"] = time.time() - t_start
    out["machine"] = machine_note()
    name = args.name or "sequential_vs_classic" + ("" if args.text_fusion == "none" else f"_text_{args.text_fusion}")
    write_result(name, out, "")  # the numbers first, so that a rendering problem cannot lose them
    write_result(name, out, markdown(out, n_few))


def markdown(out, n_few):
    s = out["sequential"]
    lines = [
        "# GPT-style sequential model vs classic models on ml-latest-small",
        "",
        f"Machine: {out['machine']}; commit {out['commit']}; total wall time {out['wall_s']:.0f} s.",
        "",
        "Leave-last-out (last item = test, the one before = validation), full ranking over all items, training "
        "items masked. Hyper-parameters chosen on validation NDCG@10; classic models refitted on train + "
        "validation, the sequential model keeps its best-validation weights and reads the validation item in each "
        "test-time history.",
        "",
        "| model | chosen on validation | test HR@10 | test NDCG@10 |",
        "| --- | --- | --- | --- |",
    ]
    for c in out["classic"]:
        lines.append(f"| {c['model']} | {c['chosen']} | {c['test']['hr@10']:.4f} | {c['test']['ndcg@10']:.4f} |")
    fused = s["chosen"].get("text_fusion", "none")
    lines.append(
        f"| causal_sequential (GPT-2 backbone), text fusion {fused!r} | {s['chosen']}, "
        f"{s['epochs']} epochs | "
        f"{s['test']['hr@10']:.4f} | {s['test']['ndcg@10']:.4f} |"
    )
    lines += [
        "",
        f"Sequential model: training {s['train_sequences_per_s']:.1f} sequences/s of up to 50 items "
        f"({s['train_s']:.0f} s for {max(t['epochs_run'] for t in s['tuning'])} epochs of "
        f"{out['n_train_sequences']} sequences, validation time excluded), full-ranking inference "
        f"{s['inference_users_per_s']:.0f} users/s (610 test users, 9,742 items).",
        "",
    ]
    lines += [
        f"Test users whose test item has <= {FEW} training interactions ({n_few} users): NDCG@10 "
        f"{s['few_ndcg@10']:.4f}.",
        "",
    ]
    lines += ["Validation curves (NDCG@10 by epoch):", ""]
    for t in s["tuning"]:
        lines.append(f"- {t['config']}: " + ", ".join(f"{c['epoch']}: {c['ndcg@10']:.4f}" for c in t["curve"]))
    for c in out["classic"]:
        lines.append(f"- {c['model']}: " + ", ".join(f"{r['params']}: {r['ndcg@10']:.4f}" for r in c["validation"]))
    lines += ["", f"Command: `.venv/bin/python benchmarks/backbones/sequential_vs_classic.py {out['args']}`", ""]
    return "\n".join(lines)


def render(name: str) -> None:
    """Re-write ``results/<name>.md`` from ``results/<name>.json``."""
    from common import RESULTS

    out = json.loads((RESULTS / f"{name}.json").read_text())
    (RESULTS / f"{name}.md").write_text(markdown(out, out["sequential"]["n_few"]))


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--render":
        render(sys.argv[2])
    else:
        main()
