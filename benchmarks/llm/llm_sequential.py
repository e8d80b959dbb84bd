"""SmolLM2 + LoRA as the sequence backbone (llm_sequential) vs the GPT-2-from-scratch sequential model and EASE on
ml-latest-small, leave-last-out, full ranking over all 9,742 items.

Protocol (that of benchmarks/backbones/sequential_vs_classic.py, cut down for a 135M-parameter LLM on 2 shared CPU
cores): last item = test, the one before = validation; every model is scored on the same seeded subset of
``--eval-users`` users. EASE: l2 chosen on validation, refitted on train + validation. GPT-2 (2 layers, 64-d, from
scratch): epochs chosen on validation (checked every ``--gpt-eval-every``). llm_sequential: SmolLM2-135M-Instruct,
frozen, LoRA on every attention and MLP projection; item-id embeddings (64-d) projected to 576 and fed as
``inputs_embeds``; histories of at most ``--llm-max-len`` items; ``--llm-epochs`` epochs (validation NDCG@10 after
each, the best kept). With ``--e4srec-init`` (default) its item embeddings start from the trained GPT-2 model's (the
E4SRec recipe: pretrained id embeddings projected into the LLM). Sequential models read the validation item in each
test-time history (``update_histories``), as in the backbone benchmark.

Run:  .venv/bin/python benchmarks/llm/llm_sequential.py [--eval-users 200] [--llm-epochs 1]
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from llm_common import git_commit, load_note, machine_note, peak_rss_mb, split_with_eval_users, write_result

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data.views import build_vocabs
from hf_recsys.evaluation import evaluate_model
from hf_recsys.models.llm import smollm2_path
from hf_recsys.models.llm_sequential import LLMSequentialConfig, LLMSequentialRecommender
from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender


def evaluate(model, train, test):
    r = evaluate_model(model, train, test, ks=(10,), show_progress=False)
    return {"ndcg@10": r.summary["ndcg@10"], "hr@10": r.summary["hit_rate@10"]}


def fit_with_validation(model, train, val, epochs, every, fit_kwargs, label, history_log=None):
    """Fit with validation NDCG@10 every ``every`` epochs; restore the best; return (curve, train seconds).
    ``history_log``: the log whose histories validation reads (default ``train``; a superset when training on a
    subset of the users)."""
    curve, best, t0, eval_s = [], {}, time.time(), [0.0]

    def on_epoch_end(epoch, loss):
        if (epoch + 1) % every:
            return False
        t = time.time()
        if history_log is not None:
            model.update_histories(history_log)
        seen = train if history_log is None else history_log
        curve.append({"epoch": epoch + 1, "loss": loss, **evaluate(model, seen, val), "eval_s": 0.0})
        curve[-1]["eval_s"] = time.time() - t
        eval_s[0] += curve[-1]["eval_s"]
        print(label, curve[-1], f"{time.time() - t0:.0f}s", load_note(), flush=True)
        if curve[-1]["ndcg@10"] >= max(c["ndcg@10"] for c in curve):
            best["state"] = copy.deepcopy(model.state_dict())
        return False

    model.fit(train, epochs=epochs, show_progress=True, on_epoch_end=on_epoch_end, **fit_kwargs)
    train_s = time.time() - t0 - eval_s[0]
    model.load_state_dict(best["state"])
    return curve, train_s


def ease_phase(args, train, val, test, final_train, out, name):
    # EASE, l2 chosen on validation
    t = time.time()
    val_rows = []
    for l2 in args.ease_l2 if len(args.ease_l2) > 1 else []:
        m = AutoModelForRecommendation.for_model("ease", l2=l2).fit(train, show_progress=False)
        val_rows.append({"l2": l2, **evaluate(m, train, val)})
    best = max(val_rows, key=lambda r: r["ndcg@10"]) if val_rows else {"l2": args.ease_l2[0]}
    ease = AutoModelForRecommendation.for_model("ease", l2=best["l2"]).fit(final_train, show_progress=False)
    chosen = f"l2={best['l2']:g}" + ("" if val_rows else " (the backbone benchmark's validation choice)")
    out["rows"].append({"model": "EASE", "chosen": chosen, "validation": val_rows,
                        "test": evaluate(ease, final_train, test), "train_s": time.time() - t})  # fmt: skip
    print(out["rows"][-1], flush=True)
    write_result(name, out, "")


def gpt_phase(args, train, val, test, final_train, out, name, user_vocab, item_vocab):
    # GPT-2 from scratch (the backbone benchmark's best setting: lr 2e-3, batch 32)
    torch.manual_seed(0)
    gpt_cfg = {"max_sequence_length": 50, "hidden_size": 64, "num_layers": 2, "num_heads": 2, "dropout": 0.2}
    gpt = CausalSequentialRecommender(CausalSequentialConfig(**gpt_cfg))
    fit_kw = {"learning_rate": 2e-3, "batch_size": 32, "user_vocab": user_vocab, "item_vocab": item_vocab}
    curve, train_s = fit_with_validation(gpt, train, val, args.gpt_epochs, args.gpt_eval_every, fit_kw, "gpt2")
    gpt.update_histories(final_train)
    trainable, total = gpt.num_parameters_by_trainability()
    best_epoch = max(curve, key=lambda c: c["ndcg@10"])["epoch"]
    out["rows"].append({"model": "causal_sequential (GPT-2 from scratch, 2x64)", "chosen": f"{best_epoch} epochs",
                        "curve": curve, "test": evaluate(gpt, final_train, test), "train_s": train_s,
                        "s_per_epoch": train_s / args.gpt_epochs, "trainable": trainable, "total": total})  # fmt: skip
    print(out["rows"][-1], flush=True)
    write_result(name, out, "")
    return gpt


def llm_phase(args, train, val, test, final_train, out, name, gpt, user_vocab, item_vocab):
    # SmolLM2 + LoRA
    torch.manual_seed(0)
    cfg = LLMSequentialConfig(
        backbone_name_or_path=smollm2_path(), item_embedding_dim=64, max_sequence_length=args.llm_max_len,
        lora_r=args.lora_r, lora_alpha=2 * args.lora_r, precision=args.precision,
        num_users=len(user_vocab), num_items=len(item_vocab),
    )  # fmt: skip
    llm = LLMSequentialRecommender(cfg)
    if gpt is not None:
        with torch.no_grad():
            llm.item_embeddings.weight.copy_(gpt.item_embeddings.weight)
    fit_kw = {"learning_rate": args.llm_lr, "batch_size": args.llm_batch_size,
              "user_vocab": user_vocab, "item_vocab": item_vocab}  # fmt: skip
    llm_train = train
    if args.llm_train_users:
        users = np.random.default_rng(1).choice(np.sort(train.user_id.unique()), args.llm_train_users, replace=False)
        llm_train = train[train.user_id.isin(users)]
    curve, train_s = fit_with_validation(llm, llm_train, val, args.llm_epochs, 1, fit_kw, "llm", history_log=train)
    llm.update_histories(final_train)
    t = time.time()
    test_metrics = evaluate(llm, final_train, test)
    infer_s = time.time() - t
    trainable, total = llm.num_parameters_by_trainability()
    init = "GPT-2's item embeddings (E4SRec)" if gpt is not None else "random item embeddings"
    out["rows"].append({"model": f"llm_sequential (SmolLM2-135M + LoRA r={args.lora_r}, {init})",
                        "chosen": f"{args.llm_epochs} epoch(s), best on validation: "
                                  f"{max(curve, key=lambda c: c['ndcg@10'])['epoch']}",
                        "curve": curve, "test": test_metrics, "train_s": train_s,
                        "s_per_epoch": train_s / args.llm_epochs, "trainable": trainable, "total": total,
                        "test_inference_s": infer_s, "peak_rss_mb": peak_rss_mb()})  # fmt: skip
    print(out["rows"][-1], flush=True)
    write_result(name, out, "")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval-users", type=int, default=200)
    ap.add_argument("--gpt-epochs", type=int, default=40)
    ap.add_argument("--gpt-eval-every", type=int, default=5)
    ap.add_argument("--llm-epochs", type=int, default=1)
    ap.add_argument("--llm-max-len", type=int, default=10)
    ap.add_argument("--llm-batch-size", type=int, default=16)
    ap.add_argument("--llm-lr", type=float, default=1e-3)
    ap.add_argument("--llm-train-users", type=int, default=0, help="train on this many seeded users (0: all)")
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--no-e4srec-init", action="store_true")
    ap.add_argument("--name", default="llm_sequential", help="result file name")
    ap.add_argument("--llm-first", action="store_true", help="run llm_sequential first, random item embeddings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ease-l2", type=float, nargs="+", default=[50.0, 250.0], help="EASE l2 values to tune over")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.time()
    train, val, test, final_train, _ = split_with_eval_users(args.eval_users)
    out = {"args": vars(args), "n_eval_users": int(test.user_id.nunique()), "rows": []}
    name = args.name

    user_vocab, item_vocab = build_vocabs(train)
    gpt = None
    if args.llm_first:  # the LLM row first (random item embeddings), so that a short run still records it
        llm_phase(args, train, val, test, final_train, out, name, None, user_vocab, item_vocab)
    ease_phase(args, train, val, test, final_train, out, name)
    gpt = gpt_phase(args, train, val, test, final_train, out, name, user_vocab, item_vocab)
    if not args.llm_first:
        llm_phase(args, train, val, test, final_train, out, name, None if args.no_e4srec_init else gpt,
                  user_vocab, item_vocab)  # fmt: skip
    out["wall_s"] = time.time() - t_start
    out["load_end"] = load_note()
    out["machine"], out["commit"] = machine_note(), git_commit()
    write_result(name, out, markdown(out))


def markdown(out) -> str:
    a = out["args"]
    lines = [
        "# SmolLM2 + LoRA sequence backbone vs GPT-2 from scratch vs EASE (ml-latest-small)",
        "",
        "Leave-last-out, full ranking over 9,742 items, training items masked; test on the same "
        f"{out['n_eval_users']} seeded users for every model. llm_sequential reads at most {a['llm_max_len']} items "
        f"(GPT-2: 50), trains on {a['llm_train_users'] or 'all'} users for "
        f"{a['llm_epochs']} epoch(s) at lr {a['llm_lr']}, batch {a['llm_batch_size']}, {a['precision']}.",
        "",
        "| model | chosen | test HR@10 | test NDCG@10 | train s | s/epoch | trained / total params |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in out["rows"]:
        params = f"{r['trainable']:,} / {r['total']:,}" if "trainable" in r else "closed form"
        spe = f"{r['s_per_epoch']:.0f}" if "s_per_epoch" in r else "-"
        lines.append(
            f"| {r['model']} | {r['chosen']} | {r['test']['hr@10']:.4f} | {r['test']['ndcg@10']:.4f} | "
            f"{r['train_s']:.0f} | {spe} | {params} |"
        )
    llm = next(r for r in out["rows"] if r["model"].startswith("llm_sequential"))
    lines += [
        "",
        f"llm_sequential: test full-ranking inference {llm['test_inference_s']:.0f} s for {out['n_eval_users']} "
        "users; "
        f"process peak RSS {llm['peak_rss_mb']:.0f} MB (EASE's 9,742^2 matrices included).",
        f"Validation curve of llm_sequential: {[(c['epoch'], round(c['ndcg@10'], 4)) for c in llm['curve']]}.",
        "",
        f"Machine: {out.get('machine', '')}; {out['load_end']} at the end; commit {out.get('commit', '')}; "
        f"wall time {out['wall_s']:.0f} s.",
        "",
        "Command: `nice -n 10 .venv/bin/python benchmarks/llm/llm_sequential.py "
        + " ".join(
            f"--{k.replace('_', '-')}"
            + ("" if isinstance(v, bool) else " " + (" ".join(f"{x:g}" for x in v) if isinstance(v, list) else f"{v}"))
            for k, v in a.items()
            if v is not False and k != "name"
        )
        + "`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
