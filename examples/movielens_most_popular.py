"""MostPopular on MovieLens ml-latest-small, leave-last-out, full ranking: the README's first real table.

    python examples/movielens_most_popular.py [path/to/ml-latest-small]

The path defaults to $HF_RECSYS_ML_LATEST_SMALL or ../shared/data/ml-latest-small.
"""

from __future__ import annotations

import sys

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import leave_last_out, load_movielens
from hf_recsys.testing_utils import ml_latest_small_path


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else ml_latest_small_path()
    if path is None:
        sys.exit("ml-latest-small not found: pass its folder or set HF_RECSYS_ML_LATEST_SMALL")
    ratings, movies = load_movielens(path)
    splits = leave_last_out(ratings)
    print(f"ml-latest-small: {len(ratings):,} ratings; train {len(splits['train']):,}, test {len(splits['test']):,}")
    model = AutoModelForRecommendation.for_model("most_popular").fit(splits["train"])
    from hf_recsys.evaluation import evaluate_model

    result = evaluate_model(model, splits["train"], splits["test"], ks=(10, 20), show_progress=False)
    print(result.to_markdown())
    titles = dict(zip(movies["item_id"], movies["title"]))
    ids, _ = model.recommend([1], k=5)
    print("user 1:", "; ".join(titles[i] for i in ids[0]))


if __name__ == "__main__":
    main()
