"""Top-K ranking metrics for recommendation (hit rate, precision, recall, NDCG, MAP, MRR, coverage) as an
``evaluate`` module. Same definitions as ``hf_recsys.evaluation`` and ranx (binary relevance)."""

import datasets
import evaluate

from hf_recsys.evaluation.metrics import DEFAULT_METRICS, ranking_metrics_from_lists

_DESCRIPTION = """
Top-K ranking metrics for recommender systems with binary relevance, computed from ranked item lists and the sets
of relevant items: hit_rate@K, precision@K (hits / K), recall@K (hits / R), ndcg@K (gain 1, discount
1/log2(rank+1), ideal DCG over min(R, K) items), map@K (sum of precision at each hit rank within K, divided by R),
mrr@K (1 / rank of the first hit within K) and coverage@K (distinct recommended items / catalogue size, when
num_items is given). Definitions match ranx. Results are means over users.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `list` of int or str): one ranked list of item ids per user, best first.
    references (`list` of `list` of int or str): the relevant item ids of each user.
    k (`int` or `list` of `int`, defaults to 10): cut-off(s).
    metrics (`list` of `str`, *optional*): a subset of hit_rate, precision, recall, ndcg, map, mrr, coverage.
    num_items (`int`, *optional*): catalogue size; enables coverage@K.
Returns:
    `dict`: e.g. {"hit_rate@10": ..., "ndcg@10": ..., ...}, means over users.
Examples:
    >>> ranking = evaluate.load(hf_recsys.metrics.metric_path("recsys_ranking"))  # doctest: +SKIP
    >>> ranking.compute(predictions=[[3, 1, 2]], references=[[1]], k=2, metrics=["hit_rate", "mrr"])  # doctest: +SKIP
    {'hit_rate@2': 1.0, 'mrr@2': 0.5}
"""

_CITATION = """
@article{jarvelin2002cumulated,
  title={Cumulated gain-based evaluation of IR techniques},
  author={J{\\"a}rvelin, Kalervo and Kek{\\"a}l{\\"a}inen, Jaana},
  journal={ACM Transactions on Information Systems}, volume={20}, number={4}, pages={422--446}, year={2002}
}
"""


def _features(dtype):
    return datasets.Features(
        {
            "predictions": datasets.Sequence(datasets.Value(dtype)),
            "references": datasets.Sequence(datasets.Value(dtype)),
        }
    )


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RecsysRanking(evaluate.Metric):
    """Top-K ranking metrics of ranked item lists against relevant item sets."""

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=[_features("string"), _features("int64")],  # strings first: int64 accepts any example
            reference_urls=["https://amenra.github.io/ranx/metrics/"],
        )

    def _compute(self, predictions, references, k=10, metrics=None, num_items=None):
        if metrics is None:
            metrics = DEFAULT_METRICS if num_items else [m for m in DEFAULT_METRICS if m != "coverage"]
        summary, _ = ranking_metrics_from_lists(predictions, references, ks=k, metrics=metrics, num_items=num_items)
        return summary
