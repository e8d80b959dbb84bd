"""Full-ranking evaluation of any :class:`~hf_recsys.RecPreTrainedModel`: score every item for every test user in
batches, mask the items each user saw in training, take the top K and compute the metrics in torch per batch."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
import torch

from ..data.arrays import unique
from ..data.views import Interactions, _column, encode_interactions
from .metrics import check_ks, check_metrics, ranking_metrics_from_hits, rating_errors

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- the result
@dataclass
class EvaluationResult:
    """Metrics of one model on one test set.

    Args:
        summary: ``{"ndcg@10": 0.123, ..., "coverage@10": 0.4, "rmse": 0.9}``: means over the evaluated users
            (coverage is catalogue-level; RMSE/MAE are pooled over every rated test pair). Sampled runs carry a
            ``_sampled<N>`` suffix on every key.
        per_user: the same keys (coverage excepted) mapped to float64 arrays aligned with ``users``; per-user
            RMSE/MAE are NaN for users without a rated, known test item.
        users: the evaluated user ids (the caller's ids), in the model's index order.
        protocol: how the numbers were produced, e.g. ``"full-ranking over all 9724 items, seen items masked"``.
        num_users: number of evaluated users.
        skipped_users: test user ids unknown to the model, not evaluated.
        ks: the cut-offs.
        num_items: catalogue size (the model's item vocabulary).
        sampled_negatives: ``None`` for full ranking, else the number of sampled negatives per user.
        rating_stats: per-user ``n``, ``sse``, ``sae`` of rated pairs (for pooled RMSE/MAE intervals).
        metadata: free-form facts (model type, counts of unknown or masked test items, ...).
        topk_items: with ``evaluate_model(..., keep_topk=True)``, each user's ranked top ``max(ks)`` item ids (the
            caller's ids), aligned with ``users``; an object array with ``None`` where fewer items were rankable.
    """

    summary: dict[str, float]
    per_user: dict[str, np.ndarray] = field(repr=False)
    users: np.ndarray = field(repr=False)
    protocol: str
    num_users: int
    skipped_users: np.ndarray
    ks: tuple[int, ...] = (10,)
    num_items: int = 0
    sampled_negatives: int | None = None
    rating_stats: dict[str, np.ndarray] | None = field(default=None, repr=False)
    metadata: dict[str, Any] = field(default_factory=dict)
    topk_items: np.ndarray | None = field(default=None, repr=False)

    @property
    def num_skipped(self) -> int:
        return len(self.skipped_users)

    @property
    def is_sampled(self) -> bool:
        return self.sampled_negatives is not None

    def __getitem__(self, metric: str) -> float:
        return self.summary[metric]

    def confidence_interval(
        self, metric: str, level: float = 0.95, n_boot: int = 1000, seed: int = 0
    ) -> tuple[float, float]:
        """Percentile bootstrap confidence interval of a summary metric, resampling users.

        Args:
            metric: a key of ``per_user`` (e.g. ``"ndcg@10"``, ``"rmse"``).
            level: confidence level.
            n_boot: bootstrap resamples.
            seed: random seed.

        Returns:
            ``(low, high)``.

        Example:
            ```python
            >>> low, high = result.confidence_interval("ndcg@10")  # doctest: +SKIP
            ```
        """
        from .significance import bootstrap_ci, pooled_rating_ci

        base = metric.split("_sampled")[0]
        if base in ("rmse", "mae") and self.rating_stats is not None:
            return pooled_rating_ci(self.rating_stats, base, level=level, n_boot=n_boot, seed=seed)
        if metric not in self.per_user:
            hint = " Coverage is catalogue-level and has no per-user values." if metric.startswith("coverage") else ""
            raise KeyError(f"No per-user values for {metric!r}; available: {sorted(self.per_user)}.{hint}")
        values = self.per_user[metric]
        return bootstrap_ci(values[~np.isnan(values)], level=level, n_boot=n_boot, seed=seed)

    def to_dict(self, per_user: bool = False) -> dict[str, Any]:
        """A JSON-serialisable dict: summary, protocol, counts (and per-user values with ``per_user=True``)."""
        out = {
            "summary": {k: float(v) for k, v in self.summary.items()},
            "protocol": self.protocol,
            "num_users": int(self.num_users),
            "num_skipped_users": self.num_skipped,
            "num_items": int(self.num_items),
            "ks": list(self.ks),
            "sampled_negatives": self.sampled_negatives,
            "metadata": json.loads(json.dumps(self.metadata, default=_json_default)),
        }
        if per_user:
            out["users"] = [_json_default(u) for u in self.users]
            out["per_user"] = {k: [None if np.isnan(x) else float(x) for x in v] for k, v in self.per_user.items()}
        return out

    def to_markdown(self, confidence: bool = False, level: float = 0.95, digits: int = 4) -> str:
        """The summary as a Markdown table, headed by the protocol; ``confidence=True`` adds bootstrap intervals."""
        head = "| metric | value |" + (f" {int(level * 100)}% CI |" if confidence else "")
        lines = [
            f"**Protocol:** {self.protocol}. {self.num_users} users evaluated, "
            f"{self.num_skipped} skipped (unknown to the model).",
            "",
            head,
            "| --- | ---: |" + (" --- |" if confidence else ""),
        ]
        for name, value in self.summary.items():
            row = f"| {name} | {value:.{digits}f} |"
            if confidence:
                try:
                    low, high = self.confidence_interval(name, level=level)
                    row += f" [{low:.{digits}f}, {high:.{digits}f}] |"
                except KeyError:
                    row += " |"
            lines.append(row)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x if isinstance(x, (int, float, str, bool)) or x is None else str(x)


# ---------------------------------------------------------------------------------------------- test targets
@dataclass
class _Targets:
    """The test set in the model's index space, one row per evaluated user."""

    users: np.ndarray  # (n,) model user indices, sorted
    num_relevant: np.ndarray  # (n,) distinct relevant items, unknown items included
    relevant: sp.csr_matrix  # (n, num_items) known relevant items
    skipped_ids: np.ndarray  # test user ids unknown to the model
    num_unknown_pairs: int  # distinct (user, item) test pairs whose item the model does not know
    rated: tuple[np.ndarray, np.ndarray, np.ndarray] | None  # (row, item_idx, rating) of rated known pairs


def _encode_test(model: Any, test: Any) -> _Targets:
    num_items = len(model.item_vocab)
    ratings = None
    if isinstance(test, Interactions):
        _check_sizes(model, test, "test")
        if (test.user_idx < 0).any():
            raise ValueError(
                "The test Interactions hold unknown users (user_idx -1): pass the raw test log instead, so that "
                "skipped users are recorded by id."
            )
        u, codes, skipped = test.user_idx.astype(np.int64), test.item_idx.astype(np.int64).copy(), np.array([])
        unknown = codes < 0
        codes[unknown] = num_items + np.arange(unknown.sum())  # each unknown row stands for a distinct item
        ratings = test.rating
    else:
        users_col, items_col = _column(test, "user_id"), _column(test, "item_id")
        if users_col is None or items_col is None:
            raise ValueError("The test log needs the columns 'user_id' and 'item_id' (see load_interactions).")
        u = model.user_vocab.encode(users_col, unknown="mask")
        codes = model.item_vocab.encode(items_col, unknown="mask")
        unknown = codes < 0
        if unknown.any():
            unk_items = pc.filter(items_col, pa.array(unknown))
            codes[unknown] = num_items + pc.index_in(unk_items, value_set=pc.unique(unk_items)).to_numpy()
        skipped = pc.unique(pc.filter(users_col, pa.array(u < 0))).to_numpy(zero_copy_only=False)
        rating_col = _column(test, "rating")
        if rating_col is not None:
            ratings = rating_col.to_numpy(zero_copy_only=False).astype(np.float64)
    known_user = u >= 0
    width = int(codes.max()) + 1 if len(codes) else 1
    pairs = unique(u[known_user] * width + codes[known_user])
    pair_user, pair_code = pairs // width, pairs % width
    users, row = unique(pair_user, return_inverse=True)
    known = pair_code < num_items
    relevant = sp.csr_matrix(
        (np.ones(known.sum(), np.float32), (row[known], pair_code[known])), shape=(len(users), num_items)
    )
    if ratings is not None:
        sel = known_user & (codes < num_items) & np.isfinite(ratings)
        ratings = (np.searchsorted(users, u[sel]), codes[sel], ratings[sel])
    return _Targets(users, np.bincount(row, minlength=len(users)), relevant, skipped, int((~known).sum()), ratings)


def _check_sizes(model: Any, inter: Interactions, what: str) -> None:
    if inter.num_items != len(model.item_vocab) or inter.num_users != len(model.user_vocab):
        raise ValueError(
            f"The {what} Interactions were encoded with vocabularies of {inter.num_users} users / {inter.num_items} "
            f"items, but the model has {len(model.user_vocab)} / {len(model.item_vocab)}: encode them with the "
            "model's vocabularies (encode_interactions(data, model.user_vocab, model.item_vocab)) or pass the raw log."
        )


def _seen_matrix(model: Any, train: Any) -> sp.csr_matrix | None:
    if train is None:
        if model.seen_items is None:
            logger.warning("train=None and the model stores no training items: nothing is masked.")
        return model.seen_items
    if isinstance(train, Interactions):
        _check_sizes(model, train, "train")
        return train.to_csr("binary")
    inter = encode_interactions(train, model.user_vocab, model.item_vocab, unknown_users="drop", unknown_items="drop")
    return inter.to_csr("binary")


# ---------------------------------------------------------------------------------------------- the batch loop
@contextmanager
def serial_small_ops(device: torch.device):
    """Run per-batch bookkeeping on tensors of ``(batch, K)`` or a few thousand entries on one CPU thread.

    Waking torch's CPU thread pool for such tiny tensors costs more than the work; on a machine shared with other
    jobs it cost 10-30 ms per operation (measured on 2 busy cores), more than the scoring itself. The score matmul
    and the top-K over the full catalogue still run on every thread. No effect on GPUs.
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _Ranker:
    """Scores, masks, restricts (sampled mode) and ranks one batch of users; returns hits and item indices."""

    def __init__(self, model, targets, seen, k, sampled_negatives, seed):
        self.model, self.targets, self.seen, self.k = model, targets, seen, k
        self.device = model.device
        self.num_items = len(model.item_vocab)
        rel = targets.relevant
        rows = np.repeat(np.arange(rel.shape[0]), np.diff(rel.indptr))
        self.rel_keys = torch.as_tensor(rows * self.num_items + rel.indices, dtype=torch.long, device=self.device)
        self.sampled = sampled_negatives
        self.gen = None
        if sampled_negatives is not None:
            self.gen = torch.Generator(device=self.device).manual_seed(seed)

    def _pairs(self, m: sp.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        return torch.as_tensor(rows, device=self.device), torch.as_tensor(
            m.indices, dtype=torch.long, device=self.device
        )

    def rank(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(hits, top_i, valid)``, each ``(batch, K)``, for the users in rows ``start:stop`` of the targets."""
        user_idx = self.targets.users[start:stop]
        scores = self.model.score_users(torch.as_tensor(user_idx, dtype=torch.long, device=self.device)).float()
        seen = None
        with serial_small_ops(self.device):
            if self.seen is not None:
                seen = self._pairs(self.seen[user_idx])
                scores.index_put_(seen, torch.tensor(-torch.inf, device=self.device))
        if self.sampled is not None:
            scores = self._restrict_to_sample(scores, seen, self._pairs(self.targets.relevant[start:stop]))
        top_s, top_i = torch.topk(scores, min(self.k, self.num_items), dim=1)
        with serial_small_ops(self.device):
            valid = ~(torch.isneginf(top_s) | torch.isnan(top_s))
            query = (torch.arange(start, stop, device=self.device)[:, None] * self.num_items + top_i).flatten()
            pos = torch.searchsorted(self.rel_keys, query).clamp(max=max(len(self.rel_keys) - 1, 0))
            hits = (self.rel_keys[pos] == query).view_as(top_i) if len(self.rel_keys) else torch.zeros_like(valid)
            return hits & valid, top_i, valid

    def _restrict_to_sample(self, scores, seen, relevant) -> torch.Tensor:
        """Keep each user's relevant items plus ``sampled`` random items neither seen nor relevant."""
        noise = torch.rand(scores.shape, generator=self.gen, device=self.device)
        if seen is not None:
            noise.index_put_(seen, torch.tensor(-1.0, device=self.device))
        noise.index_put_(relevant, torch.tensor(-1.0, device=self.device))
        neg_s, neg_i = torch.topk(noise, min(self.sampled, self.num_items), dim=1)
        keep = torch.zeros_like(scores, dtype=torch.bool)
        keep.scatter_(1, neg_i, neg_s >= 0)
        keep.index_put_(relevant, torch.tensor(True, device=self.device))
        return scores.masked_fill(~keep, -torch.inf)


def _protocol(num_items: int, masked: str | None, sampled: int | None) -> str:
    mask = f"{masked} masked" if masked else "seen items not masked"
    if sampled is not None:
        return (
            f"SAMPLED ranking: each user's test items among {sampled} random unseen negatives ({mask}); "
            "not comparable to full-ranking numbers"
        )
    return f"full-ranking over all {num_items} items, {mask}"


# ---------------------------------------------------------------------------------------------- the entry point
@torch.no_grad()
def evaluate_model(
    model: Any,
    train: Any,
    test: Any,
    ks: int | Sequence[int] = (10,),
    metrics: Sequence[str] | None = None,
    batch_size: int = 1024,
    exclude_seen: bool = True,
    rating_metrics: bool = False,
    sampled_negatives: int | None = None,
    seed: int = 0,
    show_progress: bool = True,
    keep_topk: bool = False,
) -> EvaluationResult:
    """Evaluate a fitted model by full ranking: every item is scored for every test user.

    Items a user interacted with in ``train`` are masked (they can never be recommended). Test users unknown to the
    model are skipped, counted in the log and recorded in ``result.skipped_users``. Test items unknown to the
    model stay relevant but can never be hit, so they count in the recall, NDCG and MAP denominators. A test item
    that the same user also has in ``train`` is masked like any seen item (counted in ``metadata``).

    Args:
        model: a fitted :class:`~hf_recsys.RecPreTrainedModel` (with ``user_vocab``, ``item_vocab``, ``score_users``).
        train: the training log (``datasets.Dataset`` / DataFrame with canonical columns, or :class:`Interactions`
            encoded with the model's vocabularies) whose items are masked; ``None`` masks the model's stored
            ``seen_items`` instead.
        test: the test log, same forms; every (user, item) row is a relevant item (binary relevance).
        ks: cut-off(s) K.
        metrics: among ``hit_rate, precision, recall, ndcg, map, mrr, coverage`` (default: all).
        batch_size: users scored at once.
        exclude_seen: mask training items (the standard protocol).
        rating_metrics: also compute RMSE/MAE of ``model.score_pairs_idx`` on the rated test pairs.
        sampled_negatives: if set, rank each user's test items among this many random unseen items instead of the
            whole catalogue (SAMPLED protocol, optimistic and not comparable with full ranking; every output says
            so). Never the default.
        seed: seed of the negative sampling.
        show_progress: show a progress bar.
        keep_topk: keep every user's ranked top ``max(ks)`` items in ``result.topk_items``.

    Returns:
        An :class:`EvaluationResult`.

    Example:
        ```python
        >>> from hf_recsys import MostPopularConfig, MostPopularModel
        >>> from hf_recsys.evaluation import evaluate_model
        >>> model = MostPopularModel(MostPopularConfig()).fit(train_df)  # doctest: +SKIP
        >>> result = evaluate_model(model, train_df, test_df, ks=(10, 20))  # doctest: +SKIP
        >>> print(result.to_markdown())  # doctest: +SKIP
        ```
    """
    model._require_vocab()
    ks, metrics = check_ks(ks), check_metrics(metrics)
    if sampled_negatives is not None and (int(sampled_negatives) != sampled_negatives or sampled_negatives < 1):
        raise ValueError(f"sampled_negatives must be a positive integer or None, got {sampled_negatives!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    targets = _encode_test(model, test)
    seen = _seen_matrix(model, train) if exclude_seen else None
    meta = _log_counts(model, targets, seen)
    ranker = _Ranker(model, targets, seen, max(ks), sampled_negatives, seed)
    per_user, covered, topk = _run_batches(model, ranker, targets, ks, metrics, batch_size, show_progress, keep_topk)
    summary = {k: float(v.mean()) if len(v) else float("nan") for k, v in per_user.items()}
    for k, c in covered.items():
        summary[f"coverage@{k}"] = float(c.sum()) / max(ranker.num_items, 1)
    rating_stats = None
    if rating_metrics:
        rating_stats = _rating_metrics(model, targets, summary, per_user)
    suffix = f"_sampled{sampled_negatives}" if sampled_negatives is not None else ""
    masked = None if seen is None else ("training items" if train is not None else "the model's stored training items")
    return EvaluationResult(
        summary={k + suffix: v for k, v in summary.items()},
        per_user={k + suffix: v for k, v in per_user.items()},
        users=model.user_vocab.decode(targets.users),
        protocol=_protocol(ranker.num_items, masked, sampled_negatives),
        num_users=len(targets.users),
        skipped_users=targets.skipped_ids,
        ks=ks,
        num_items=ranker.num_items,
        sampled_negatives=sampled_negatives,
        rating_stats=rating_stats,
        metadata={"model_type": getattr(model.config, "model_type", None), **meta},
        topk_items=None if topk is None else _decode_topk(model, topk),
    )


def _decode_topk(model, topk: np.ndarray) -> np.ndarray:
    valid = topk >= 0
    ids = model.item_vocab.decode(np.where(valid, topk, 0))
    if valid.all():
        return ids
    ids = ids.astype(object)
    ids[~valid] = None
    return ids


def _run_batches(model, ranker, targets, ks, metrics, batch_size, show_progress, keep_topk):
    from tqdm.auto import tqdm

    n = len(targets.users)
    num_relevant = torch.as_tensor(targets.num_relevant, device=ranker.device)
    covered = {k: torch.zeros(ranker.num_items, dtype=torch.bool, device=ranker.device) for k in ks}
    covered = covered if "coverage" in metrics else {}
    parts: dict[str, list[torch.Tensor]] = {}
    tops: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    try:
        with tqdm(total=n, unit="user", desc="Evaluating", disable=not show_progress) as bar:
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)
                hits, top_i, valid = ranker.rank(start, stop)
                with serial_small_ops(ranker.device):
                    for name, v in ranking_metrics_from_hits(hits, num_relevant[start:stop], ks, metrics).items():
                        parts.setdefault(name, []).append(v.cpu())
                    for k, c in covered.items():
                        c[top_i[:, :k][valid[:, :k]]] = True
                    if keep_topk:
                        tops.append(torch.where(valid, top_i, -1).cpu())
                bar.update(stop - start)
    finally:
        model.train(was_training)
    per_user = {name: torch.cat(v).numpy() for name, v in parts.items()}
    if not parts:  # no evaluable users: empty arrays, NaN means
        per_user = {
            name: np.zeros(0)
            for name in ranking_metrics_from_hits(
                torch.zeros(0, max(ks), dtype=torch.bool), torch.zeros(0), ks, metrics
            )
        }
    width = min(max(ks), ranker.num_items)
    topk = (torch.cat(tops).numpy() if tops else np.zeros((0, width), np.int64)) if keep_topk else None
    return per_user, {k: c.cpu() for k, c in covered.items()}, topk


def _rating_metrics(model, targets, summary, per_user) -> dict[str, np.ndarray]:
    if targets.rated is None:
        raise ValueError("rating_metrics=True needs a 'rating' column in the test log.")
    row, item, rating = targets.rated
    device = model.device
    pred = model.score_pairs_idx(
        torch.as_tensor(targets.users[row], dtype=torch.long, device=device), torch.as_tensor(item, device=device)
    )
    pred = pred.double().cpu().numpy()
    err = pred - rating
    summary.update(rating_errors(pred, rating))
    n_users = len(targets.users)
    stats = {
        "n": np.bincount(row, minlength=n_users).astype(np.float64),
        "sse": np.bincount(row, weights=err**2, minlength=n_users),
        "sae": np.bincount(row, weights=np.abs(err), minlength=n_users),
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        per_user["rmse"] = np.sqrt(stats["sse"] / stats["n"])
        per_user["mae"] = stats["sae"] / stats["n"]
    return stats


def _warn_once(model: Any, message: str, *args: Any) -> None:
    """A count warning once per model: validation during training repeats the same counts every epoch."""
    warned = model.__dict__.setdefault("_hf_recsys_eval_warnings", set())
    if (message, args) not in warned:
        warned.add((message, args))
        logger.warning(message, *args)


def _log_counts(model, targets, seen) -> dict[str, int]:
    if len(targets.skipped_ids):
        _warn_once(model, "Skipped %d test users unknown to the model.", len(targets.skipped_ids))
    if targets.num_unknown_pairs:
        _warn_once(
            model,
            "%d test (user, item) pairs name items unknown to the model: counted as relevant, never retrievable.",
            targets.num_unknown_pairs,
        )
    masked_relevant = 0
    if seen is not None and targets.relevant.nnz:
        rel = targets.relevant.tocoo()
        masked_relevant = int(np.asarray(seen[targets.users[rel.row], rel.col]).sum())
        if masked_relevant:
            _warn_once(
                model,
                "%d test (user, item) pairs are also in the training items and are masked: they cannot be hit.",
                masked_relevant,
            )
    return {
        "num_skipped_users": len(targets.skipped_ids),
        "num_unknown_item_pairs": targets.num_unknown_pairs,
        "num_masked_relevant_pairs": masked_relevant,
        "num_relevant_pairs": int(targets.num_relevant.sum()),
    }


__all__ = ["EvaluationResult", "evaluate_model"]
