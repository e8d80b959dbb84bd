"""Full-ranking evaluation, ranking/rating metrics and paired significance tests.

Example:
    ```python
    >>> from hf_recsys.evaluation import compare, evaluate_model
    >>> result = evaluate_model(model, train, test, ks=(10, 20))  # doctest: +SKIP
    >>> print(result.to_markdown())  # doctest: +SKIP
    ```
"""

from .evaluator import EvaluationResult, evaluate_model
from .metrics import (
    DEFAULT_METRICS,
    RANKING_METRICS,
    RATING_METRICS,
    hits_from_lists,
    ranking_metrics_from_hits,
    ranking_metrics_from_lists,
    rating_errors,
)
from .significance import Comparison, bootstrap_ci, compare, comparison_table, paired_tests

__all__ = [
    "DEFAULT_METRICS",
    "RANKING_METRICS",
    "RATING_METRICS",
    "Comparison",
    "EvaluationResult",
    "bootstrap_ci",
    "compare",
    "comparison_table",
    "evaluate_model",
    "hits_from_lists",
    "paired_tests",
    "ranking_metrics_from_hits",
    "ranking_metrics_from_lists",
    "rating_errors",
]
