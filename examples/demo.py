"""The hf-recsys demo: synthetic log -> split -> fit -> full-ranking evaluation -> recommendations -> save/load.

Runs offline in seconds on the embedded synthetic data: ``make demo`` (or ``python examples/demo.py``).
Every registered model that fits without gradient training is fitted and compared with MostPopular.
"""

from __future__ import annotations

import tempfile

from transformers.utils import logging as hf_logging

from hf_recsys import AutoModelForRecommendation, list_models
from hf_recsys.data import generate_interactions, leave_last_out
from hf_recsys.evaluation import compare, evaluate_model

hf_logging.disable_progress_bar()  # no "Writing model shards" / "Loading weights" bars for a tiny model

# Models the demo fits when their plugin is installed, with small, sensible settings.
CANDIDATES = {
    "most_popular": {},
    "item_knn": {},
    "ease": {},
    "als": {},
}


def main() -> None:
    log, items = generate_interactions(num_users=2_000, num_items=1_000, num_interactions=60_000, seed=0)
    print(f"synthetic log: {len(log):,} interactions, {len(set(log['user_id'])):,} users, {len(items):,} items")
    splits = leave_last_out(log)
    print(f"leave-last-out split: train {len(splits['train']):,} / test {len(splits['test']):,}\n")

    registered = list_models()
    results = {}
    for model_type, options in CANDIDATES.items():
        if model_type not in registered:
            continue
        model = AutoModelForRecommendation.for_model(model_type, **options).fit(splits["train"], show_progress=False)
        result = evaluate_model(model, splits["train"], splits["test"], ks=(10,), show_progress=False)
        results[model_type] = (model, result)

    print("| model | HR@10 | NDCG@10 | MRR@10 | Recall@10 | coverage@10 |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (_, res) in results.items():
        s = res.summary
        print(
            f"| {name} | {s['hit_rate@10']:.4f} | {s['ndcg@10']:.4f} | {s['mrr@10']:.4f} | {s['recall@10']:.4f} "
            f"| {s['coverage@10']:.4f} |"
        )

    best = max(results, key=lambda n: results[n][1].summary["ndcg@10"])
    if best != "most_popular":
        c = compare(results[best][1], results["most_popular"][1], "ndcg@10")
        print(f"\n{best} vs most_popular on NDCG@10: {c}")

    model = results[best][0]
    users = splits["test"]["user_id"][:3]
    ids, scores = model.recommend(users, k=5)
    titles = dict(zip(items["item_id"], items["title"]))
    print(f"\ntop-5 recommendations from {best}:")
    for user, row, srow in zip(users, ids, scores):
        shown = ", ".join(f"{titles.get(i, i)} ({s:.3f})" for i, s in zip(row, srow))
        print(f"  user {user}: {shown}")

    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        again = AutoModelForRecommendation.from_pretrained(d)
        same = (again.recommend(users, k=5)[0] == ids).all()
        print(f"\nsave_pretrained -> from_pretrained gives identical recommendations: {bool(same)}")


if __name__ == "__main__":
    main()
