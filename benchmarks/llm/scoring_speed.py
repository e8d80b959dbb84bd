"""Speed of SmolLM2 scoring on this CPU: the re-ranker's prompts/s (plain batched prompts vs the shared-prefix KV
cache; fp32 vs bf16 autocast; 1 vs 2 torch threads) and ``encode_item_texts``' texts/s (fp32 vs bf16, 1 vs 2
threads). The settings run interleaved (``--repeats`` rounds over all of them), so they share the machine's load.

Prompts: real ml-latest-small titles, each user's last ``--history`` titles and EASE-free candidates (the most popular
items the user has not seen, from MostPopular); the LoRA adapter is untrained (same cost as a trained one).

Run:  nice -n 10 .venv/bin/python benchmarks/llm/scoring_speed.py [--users 4] [--candidates 20]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time

import numpy as np
import torch
from llm_common import git_commit, load_note, machine_note, write_result

# isort: split
from common import load_ml_latest_small  # benchmarks/backbones/common.py

from hf_recsys import AutoModelForRecommendation
from hf_recsys.models.llm import encode_item_texts, smollm2_path
from hf_recsys.models.llm_reranker import LLMReranker

TEMPLATE = "A user watched: {history}.\nWould they enjoy {candidate}? Answer Yes or No.\nAnswer:"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--candidates", type=int, default=20)
    ap.add_argument("--history", type=int, default=5)
    ap.add_argument("--texts", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--name", default="scoring_speed")
    args = ap.parse_args()
    inter, items = (d.to_pandas() for d in load_ml_latest_small())
    first = AutoModelForRecommendation.for_model("most_popular").fit(inter, show_progress=False)
    model = LLMReranker.from_first_stage(
        first, backbone_name_or_path=smollm2_path(), num_candidates=args.candidates, history_length=args.history,
        prompt_template=TEMPLATE, lora_r=8, lora_layers=[26, 27, 28, 29],
    )  # fmt: skip
    model.set_item_texts(items.item_id.to_numpy(), items.title.to_numpy())
    model.update_histories(inter)
    users = np.arange(args.users) * 37
    hist = model.user_history[torch.as_tensor(users)].numpy()
    first_scores = first.score_users(torch.as_tensor(users)).float()
    cand = model._top_candidates(first_scores, model.seen_items[users], args.candidates).numpy()
    n_prompts = cand.size
    texts = list(items.text.to_numpy()[: args.texts])
    out = {"args": vars(args), "load_start": load_note(), "scoring": [], "encoding": []}
    reference = {}
    for rep in range(args.repeats):
        for threads, precision, prefix in itertools.product((1, 2), ("fp32", "bf16"), (False, True)):
            torch.set_num_threads(threads)
            model.config.precision, model.prefix_cache = precision, prefix
            t = time.time()
            scores = model._llm_scores(hist, cand)
            dt = time.time() - t
            ref = reference.setdefault(precision, scores)
            row = {"repeat": rep, "threads": threads, "precision": precision, "prefix_cache": prefix, "s": dt,
                   "prompts_per_s": n_prompts / dt, "max_abs_diff_vs_first": float((scores - ref).abs().max()),
                   "load": load_note()}  # fmt: skip
            out["scoring"].append(row)
            print(row, flush=True)
        for threads, precision in itertools.product((1, 2), ("fp32", "bf16")):
            torch.set_num_threads(threads)
            with tempfile.TemporaryDirectory() as cache:
                t = time.time()
                encode_item_texts(texts, smollm2_path(), num_layers=6, max_length=32, batch_size=64,
                                  cache_dir=cache, precision=precision, show_progress=False)  # fmt: skip
                dt = time.time() - t
            row = {"repeat": rep, "threads": threads, "precision": precision, "s": dt,
                   "texts_per_s": len(texts) / dt, "load": load_note()}  # fmt: skip
            out["encoding"].append(row)
            print(row, flush=True)
    out["machine"], out["commit"], out["load_end"] = machine_note(), git_commit(), load_note()
    write_result(args.name, out, markdown(out, n_prompts))


def markdown(out, n_prompts) -> str:
    a = out["args"]
    lines = [
        "# SmolLM2-135M scoring speed on this CPU (re-ranker prompts, item-text encoding)",
        "",
        f"Re-ranker: {a['users']} users x {a['candidates']} candidates = {n_prompts} prompts (last {a['history']} "
        "titles, about 60-90 tokens each, of which the candidate's part is about 15), `logits_to_keep=1`, no grad. "
        "The plain path runs every prompt whole (left-padded batches of 32); the prefix cache runs each user's "
        "instructions + history once and reuses its KV cache for the user's candidates. Settings interleaved, "
        f"{a['repeats']} round(s). Max |diff| is against the first (plain) row of the same precision.",
        "",
        "| threads | precision | prefix cache | seconds | prompts/s | max abs score diff | load |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in out["scoring"]:
        lines.append(
            f"| {r['threads']} | {r['precision']} | {'yes' if r['prefix_cache'] else 'no'} | {r['s']:.1f} | "
            f"{r['prompts_per_s']:.1f} | {r['max_abs_diff_vs_first']:.2e} | {r['load']} |"
        )
    lines += [
        "",
        f"`encode_item_texts`: {a['texts']} ml-latest-small item texts, first 6 of 30 layers, max 32 tokens, batches "
        "of 64 sorted by length, no grad.",
        "",
        "| threads | precision | seconds | texts/s | load |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in out["encoding"]:
        lines.append(f"| {r['threads']} | {r['precision']} | {r['s']:.1f} | {r['texts_per_s']:.1f} | {r['load']} |")
    lines += [
        "",
        f"Machine: {out['machine']}; {out['load_start']} at the start, {out['load_end']} at the end; commit "
        f"{out['commit']}.",
        "",
        "Command: `nice -n 10 .venv/bin/python benchmarks/llm/scoring_speed.py "
        + " ".join(f"--{k} {v}" for k, v in a.items() if k != "name")
        + "`",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
