"""Why does causal_sequential learn less per epoch than SASRec+? Controlled runs, one change at a time.

Each variant trains from the same seed on the same ML-1M data (optionally a shorter max length or the first users
only) for a few epochs and reports validation NDCG@10 after each epoch (the protocol of ``ml1m.py``: every item
ranked, the user's training items excluded). ``reference`` is the plain-PyTorch SASRec+ of ``ml1m.py`` (the Dross
paper's code); the other variants are ``causal_sequential`` with the SASRec+ options of
``examples/train/causal_sequential_ml1m.yaml`` plus the listed changes.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/sequential/gap.py --length 50 --epochs 3 \\
        --variants reference,as_is,scaled,scaled_items

Results: ``benchmarks/sequential/results/gap_L<length>_e<epochs>[_u<users>].{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ml1m import _csr, load_average, load_data, machine, ranking_metrics, reference_run  # noqa: E402

#: causal_sequential changes tried, on top of the example config's model_config
VARIANTS = {
    "as_is": {},
    "scaled": {"scale_item_embeddings": True},
    "items": {"positions": "items"},
    "scaled_items": {"scale_item_embeddings": True, "positions": "items"},
    "scaled_items_fp32": {"scale_item_embeddings": True, "positions": "items", "precision": "fp32"},
    "scaled_items_attn_dropout": {"scale_item_embeddings": True, "positions": "items", "attention_dropout": 0.1},
    # on the config of examples/train/causal_sequential_ml1m.yaml as it is now (scaled, item positions, grouped)
    "constant_lr": {"lr_scheduler_type": "constant"},
    "normalized_residual": {"lr_scheduler_type": "constant", "block_residual": "normalized"},
    # SASRec's attention: queries from LN(x), keys and values from the raw stream x
    "sasrec_keys": {"lr_scheduler_type": "constant", "block_residual": "sasrec"},
}


def run_ours(d: dict, overrides: dict, base: dict, epochs: int, length: int, seed: int) -> list[dict]:
    from hf_recsys import AutoModelForRecommendation
    from hf_recsys.data import build_vocabs

    cfg = {**base, "max_sequence_length": length, "epochs": epochs, "seed": seed, **overrides}
    torch.manual_seed(seed)
    model = AutoModelForRecommendation.for_model("causal_sequential", **cfg)
    model.set_vocabs(*build_vocabs(d["log"]))
    cols = model.item_vocab.encode(np.arange(1, d["num_items"] + 1))
    hist = _csr(d["train_seqs"], model, d["num_items"])
    rows, clock = [], {"t": time.perf_counter()}

    def on_epoch_end(epoch: int, loss: float) -> bool:
        seconds = time.perf_counter() - clock["t"]
        scores = model.score_histories(hist).float()[:, cols]
        scores[d["seen"]] = -torch.inf
        hr, ndcg = ranking_metrics(scores, d["val"] - 1)
        rows.append({"seconds": round(seconds, 1), "val_hr@10": round(hr, 4), "val_ndcg@10": round(ndcg, 4)})
        print(overrides, epoch + 1, rows[-1], "load", load_average(), flush=True)
        clock["t"] = time.perf_counter()
        return False

    model.fit(d["splits"]["train"], show_progress=False, on_epoch_end=on_epoch_end)
    return rows


def markdown(info: dict, results: dict, args) -> str:
    """The table of validation NDCG@10 per epoch of every variant."""
    lines = [
        f"# causal_sequential vs SASRec+ per epoch: ML-1M, max length {args.length}, {args.epochs} epochs"
        + (f", first {args.users} users" if args.users else ", all users"),
        "",
        f"Machine: {info['machine']}; {args.threads} thread(s); seed {args.seed}. Seconds are noisy: other jobs "
        "share the 2 cores (load = 1/5/15-min load average at the variant's start and end).",
        "",
        "| variant | changes | "
        + " | ".join(f"val NDCG@10 ep {i + 1}" for i in range(args.epochs))
        + " | s/epoch | load start / end | commit, date |",
        "| --- | --- |" + " --- |" * (args.epochs + 3),
    ]
    for variant, r in results.items():
        ndcg = " | ".join(str(e["val_ndcg@10"]) for e in r["epochs"])
        secs = np.median([e["seconds"] for e in r["epochs"]])
        when = f"{r.get('commit', '?')}, {r.get('date_utc', '?')}"
        lines.append(
            f"| {variant} | {r['changes']} | {ndcg} | {secs:.1f} | {r.get('load_start')} / {r.get('load_end')} "
            f"| {when} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", default=str(HERE.parents[1].parent / "shared" / "data" / "ml-1m"))
    p.add_argument("--config", default=str(HERE.parents[1] / "examples" / "train" / "causal_sequential_ml1m.yaml"))
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--users", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--variants", default="reference,as_is,scaled,items,scaled_items")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    base = dict(yaml.safe_load(Path(args.config).read_text())["model_config"])
    d = load_data(args.data, args.users)
    info = {"machine": machine(), "load_start": load_average(), "base_model_config": base, "args": vars(args)}
    name = f"gap_L{args.length}_e{args.epochs}" + (f"_u{args.users}" if args.users else "")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    earlier = out / f"{name}.json"  # runs of other variants with the same settings are kept (each with its load)
    results = json.loads(earlier.read_text())["results"] if earlier.exists() else {}
    for variant in args.variants.split(","):
        started = {
            "load_start": load_average(),
            "commit": info["machine"]["commit"],
            "date_utc": machine()["date_utc"],
        }
        if variant == "reference":
            rows = reference_run(
                d["train_seqs"],
                d["train_seqs"],
                d["val"],
                d["seen"],
                d["num_items"],
                args.epochs,
                length=args.length,
                seed=args.seed,
            )
        else:
            rows = run_ours(d, VARIANTS[variant], base, args.epochs, args.length, args.seed)
        results[variant] = {"changes": VARIANTS.get(variant, "plain PyTorch SASRec+"), "epochs": rows, **started}
        results[variant]["load_end"] = load_average()
        info.update(results=results, load_end=load_average())
        (out / f"{name}.json").write_text(json.dumps(info, indent=1, default=str))
    (out / f"{name}.md").write_text(markdown(info, results, args))
    print(markdown(info, results, args))


if __name__ == "__main__":
    main()
