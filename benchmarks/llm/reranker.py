"""The SmolLM2 re-ranker (llm_reranker, TALLRec-style yes/no prompts, LoRA) over EASE on ml-latest-small: NDCG@10
of EASE alone vs EASE re-ranked, on the same candidates and the same users.

Protocol: leave-last-out as in benchmarks/backbones (last item = test, the one before = validation). EASE (l2=50,
the value the backbone benchmark chose on validation) is fitted on train + validation. The re-ranker is trained on
``--train-users`` seeded users: the positive prompt names the user's last ``--history`` titles before their
validation item and asks about the validation item; ``--negatives`` negative prompts ask about items drawn from
EASE's top ``--candidates`` for that user. It is then scored on ``--eval-users`` other seeded users: EASE's top
``--candidates`` unseen items are re-ordered by logit(" Yes") - logit(" No"); full-ranking NDCG@10 / HR@10 with
training items masked. The untrained SmolLM2 (zero-shot, same prompt) is a third row with ``--zero-shot``.

Run:  nice -n 10 .venv/bin/python benchmarks/llm/reranker.py [--eval-users 40] [--train-users 150]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from llm_common import git_commit, load_note, machine_note, peak_rss_mb, split_with_eval_users, write_result

from hf_recsys import AutoModelForRecommendation
from hf_recsys.evaluation import evaluate_model
from hf_recsys.evaluation.significance import compare
from hf_recsys.models.llm import smollm2_path
from hf_recsys.models.llm_reranker import LLMReranker

TEMPLATE = "A user watched: {history}.\nWould they enjoy {candidate}? Answer Yes or No.\nAnswer:"


def evaluate(model, train, test, results=None):
    t = time.time()
    r = evaluate_model(model, train, test, ks=(10,), show_progress=False, batch_size=8)
    if results is not None:
        results.append(r)
    return {"ndcg@10": r.summary["ndcg@10"], "hr@10": r.summary["hit_rate@10"], "eval_s": time.time() - t}


def paired(a, b) -> dict:
    """Paired comparison over the same users (re-ranked minus EASE): mean difference, 95% bootstrap interval."""
    out = {}
    for metric in ("ndcg@10", "hit_rate@10"):
        c = compare(b, a, metric, n_boot=2000)
        out[metric] = {"diff": c.mean_diff, "ci": [c.ci_low, c.ci_high], "t_p": c.t_pvalue, "users": c.num_users}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--eval-users", type=int, default=40)
    ap.add_argument("--train-users", type=int, default=150)
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--history", type=int, default=3)
    ap.add_argument("--negatives", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--lora-r", type=int, default=8)
    ap.add_argument("--lora-last-layers", type=int, default=4, help="LoRA on the last N of the 30 layers")
    ap.add_argument("--zero-shot", action="store_true")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is faster on a shared machine)")
    ap.add_argument("--name", default="reranker", help="result file name")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start, load_start = time.time(), load_note()
    train, _, test, final_train, items = split_with_eval_users(args.eval_users)
    eval_users = set(test.user_id)
    out = {"args": vars(args), "n_eval_users": len(eval_users), "rows": []}
    name = args.name

    ease = AutoModelForRecommendation.for_model("ease", l2=50.0).fit(final_train, show_progress=False)
    results = []
    out["rows"].append({"model": "EASE (l2=50) alone", **evaluate(ease, final_train, test, results)})
    print(out["rows"][-1], load_note(), flush=True)
    write_result(name, out, "")

    titles = (items.item_id.to_numpy(), items.title.to_numpy())
    opts = dict(
        backbone_name_or_path=smollm2_path(), num_candidates=args.candidates, history_length=args.history,
        num_negatives=args.negatives, prompt_template=TEMPLATE, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
        lora_layers=list(range(30 - args.lora_last_layers, 30)), max_prompt_length=96,
    )  # fmt: skip
    if args.zero_shot:
        zs = LLMReranker.from_first_stage(ease, **opts)
        zs.set_item_texts(*titles)
        zs.update_histories(final_train)
        out["rows"].append({"model": "EASE top-10 re-ranked by SmolLM2, zero-shot", **evaluate(zs, final_train, test)})
        print(out["rows"][-1], load_note(), flush=True)
        write_result(name, out, "")

    # training users: seeded, disjoint from the evaluation users; their history ends before the validation item
    others = np.sort([u for u in final_train.user_id.unique() if u not in eval_users])
    picked = set(np.random.default_rng(1).choice(others, size=min(args.train_users, len(others)), replace=False))
    train_log = final_train[final_train.user_id.isin(picked)]
    torch.manual_seed(0)
    rr = LLMReranker.from_first_stage(ease, **opts)
    t = time.time()
    rr.fit(train_log, item_texts=titles, epochs=args.epochs, batch_size=8, learning_rate=args.lr, show_progress=True)
    train_s = time.time() - t
    rr.update_histories(final_train)
    trainable, total = rr.num_parameters_by_trainability()
    n_prompts = len(picked) * (1 + args.negatives) * args.epochs
    out["rows"].append({
        "model": f"EASE top-{args.candidates} re-ranked by SmolLM2 + LoRA (r={args.lora_r}, last "
                 f"{args.lora_last_layers} layers), {len(picked)} training users",
        **evaluate(rr, final_train, test, results), "train_s": train_s, "train_prompts": n_prompts,
        "trainable": trainable, "total": total, "losses": rr.last_training_history.epoch_losses,
        "peak_rss_mb": peak_rss_mb(),
    })  # fmt: skip
    print(out["rows"][-1], load_note(), flush=True)
    out["paired"] = paired(results[0], results[-1])
    print(out["paired"], flush=True)
    out["wall_s"] = time.time() - t_start
    out["load_start"] = load_start
    out["machine"], out["commit"], out["load_end"] = machine_note(), git_commit(), load_note()
    write_result(name, out, markdown(out))


def markdown(out) -> str:
    a = out["args"]
    lines = [
        "# LLM re-ranker (SmolLM2-135M + LoRA, yes/no prompts) over EASE on ml-latest-small",
        "",
        f"Leave-last-out, full ranking, training items masked; {out['n_eval_users']} seeded test users; EASE's top "
        f"{a['candidates']} unseen items re-ranked (same candidates for every row), the prompt names the user's last "
        f"{a['history']} titles.",
        "",
        "| ranking | test HR@10 | test NDCG@10 | scoring s | train s | trained / total params |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in out["rows"]:
        params = f"{r['trainable']:,} / {r['total']:,}" if "trainable" in r else "-"
        tr = f"{r['train_s']:.0f} ({r['train_prompts']} prompts)" if "train_s" in r else "-"
        lines.append(f"| {r['model']} | {r['hr@10']:.4f} | {r['ndcg@10']:.4f} | {r['eval_s']:.0f} | {tr} | {params} |")
    last = out["rows"][-1]
    for metric, c in out.get("paired", {}).items():
        lines.append(
            f"\nRe-ranked minus EASE, {metric}, paired over the same {c['users']} users: {c['diff']:+.4f} (95% "
            f"bootstrap interval {c['ci'][0]:+.4f} to {c['ci'][1]:+.4f}; paired t-test p = {c['t_p']:.3f})."
        )
    lines += [
        "",
        f"Scoring cost: {out['n_eval_users'] * a['candidates']} prompts in {last['eval_s']:.0f} s "
        f"({out['n_eval_users'] * a['candidates'] / max(last['eval_s'], 1e-9):.1f} prompts/s); process peak RSS "
        f"{last.get('peak_rss_mb', 0):.0f} MB. Training loss per epoch: {last.get('losses')}.",
        "",
        f"Machine: {out['machine']}; {out.get('load_start')} at the start, {out['load_end']} at the end; commit "
        f"{out['commit']}; wall time {out['wall_s']:.0f} s.",
        "",
        "Command: `nice -n 10 .venv/bin/python benchmarks/llm/reranker.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in a.items() if not isinstance(v, bool) and k != "name")
        + (" --zero-shot" if a["zero_shot"] else "")
        + "`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
