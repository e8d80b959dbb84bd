"""Streaming (prequential) evaluation: replay a log in time order, chunk by chunk.

For every chunk and every update strategy: recommend for the chunk's users with the model as it is, score the
lists against what the users did in the chunk (items seen before the chunk are masked), then update the model
with the chunk: ``"none"`` (the model stays as fitted on the warm-up period), ``"partial_fit"`` (the chunk is
passed to ``model.partial_fit``) or ``"refit"`` (a fresh model fitted on everything so far). The result holds the
metrics and the update time of every chunk, so the strategies compare like the arms of an A/B test run on the
past.

Example:
    ```python
    >>> from hf_recsys.evaluation.streaming import streaming_evaluation
    >>> result = streaming_evaluation(make_model, log, num_chunks=10, freq="MS")  # doctest: +SKIP
    >>> print(result.to_markdown())  # doctest: +SKIP
    >>> result.plot("curves.png")  # doctest: +SKIP
    ```
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .evaluator import evaluate_model
from .metrics import check_ks, check_metrics

logger = logging.getLogger(__name__)

STRATEGIES = ("none", "partial_fit", "refit")


@dataclass
class StreamingResult:
    """Per-chunk metrics of a streaming evaluation.

    Args:
        rows: one dict per (strategy, chunk): ``strategy``, ``chunk`` (0-based), ``start`` / ``end`` (ISO dates,
            end exclusive), ``num_interactions``, ``num_users`` (in the chunk), ``num_evaluated`` (users the model
            could score: known to it before the chunk), the metrics (e.g. ``ndcg@10``), ``update_seconds`` (the
            update after the chunk, wall time) and ``update_cpu_seconds`` (the process's CPU time in it: less than
            the wall time when the process waited or was preempted).
        strategies: the update strategies, in order.
        metrics: the metric keys in ``rows``.
        warmup_interactions: size of the initial training period.
        metadata: model type, chunking and protocol notes.
    """

    rows: list[dict[str, Any]]
    strategies: tuple[str, ...]
    metrics: tuple[str, ...]
    warmup_interactions: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_pandas(self) -> pd.DataFrame:
        """The rows as a DataFrame."""
        return pd.DataFrame(self.rows)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per strategy: each metric's mean over chunks (weighted by evaluated users) and the total update time."""
        df = self.to_pandas()
        out = {}
        for s, part in df.groupby("strategy", sort=False):
            w = part["num_evaluated"].to_numpy(dtype=float)
            means = {m: float(np.average(part[m], weights=w)) if w.sum() else float("nan") for m in self.metrics}
            out[str(s)] = {**means, "update_seconds": float(part["update_seconds"].sum())}
            if "update_cpu_seconds" in part:
                out[str(s)]["update_cpu_seconds"] = float(part["update_cpu_seconds"].sum())
        return out

    def to_markdown(self, digits: int = 4) -> str:
        """A table with one row per chunk and one column per (strategy, metric)."""
        df = self.to_pandas()
        wide = df.pivot(index=["chunk", "start"], columns="strategy", values=list(self.metrics) + ["update_seconds"])
        header = ["chunk", "start"] + [f"{m} {s}" for m, s in wide.columns]
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for (chunk, start), row in wide.iterrows():
            cells = [str(chunk), str(start)] + [f"{v:.{digits}f}" for v in row.to_numpy(dtype=float)]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable: rows, summary and metadata."""
        rows = [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in self.rows]
        return {
            "strategies": list(self.strategies),
            "metrics": list(self.metrics),
            "warmup_interactions": self.warmup_interactions,
            "rows": rows,
            "summary": self.summary(),
            "metadata": self.metadata,
        }

    def plot(self, path: str | Path, metric: str | None = None) -> Path:
        """Write the curves as a PNG: ``metric`` (default: the first) per chunk for every strategy, and the update
        time per chunk (log scale).

        Raises:
            ImportError: matplotlib is missing (``pip install "hf-recsys[train]"``).
        """
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ImportError('The streaming plot needs matplotlib: pip install "hf-recsys[train]".') from exc
        metric = metric or self.metrics[0]
        if metric not in self.metrics:
            raise ValueError(f"No metric {metric!r} in this result; it has {list(self.metrics)}.")
        df = self.to_pandas()
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
        for s in self.strategies:
            part = df[df.strategy == s]
            axes[0].plot(part["chunk"], part[metric], marker="o", ms=3, label=s)
            axes[1].plot(part["chunk"], part["update_seconds"].clip(lower=1e-4), marker="o", ms=3, label=s)
        axes[0].set(title=f"{metric} per chunk (prequential)", xlabel="chunk", ylabel=metric)
        axes[1].set(title="update time after the chunk", xlabel="chunk", ylabel="seconds", yscale="log")
        for ax in axes:
            ax.grid(alpha=0.3)
            ax.legend()
        fig.tight_layout()
        path = Path(path)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _as_frame(log: Any) -> pd.DataFrame:
    import datasets

    if isinstance(log, pd.DataFrame):
        return log
    if isinstance(log, datasets.Dataset):
        return log.to_pandas()
    if hasattr(log, "to_pandas"):  # pyarrow.Table
        return log.to_pandas()
    raise TypeError(f"Expected a datasets.Dataset, pandas DataFrame or Arrow table, got {type(log).__name__}.")


def time_chunks(
    log: Any, freq: str = "MS", num_chunks: int | None = None, start: Any = None
) -> tuple[pd.DataFrame, list[tuple[str, str, pd.DataFrame]]]:
    """Split a log with a ``timestamp`` column (seconds since the epoch, or datetimes) into a warm-up part and
    consecutive calendar chunks.

    Args:
        log: the log (canonical columns).
        freq: the chunk length as a pandas offset alias: ``"MS"`` (months), ``"W"`` (weeks), ``"D"`` (days), ...
        num_chunks: evaluate the last ``num_chunks`` chunks (everything before is the warm-up); or
        start: the first chunk starts here (a date; everything before is the warm-up), the chunks running to the end.

    Returns:
        ``(warmup, [(start, end, chunk), ...])`` in time order; the ISO dates are the chunk's span (end exclusive).
        Empty chunks are left out.
    """
    df = _as_frame(log)
    if "timestamp" not in df.columns:
        raise ValueError("Streaming evaluation needs a 'timestamp' column to replay the log in time order.")
    if (num_chunks is None) == (start is None):
        raise ValueError("Give exactly one of num_chunks (the last N chunks) or start (the first chunk's date).")
    ts = df["timestamp"]
    when = (
        pd.to_datetime(ts, unit="s", utc=True) if np.issubdtype(ts.dtype, np.number) else pd.to_datetime(ts, utc=True)
    )
    if when.isna().any():
        raise ValueError(f"The 'timestamp' column has {int(when.isna().sum())} missing value(s).")
    order = np.argsort(when.to_numpy(), kind="stable")
    df, when = df.iloc[order].reset_index(drop=True), when.iloc[order].reset_index(drop=True)
    last = when.iloc[-1]
    edges = pd.date_range(when.iloc[0].floor("D"), last + pd.Timedelta(days=1), freq=freq, tz="UTC")
    edges = edges.append(pd.DatetimeIndex([last + pd.Timedelta(seconds=1)]))
    if start is not None:
        first = pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tzinfo is None else pd.Timestamp(start)
        edges = pd.DatetimeIndex([first]).append(edges[edges > first])
    else:
        if int(num_chunks) < 1:
            raise ValueError(f"num_chunks must be >= 1, got {num_chunks}.")
        edges = edges[-(int(num_chunks) + 1) :]
    warm = (when < edges[0]).to_numpy()
    if not warm.any():
        raise ValueError("No interactions before the first chunk: nothing to fit the initial model on.")
    chunks = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = ((when >= lo) & (when < hi)).to_numpy()
        if sel.any():
            chunks.append((lo.date().isoformat(), hi.date().isoformat(), df[sel]))
    return df[warm], chunks


def streaming_evaluation(
    make_model: Callable[[], Any],
    log: Any,
    num_chunks: int | None = None,
    start: Any = None,
    freq: str = "MS",
    strategies: Sequence[str] = STRATEGIES,
    ks: int | Sequence[int] = (10,),
    metrics: Sequence[str] | None = ("ndcg", "recall"),
    fit_kwargs: Mapping[str, Any] | None = None,
    partial_fit_kwargs: Mapping[str, Any] | None = None,
    show_progress: bool = False,
    make_refit_model: Callable[[], Any] | None = None,
) -> StreamingResult:
    """Prequential evaluation of update strategies over a time-ordered log.

    The model is fitted once on the warm-up period (everything before the first chunk); every strategy starts from
    a copy of it. For each chunk, the chunk's users known to the model are ranked over the whole catalogue with the
    items they had before the chunk masked, their chunk items being the relevant ones (users the model does not
    know yet are counted in ``num_users`` but not evaluated: with ``"none"`` the users who joined after the warm-up
    stay unknown); then the strategy updates the model.

    Args:
        make_model: returns a fresh, unfitted model (called for the warm-up fit, and for every ``"refit"`` without
            ``make_refit_model``).
        log: the whole log with a ``timestamp`` column.
        num_chunks, start, freq: the chunking (see :func:`time_chunks`).
        strategies: among ``"none"``, ``"partial_fit"``, ``"refit"``.
        ks: cut-offs of the metrics.
        metrics: ranking metrics (as :func:`~hf_recsys.evaluation.evaluate_model`'s, without coverage).
        fit_kwargs: passed to ``fit`` (warm-up and refits).
        partial_fit_kwargs: passed to ``partial_fit``.
        show_progress: progress bars (chunks).
        make_refit_model: returns the fresh model that ``"refit"`` fits (default ``make_model``): e.g. the same
            model without the state it keeps only for updates (ItemKNN's ``update_reserve`` / ``update_cache``),
            so that the refit is the fastest one of that model.

    Returns:
        A :class:`StreamingResult`.
    """
    from tqdm.auto import tqdm

    bad = [s for s in strategies if s not in STRATEGIES]
    if bad or not strategies:
        raise ValueError(f"Unknown update strategies {bad}; use some of {STRATEGIES}.")
    ks, metrics = check_ks(ks), tuple(m for m in check_metrics(metrics) if m != "coverage")
    fit_kwargs, pf_kwargs = dict(fit_kwargs or {}), dict(partial_fit_kwargs or {})
    warmup, chunks = time_chunks(log, freq=freq, num_chunks=num_chunks, start=start)
    t0 = time.perf_counter()
    base = make_model().fit(warmup, show_progress=False, **fit_kwargs)
    warm_seconds = time.perf_counter() - t0
    models = {s: copy.deepcopy(base) for s in strategies}
    keys = tuple(f"{m}@{k}" for m in metrics for k in ks)
    rows, history = [], [warmup]
    for c, (lo, hi, chunk) in enumerate(tqdm(chunks, desc="chunks", disable=not show_progress)):
        past = pd.concat(history, ignore_index=True)
        for s in strategies:
            row = {"strategy": s, "chunk": c, "start": lo, "end": hi, "num_interactions": len(chunk)}
            row.update(_score_chunk(models[s], past, chunk, ks, metrics, keys))
            t, cpu = time.perf_counter(), time.process_time()
            if s == "partial_fit":
                models[s].partial_fit(chunk, **pf_kwargs)
            elif s == "refit":
                models[s] = (make_refit_model or make_model)().fit(
                    pd.concat([past, chunk], ignore_index=True), show_progress=False, **fit_kwargs
                )
            row["update_seconds"] = time.perf_counter() - t
            row["update_cpu_seconds"] = time.process_time() - cpu  # below the wall time: the process was preempted
            rows.append(row)
        history.append(chunk)
    meta = {
        "model_type": getattr(base.config, "model_type", None),
        "freq": freq,
        "num_chunks": len(chunks),
        "warmup_fit_seconds": warm_seconds,
        "protocol": "prequential: rank the chunk's known users over all items, items before the chunk masked, "
        "then update",
    }
    return StreamingResult(rows, tuple(strategies), keys, len(warmup), meta)


def _score_chunk(model, past: pd.DataFrame, chunk: pd.DataFrame, ks, metrics, keys) -> dict[str, Any]:
    users = chunk["user_id"].unique()
    known = model.user_vocab.encode(users, unknown="mask") >= 0
    out: dict[str, Any] = {"num_users": len(users), "num_evaluated": int(known.sum())}
    if not known.any():
        return out | {k: float("nan") for k in keys}
    test = chunk[chunk["user_id"].isin(users[known])]
    res = evaluate_model(model, past, test, ks=ks, metrics=metrics, show_progress=False)
    return out | {k: res.summary[k] for k in keys}


# ---------------------------------------------------------------------------------------------- the CLI command
def add_stream_eval_parser(sub) -> None:
    """Register ``hf-recsys stream-eval`` on the CLI's subparsers."""
    from ..cli import _add_data_args

    p = sub.add_parser("stream-eval", help="prequential evaluation of update strategies (none, partial_fit, refit)")
    p.add_argument("--model-type", required=True, help="registry key, see `hf-recsys plugins`")
    p.add_argument(
        "--log", required=True, help="the whole log with timestamps (CSV/TSV/Parquet/JSONL/datasets folder)"
    )
    p.add_argument("--chunks", type=int, help="evaluate the last N chunks (the rest is the warm-up)")
    p.add_argument("--start", help="or: the first chunk's date, e.g. 2018-01-01")
    p.add_argument("--freq", default="MS", help="chunk length as a pandas offset alias (MS months, W weeks, D days)")
    p.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=STRATEGIES, help="update strategies")
    p.add_argument("--k", type=int, nargs="+", default=[10], help="cut-offs of the metrics (default: 10)")
    p.add_argument("--metrics", nargs="+", default=["ndcg", "recall"], help="ranking metrics (default: ndcg recall)")
    p.add_argument("--config", help="JSON file of config options")
    p.add_argument("--set", nargs="*", help="config options key=value (values parsed as JSON)")
    p.add_argument("--fit-args", nargs="*", help="options of fit() key=value")
    p.add_argument("--partial-fit-args", nargs="*", help="options of partial_fit() key=value, e.g. epochs=2")
    p.add_argument("--output", help="write the per-chunk rows and summary as JSON")
    p.add_argument("--plot", help="write the curves as a PNG")
    _add_data_args(p)
    p.set_defaults(func=cmd_stream_eval)


def cmd_stream_eval(args) -> int:
    """``hf-recsys stream-eval``: print the per-chunk table and the summary; write JSON / PNG when asked."""
    import json

    from ..auto import AutoModelForRecommendation
    from ..cli import _config_kwargs, _load, _parse_mapping, _parse_value

    log = _load(args.log, args)
    config = _config_kwargs(args)
    kwargs = {
        k: {n: _parse_value(v) for n, v in _parse_mapping(getattr(args, k), "--" + k).items()}
        for k in ("fit_args", "partial_fit_args")
    }
    result = streaming_evaluation(
        lambda: AutoModelForRecommendation.for_model(args.model_type, **config),
        log,
        num_chunks=args.chunks,
        start=args.start,
        freq=args.freq,
        strategies=args.strategies,
        ks=args.k,
        metrics=args.metrics,
        fit_kwargs=kwargs["fit_args"],
        partial_fit_kwargs=kwargs["partial_fit_args"],
        show_progress=True,
    )
    print(result.to_markdown())
    for strategy, values in result.summary().items():
        print(strategy + ": " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(result.to_dict(), f, indent=2)
    if args.plot:
        print(f"plot -> {result.plot(args.plot)}")
    return 0


__all__ = ["STRATEGIES", "StreamingResult", "add_stream_eval_parser", "streaming_evaluation", "time_chunks"]
