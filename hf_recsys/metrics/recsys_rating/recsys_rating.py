"""Rating-prediction errors (RMSE, MAE) as an ``evaluate`` module, as in ``hf_recsys.evaluation``."""

import datasets
import evaluate

from hf_recsys.evaluation.metrics import rating_errors

_DESCRIPTION = """
Root mean squared error and mean absolute error of predicted ratings against true ratings, pooled over all pairs.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `float`): predicted ratings.
    references (`list` of `float`): true ratings, aligned with predictions.
Returns:
    `dict`: {"rmse": ..., "mae": ...}.
Examples:
    >>> rating = evaluate.load(hf_recsys.metrics.metric_path("recsys_rating"))  # doctest: +SKIP
    >>> rating.compute(predictions=[3.0, 4.0], references=[3.0, 5.0])  # doctest: +SKIP
    {'rmse': 0.7071067811865476, 'mae': 0.5}
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RecsysRating(evaluate.Metric):
    """RMSE and MAE of rating predictions."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("float64"), "references": datasets.Value("float64")}
            ),
        )

    def _compute(self, predictions, references):
        return rating_errors(predictions, references)
