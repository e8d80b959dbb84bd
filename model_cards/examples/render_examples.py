"""Render the example model cards in this folder from real runs on MovieLens ml-latest-small.

Each family listed below is fitted on a leave-last-out split (the latest rating of every user held out), evaluated
by full ranking on the test split with ``hf_recsys.evaluation.evaluate_model``, and its card written as
``<model_type>.md``. Run from the repository root::

    .venv/bin/python model_cards/examples/render_examples.py [model_type ...]

The data folder is found like the tests find it (``$HF_RECSYS_ML_LATEST_SMALL`` or ``../shared/data``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data.loading import load_interactions
from hf_recsys.data.splits import leave_last_out
from hf_recsys.evaluation import evaluate_model
from hf_recsys.hub import build_model_card, record_dataset, record_evaluation
from hf_recsys.registry import UnknownModelTypeError, get_model_spec
from hf_recsys.testing_utils import ml_latest_small_path

OUT = Path(__file__).resolve().parent
#: model_type -> (config options, fit options, Hub repo id used in the card)
FAMILIES = {
    "most_popular": ({}, {}, "hf-recsys/ml-latest-small-most-popular"),
    "ease": ({"l2": 500.0}, {}, "hf-recsys/ml-latest-small-ease"),
    "item_knn": ({"k": 100, "shrink": 10.0}, {}, "hf-recsys/ml-latest-small-item-knn"),
    "causal_sequential": (
        {"max_sequence_length": 50, "hidden_size": 64, "num_heads": 2, "num_layers": 2},
        {"epochs": 10, "seed": 0},
        "hf-recsys/ml-latest-small-causal-sequential",
    ),
}
SPLIT = "leave-last-out: each user's latest rating is the test item (by timestamp)"


def fit_and_evaluate(model_type: str, splits):
    """The model of ``model_type`` fitted on ``splits["train"]``, with its data and evaluation recorded."""
    options, fit_options, _ = FAMILIES[model_type]
    model = AutoModelForRecommendation.for_model(model_type, **options)
    model.fit(splits["train"], show_progress=False, **fit_options)
    record_dataset(
        model,
        splits["train"],
        name="MovieLens ml-latest-small",
        source="https://grouplens.org/datasets/movielens/latest/",
        feedback="explicit ratings (0.5-5 stars) used as implicit interactions",
        split=SPLIT,
    )
    result = evaluate_model(model, splits["train"], splits["test"], ks=(10, 20), show_progress=False)
    record_evaluation(model, result, split="test")
    return model, result


def load_splits(folder: Path):
    """ml-latest-small ratings, leave-last-out (one test item per user)."""
    return leave_last_out(load_interactions(folder / "ratings.csv"), n_test=1)


def render(model_type: str, splits) -> Path:
    start = time.perf_counter()
    model, result = fit_and_evaluate(model_type, splits)
    options, fit_options, repo_id = FAMILIES[model_type]
    card = build_model_card(model, repo_id=repo_id, training=fit_options or None)
    path = OUT / f"{model_type}.md"
    card.save(path)
    print(f"{model_type}: ndcg@10={result['ndcg@10']:.4f} in {time.perf_counter() - start:.1f} s -> {path}")
    return path


def main(model_types: list[str]) -> None:
    folder = ml_latest_small_path()
    if folder is None:
        raise SystemExit("MovieLens ml-latest-small not found: set HF_RECSYS_ML_LATEST_SMALL.")
    splits = load_splits(folder)
    for model_type in model_types or list(FAMILIES):
        try:
            get_model_spec(model_type)
        except UnknownModelTypeError as exc:
            print(f"skipped {model_type}: {exc}")
            continue
        render(model_type, splits)


if __name__ == "__main__":
    main(sys.argv[1:])
