"""Choose BPRMF's partial_fit options on a VALIDATION stream, never on the benchmark's test chunks.

The benchmark (partial_fit.py) replays the last 10 calendar months of ml-latest-small (2017-12 .. 2018-09). Here
the log stops before them: its own last 10 months (2017-02 .. 2017-11) are the validation chunks and everything
earlier the warm-up. One BPRMF (the benchmark's config) is fitted on that warm-up; every option set updates its
own copy chunk by chunk, scored prequentially as in the benchmark (NDCG@10 of the chunk's known users, items
before the chunk masked), and the set with the best user-weighted mean NDCG@10 is the choice. With ``--seeds N``
the whole search runs for the config seeds ``0 .. N-1`` (initialisation, negative sampling and the update's own
sampling) and the choice is the best mean over the seeds (a chunk holds 9-14 evaluable users: one run is noisy).

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/online/tune_bpr_partial_fit.py [--seeds 3]``; writes
``tune_bpr_partial_fit.md`` / ``.json`` beside this script (``--grid '{"epochs": [30, 60]}' --name other``: another
grid, written to ``other.md`` / ``.json``).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "classic"))
sys.path.insert(0, str(HERE))

from _common import load_average, load_ratings, machine  # noqa: E402
from partial_fit import FAMILIES, commit  # noqa: E402

from hf_recsys import AutoModelForRecommendation  # noqa: E402
from hf_recsys.evaluation.streaming import _score_chunk, time_chunks  # noqa: E402

warnings.filterwarnings("ignore")

GRID = {"replay": [0.0, 1.0, 4.0], "epochs": [5, 30], "learning_rate": [0.05, 0.02, 0.01]}


def search(base, warm: pd.DataFrame, chunks: list) -> list[dict]:
    """Every option set of ``GRID`` on its own copy of ``base``, scored prequentially over ``chunks``."""
    rows = []
    for values in itertools.product(*GRID.values()):
        options = dict(zip(GRID, values))
        model, history, scores, seconds = copy.deepcopy(base), [warm], [], 0.0
        for _, _, chunk in chunks:
            past = pd.concat(history, ignore_index=True)
            res = _score_chunk(model, past, chunk, (10,), ("ndcg",), ("ndcg@10",))
            scores.append((res["num_evaluated"], res["ndcg@10"]))
            t = time.perf_counter()
            model.partial_fit(chunk, **options)
            seconds += time.perf_counter() - t
            history.append(chunk)
        users = np.array([u for u, _ in scores], dtype=float)
        ndcg = np.array([0.0 if np.isnan(s) else s for _, s in scores])
        rows.append(options | {"ndcg@10": float((users * ndcg).sum() / users.sum()), "seconds": seconds})
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=1, help="config seeds 0 .. N-1; the choice is the best mean")
    parser.add_argument("--grid", type=json.loads, default=None, help="another grid, e.g. '{\"epochs\": [30, 60]}'")
    parser.add_argument("--name", default="tune_bpr_partial_fit", help="stem of the .md / .json written")
    args = parser.parse_args()
    if args.grid:
        GRID.clear()
        GRID.update(args.grid)
    meta = machine() | {"load_before": load_average(), "commit": commit()}
    log = load_ratings().drop(columns="rating")
    before_test, _ = time_chunks(log, freq="MS", num_chunks=10)
    warm, chunks = time_chunks(before_test, freq="MS", num_chunks=10)
    config = FAMILIES["bprmf"][0]
    per_seed, fit_s = [], 0.0
    for seed in range(args.seeds):
        t = time.perf_counter()
        base = AutoModelForRecommendation.for_model("bprmf", **config, seed=seed).fit(warm, show_progress=False)
        fit_s += time.perf_counter() - t
        per_seed.append(search(base, warm, chunks))
    rows = []
    for runs in zip(*per_seed):  # the same option set under every seed
        vals = np.array([r["ndcg@10"] for r in runs])
        options = {k: runs[0][k] for k in GRID}
        rows.append(
            options
            | {"ndcg@10": float(vals.mean()), "std": float(vals.std()), "per_seed": vals.round(4).tolist()}
            | {"seconds": float(np.mean([r["seconds"] for r in runs]))}
        )
    best = max(rows, key=lambda r: r["ndcg@10"])
    meta |= {"load_after": load_average(), "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    out = {"meta": meta, "config": config, "seeds": args.seeds, "warmup_fit_seconds": fit_s, "rows": rows}
    out["best"] = best
    (HERE / f"{args.name}.json").write_text(json.dumps(out, indent=1, default=str))
    first, last = chunks[0][0][:7], chunks[-1][0][:7]
    lines = [
        "# BPRMF partial_fit options chosen on a validation stream",
        "",
        f"Run {meta['date']} at commit {meta['commit']}; {meta['cpu']}, {meta['cores']} cores shared with other jobs "
        f"(load average {meta['load_before']} before, {meta['load_after']} after); torch {meta['torch']}.",
        "",
        f"Validation chunks: {first} .. {last} ({sum(len(c) for *_, c in chunks):,} interactions), warm-up "
        f"{len(warm):,} interactions before them; the benchmark's test chunks (2017-12 ..) are not read. Config "
        f"{config}; prequential NDCG@10 of the partial_fit copy, user-weighted over the chunks; mean (and standard "
        f"deviation) over the config seeds 0 .. {args.seeds - 1}.",
        "",
        "| " + " | ".join(GRID) + " | ndcg@10 (mean) | std | per seed | 10 updates (s, mean) |",
        "|" + "---|" * (len(GRID) + 4),
    ]
    for r in rows:
        mark = " **(chosen)**" if r is best else ""
        lines.append(
            "| " + " | ".join(str(r[k]) for k in GRID) + f" | {r['ndcg@10']:.4f}{mark} | {r['std']:.4f} | "
            f"{', '.join(f'{v:.4f}' for v in r['per_seed'])} | {r['seconds']:.1f} |"
        )
    (HERE / f"{args.name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
