"""Quality of every classic model on ml-latest-small, two protocols, full ranking (seen items masked):

- leave-last-out: each user's latest interaction is the test item; HR@10, NDCG@10, MRR@10;
- temporal 80/20 per user: each user's latest 20% are the test items; Recall@20, NDCG@20, Precision@10.

Hyper-parameters come from a small grid, chosen on a validation split carved from the training part only (the same
protocol applied again inside train: its last interaction per user, or its last 20% per user), by NDCG@10 for
leave-last-out and NDCG@20 for temporal; the chosen setting is then refitted on the whole training part and scored
once on test. Writes ``quality.md`` (and ``quality.json``) beside this script.

Run: ``.venv/bin/python benchmarks/classic/quality.py [--models ease,als,...]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
import warnings

from _common import HERE, load_average, load_ratings, machine, markdown_table

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data.splits import leave_last_out, temporal_user_split
from hf_recsys.evaluation import evaluate_model

warnings.filterwarnings("ignore")

GRIDS = {
    "most_popular": {},
    "item_knn": {"k": [50, 200], "shrink": [0.0, 10.0]},
    "user_knn": {"k": [30, 100], "weighting": ["none", "bm25"]},
    "als": {"factors": [64], "regularization": [0.05, 1.0], "alpha": [1.0, 10.0], "iterations": [15]},
    "bprmf": {"factors": [64], "epochs": [30, 60], "regularization": [0.01, 0.001]},
    "biased_mf": {"factors": [64], "regularization": [0.02, 0.05]},
    "neumf": {"factors": [32], "mlp_layers": [[64, 32, 16]], "epochs": [8]},
    "ease": {"l2": [100.0, 500.0, 2000.0]},
}
PROTOCOLS = {
    "leave_last_out": {
        "split": lambda data: leave_last_out(data, n_test=1),
        "ks": (10,),
        "select": "ndcg@10",
        "report": ["hit_rate@10", "ndcg@10", "mrr@10"],
    },
    "temporal_80_20": {
        "split": lambda data: temporal_user_split(data, test_ratio=0.2),
        "ks": (10, 20),
        "select": "ndcg@20",
        "report": ["recall@20", "ndcg@20", "precision@10"],
    },
}


def settings(grid: dict) -> list[dict]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))] or [{}]


def fit_and_score(model_type: str, params: dict, train, test, ks) -> tuple[dict, float]:
    model = AutoModelForRecommendation.for_model(model_type, **params)
    start = time.perf_counter()
    model.fit(train, show_progress=False)
    seconds = time.perf_counter() - start
    result = evaluate_model(model, train, test, ks=ks, show_progress=False)
    return result.summary, seconds


def run(protocol: str, model_type: str, data) -> dict:
    spec = PROTOCOLS[protocol]
    outer = spec["split"](data)
    inner = spec["split"](outer["train"])
    trials = []
    for params in settings(GRIDS[model_type]):
        summary, _ = fit_and_score(model_type, params, inner["train"], inner["test"], spec["ks"])
        trials.append({"params": params, spec["select"]: summary[spec["select"]]})
        print(
            f"  [{protocol}] {model_type} {params}: validation {spec['select']}={summary[spec['select']]:.4f}",
            flush=True,
        )
    best = max(trials, key=lambda t: t[spec["select"]])
    summary, seconds = fit_and_score(model_type, best["params"], outer["train"], outer["test"], spec["ks"])
    return {
        "params": best["params"],
        "test": {m: summary[m] for m in spec["report"]},
        "fit_seconds": seconds,
        "validation": trials,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default=",".join(GRIDS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    args = parser.parse_args()
    data = load_ratings()
    out_json = HERE / "quality.json"
    results = json.loads(out_json.read_text()) if out_json.exists() else {}
    facts = machine()
    facts["load_before"] = load_average()
    for protocol in args.protocols.split(","):
        for model_type in args.models.split(","):
            results.setdefault(protocol, {})[model_type] = run(protocol, model_type, data)
            out_json.write_text(json.dumps(results, indent=1))
    facts["load_after"] = load_average()
    write_markdown(results, facts)


def write_markdown(results: dict, facts: dict) -> None:
    text = [
        "# Classic models: quality on ml-latest-small",
        "",
        f"Run `benchmarks/classic/quality.py` on {facts['date']}; {facts['cpu']}, {facts['cores']} cores shared "
        f"with other jobs (load average {facts['load_before']} before, {facts['load_after']} after).",
        "Full ranking over every item of the training vocabulary (test items unseen in training count as relevant "
        "but can never be hit), training items masked. Hyper-parameters chosen on a validation split "
        "carved from the training part only (same protocol inside train), then refitted on the whole training part.",
        "",
    ]
    for protocol, spec in PROTOCOLS.items():
        if protocol not in results:
            continue
        text += [f"## {protocol}", ""]
        header = ["model"] + spec["report"] + ["chosen hyper-parameters", "fit (s)"]
        rows = []
        for model_type, r in results[protocol].items():
            params = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
            rows.append(
                [model_type] + [f"{r['test'][m]:.4f}" for m in spec["report"]] + [params, f"{r['fit_seconds']:.1f}"]
            )
        text += [markdown_table(header, rows), ""]
    (HERE / "quality.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    main()
