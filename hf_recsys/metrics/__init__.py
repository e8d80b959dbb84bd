"""hf-recsys metrics as Hugging Face ``evaluate`` modules, loadable offline from their folders.

Example:
    ```python
    >>> import evaluate
    >>> from hf_recsys.metrics import metric_path
    >>> ranking = evaluate.load(metric_path("recsys_ranking"))  # doctest: +SKIP
    >>> ranking.compute(predictions=[[3, 1, 2]], references=[[1]], k=2)  # doctest: +SKIP
    ```
"""

from __future__ import annotations

from pathlib import Path

_ROOT = Path(__file__).resolve().parent


def list_metrics() -> list[str]:
    """Names of the metric modules shipped with hf-recsys."""
    return sorted(p.name for p in _ROOT.iterdir() if (p / f"{p.name}.py").is_file())


def metric_path(name: str) -> str:
    """Absolute folder of a metric module, for ``evaluate.load(metric_path(name))``.

    Args:
        name: ``"recsys_ranking"`` (HR, precision, recall, NDCG, MAP, MRR, coverage at K) or ``"recsys_rating"``
            (RMSE, MAE).

    Returns:
        The folder path as a string.
    """
    folder = _ROOT / name
    if not (folder / f"{name}.py").is_file():
        raise ValueError(f"No hf-recsys metric module {name!r}; available: {list_metrics()}.")
    return str(folder)


__all__ = ["list_metrics", "metric_path"]
