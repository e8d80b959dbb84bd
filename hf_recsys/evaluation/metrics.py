"""Top-K ranking and rating metrics, vectorised in torch over a batch of users.

Definitions follow ranx (binary relevance), so numbers agree with ``ranx.evaluate`` to floating-point precision:

- ``hit_rate@K``: 1 if at least one relevant item is in the top K.
- ``precision@K``: relevant items in the top K divided by K (always K, even if fewer than K items were ranked).
- ``recall@K``: relevant items in the top K divided by the user's number of relevant items R.
- ``ndcg@K``: DCG@K / IDCG@K with gain 1 and discount ``1 / log2(rank + 1)``; IDCG@K puts ``min(R, K)`` relevant
  items first (Järvelin & Kekäläinen).
- ``map@K``: average precision at K: the sum of precision@r over the ranks r <= K holding a relevant item, divided
  by R (not by ``min(R, K)``).
- ``mrr@K``: 1 / rank of the first relevant item in the top K, 0 if none.
- ``coverage@K``: fraction of catalogue items that appear in at least one user's top K (a catalogue-level number;
  it has no per-user value).

R counts every relevant item, including test items the model cannot rank (unknown to its vocabulary): they can
never be hit, so recall, NDCG and MAP are honest about them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..data.arrays import unique

RANKING_METRICS = ("hit_rate", "precision", "recall", "ndcg", "map", "mrr")
CATALOGUE_METRICS = ("coverage",)
RATING_METRICS = ("rmse", "mae")
DEFAULT_METRICS = RANKING_METRICS + CATALOGUE_METRICS


def check_metrics(metrics: Sequence[str] | None) -> tuple[str, ...]:
    """Validate metric names (``None`` gives every ranking metric plus coverage)."""
    if metrics is None:
        return DEFAULT_METRICS
    if isinstance(metrics, str):
        metrics = [metrics]
    unknown = [m for m in metrics if m not in DEFAULT_METRICS]
    if unknown:
        raise ValueError(
            f"Unknown ranking metric(s) {unknown}; choose from {list(DEFAULT_METRICS)} "
            "(RMSE/MAE come with rating_metrics=True)."
        )
    return tuple(dict.fromkeys(metrics))


def check_ks(ks: int | Sequence[int]) -> tuple[int, ...]:
    """Validate cut-offs: positive integers, returned sorted and unique."""
    ks = (ks,) if isinstance(ks, (int, np.integer)) else tuple(ks)
    if not ks or any(int(k) != k or k < 1 for k in ks):
        raise ValueError(f"ks must be positive integers, got {ks!r}.")
    return tuple(sorted({int(k) for k in ks}))


def _discounts(k: int, device: torch.device) -> torch.Tensor:
    return 1.0 / torch.log2(torch.arange(2, k + 2, dtype=torch.float64, device=device))


def ranking_metrics_from_hits(
    hits: torch.Tensor, num_relevant: torch.Tensor, ks: Sequence[int], metrics: Sequence[str] = RANKING_METRICS
) -> dict[str, torch.Tensor]:
    """Per-user ranking metrics from a hit matrix.

    Args:
        hits (`torch.BoolTensor` of shape `(batch, L)`): ``hits[u, r]`` is True when the item ranked ``r`` (0-based)
            for user ``u`` is relevant. ``L`` may be smaller than a cut-off K (fewer items ranked): the missing
            ranks count as misses.
        num_relevant (`torch.Tensor` of shape `(batch,)`): R, each user's number of relevant items (>= 1 to be
            meaningful; users with R = 0 get 0 everywhere, as in ranx).
        ks: cut-offs.
        metrics: names among :data:`RANKING_METRICS` (others are ignored).

    Returns:
        ``{"ndcg@10": float64 tensor (batch,), ...}``.

    Example:
        ```python
        >>> hits = torch.tensor([[False, True, False]])
        >>> ranking_metrics_from_hits(hits, torch.tensor([2]), ks=[3], metrics=["mrr", "recall"])
        {'recall@3': tensor([0.5000], dtype=torch.float64), 'mrr@3': tensor([0.5000], dtype=torch.float64)}
        ```
    """
    device = hits.device
    n_rel = num_relevant.to(device=device, dtype=torch.float64)
    safe_rel = n_rel.clamp(min=1.0)
    out: dict[str, torch.Tensor] = {}
    for k in ks:
        h = hits[:, :k].to(torch.float64)
        if h.shape[1] < k:  # fewer ranked items than k: pad with misses
            h = torch.nn.functional.pad(h, (0, k - h.shape[1]))
        for name in RANKING_METRICS:
            if name in metrics:
                out[f"{name}@{k}"] = _metric_at_k(name, h, n_rel, safe_rel, k)
    return out


def _metric_at_k(name: str, h: torch.Tensor, n_rel: torch.Tensor, safe_rel: torch.Tensor, k: int) -> torch.Tensor:
    """One metric from the float hit matrix ``h`` ``(batch, k)``."""
    if name == "hit_rate":
        return (h.sum(1) > 0).to(torch.float64)
    if name == "precision":
        return h.sum(1) / k
    if name == "recall":
        return h.sum(1) / safe_rel
    if name == "ndcg":
        return _ndcg(h, n_rel, k)
    ranks = torch.arange(1, k + 1, dtype=torch.float64, device=h.device)
    if name == "map":
        return (h * h.cumsum(1) / ranks).sum(1) / safe_rel
    return (h / ranks).amax(1)  # mrr: 1 / rank of the first hit


def _ndcg(h: torch.Tensor, n_rel: torch.Tensor, k: int) -> torch.Tensor:
    disc = _discounts(k, h.device)
    dcg = (h * disc).sum(1)
    ideal_len = n_rel.clamp(max=k).long()
    idcg = torch.cat([torch.zeros(1, dtype=torch.float64, device=h.device), disc.cumsum(0)])[ideal_len]
    return dcg / torch.where(idcg > 0, idcg, torch.ones_like(idcg))


def hits_from_lists(
    predictions: Sequence[Sequence[Any]], references: Sequence[Sequence[Any]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hit matrix from ranked lists of ids and sets of relevant ids (any hashable ids, vectorised with numpy).

    Args:
        predictions: one ranked list of item ids per user, best first (lists may differ in length; repeated ids
            after their first occurrence are ignored).
        references: one collection of relevant item ids per user.

    Returns:
        ``(hits, num_relevant, item_codes, valid)``: ``hits`` bool ``(n_users, L)`` with ``L`` the longest list,
        ``num_relevant`` int ``(n_users,)`` (distinct relevant ids), ``item_codes`` int ``(n_users, L)`` giving a
        code per distinct predicted id (-1 for padding) and ``valid`` bool ``(n_users, L)`` marking real entries.
    """
    if len(predictions) != len(references):
        raise ValueError(f"Got {len(predictions)} prediction lists but {len(references)} reference lists.")
    n = len(predictions)
    p_len = np.fromiter((len(p) for p in predictions), dtype=np.int64, count=n)
    r_len = np.fromiter((len(r) for r in references), dtype=np.int64, count=n)
    p_flat = [x for p in predictions for x in p]
    r_flat = [x for r in references for x in r]
    codes = _codes(p_flat + r_flat)
    p_codes, r_codes = codes[: len(p_flat)], codes[len(p_flat) :]
    width = int(p_len.max()) if n else 0
    p_rows = np.repeat(np.arange(n), p_len)
    p_cols = np.arange(len(p_flat)) - np.repeat(np.cumsum(p_len) - p_len, p_len)
    n_codes = int(codes.max()) + 1 if len(codes) else 1
    r_keys = unique(np.repeat(np.arange(n), r_len) * n_codes + r_codes)
    p_keys = p_rows * n_codes + p_codes
    # the first occurrence of an id in a list counts; later repeats are not retrieved again
    first = np.zeros(len(p_keys), dtype=bool)
    first[unique(p_keys, return_index=True)[1]] = True
    item_codes = np.full((n, width), -1, dtype=np.int64)
    item_codes[p_rows, p_cols] = p_codes
    hits = np.zeros((n, width), dtype=bool)
    hits[p_rows, p_cols] = np.isin(p_keys, r_keys) & first
    valid = np.zeros((n, width), dtype=bool)
    valid[p_rows, p_cols] = True
    num_relevant = np.bincount(r_keys // n_codes, minlength=n) if n else np.zeros(0, dtype=np.int64)
    return hits, num_relevant, item_codes, valid


def _codes(values: list) -> np.ndarray:
    """Dense integer codes of hashable ids (ints and strings may be mixed)."""
    if not values:
        return np.zeros(0, dtype=np.int64)
    import pandas as pd

    codes, _ = pd.factorize(pd.Series(values, dtype=object))
    return codes.astype(np.int64)


def ranking_metrics_from_lists(
    predictions: Sequence[Sequence[Any]],
    references: Sequence[Sequence[Any]],
    ks: int | Sequence[int] = (10,),
    metrics: Sequence[str] | None = None,
    num_items: int | None = None,
) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Ranking metrics of ranked lists against relevant sets, in the caller's own ids.

    Args:
        predictions: one ranked list of item ids per user, best first.
        references: one collection of relevant item ids per user.
        ks: cut-offs.
        metrics: metric names (default: all ranking metrics, plus coverage when ``num_items`` is given).
        num_items: catalogue size, needed for ``coverage@K``.

    Returns:
        ``(summary, per_user)``: the means over users, and per-user float64 arrays (coverage is summary only).

    Example:
        ```python
        >>> summary, _ = ranking_metrics_from_lists([["a", "b"]], [["b"]], ks=2, metrics=["hit_rate", "mrr"])
        >>> summary
        {'hit_rate@2': 1.0, 'mrr@2': 0.5}
        ```
    """
    ks = check_ks(ks)
    metrics = check_metrics(metrics if metrics is not None else (None if num_items else RANKING_METRICS))
    if "coverage" in metrics and not num_items:
        raise ValueError("coverage@K needs the catalogue size: pass num_items=.")
    hits, n_rel, codes, valid = hits_from_lists(predictions, references)
    per_user = {
        k: v.numpy()
        for k, v in ranking_metrics_from_hits(torch.from_numpy(hits), torch.from_numpy(n_rel), ks, metrics).items()
    }
    summary = {k: float(v.mean()) if len(v) else float("nan") for k, v in per_user.items()}
    if "coverage" in metrics:
        for k in ks:
            top = codes[:, :k][valid[:, :k]]
            summary[f"coverage@{k}"] = len(unique(top)) / num_items
    return summary, per_user


def rating_errors(predicted: Any, target: Any) -> dict[str, float]:
    """RMSE and MAE of predicted against true ratings (both 1-D, same length)."""
    pred = np.asarray(predicted, dtype=np.float64)
    true = np.asarray(target, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 1:
        raise ValueError(f"predicted and target must be 1-D of the same length, got {pred.shape} and {true.shape}.")
    if len(pred) == 0:
        return {"rmse": float("nan"), "mae": float("nan")}
    err = pred - true
    return {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}


__all__ = [
    "CATALOGUE_METRICS",
    "DEFAULT_METRICS",
    "RANKING_METRICS",
    "RATING_METRICS",
    "check_ks",
    "check_metrics",
    "hits_from_lists",
    "ranking_metrics_from_hits",
    "ranking_metrics_from_lists",
    "rating_errors",
]
