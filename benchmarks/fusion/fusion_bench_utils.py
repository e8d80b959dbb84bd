"""Shared pieces of the fusion benchmarks: data, content features, cached member fits, Markdown helpers."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import load_movielens
from hf_recsys.testing_utils import ml_latest_small_path

CACHE = Path(os.environ.get("HF_RECSYS_FUSION_CACHE", "/tmp/hf_recsys_fusion_bench"))


def load_data():
    path = ml_latest_small_path()
    if path is None:
        raise SystemExit("ml-latest-small not found: set HF_RECSYS_ML_LATEST_SMALL.")
    return load_movielens(path)


def content_features(items, dim: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """TF-IDF of each item's text (title, genres, tags), reduced to ``dim`` dimensions by truncated SVD."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    ids = np.asarray(items["item_id"])
    tfidf = TfidfVectorizer(min_df=2, sublinear_tf=True).fit_transform(items["text"])
    feats = TruncatedSVD(dim, random_state=seed).fit_transform(tfidf).astype(np.float32)
    return ids, feats


def fit_member(tag: str, model_type: str, data, refit: bool = False, **kwargs):
    """Fit a member (or load it from the cache folder ``CACHE/tag``); returns ``(model, seconds)``."""
    folder = CACHE / tag
    if folder.is_dir() and not refit:
        return AutoModelForRecommendation.from_pretrained(folder), 0.0
    fit_kwargs = kwargs.pop("fit_kwargs", {})
    start = time.perf_counter()
    model = AutoModelForRecommendation.for_model(model_type, **kwargs).fit(data, show_progress=False, **fit_kwargs)
    seconds = time.perf_counter() - start
    model.save_pretrained(folder)
    return model, seconds


def machine_line() -> str:
    load = os.getloadavg()
    date = subprocess.run(["date", "-u"], capture_output=True, text=True).stdout.strip()
    return (
        f"{date}; {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs "
        f"(load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end of the run)"
    )


def table(rows: list[dict], columns: list[str]) -> str:
    head = "| " + " | ".join(columns) + " |"
    sep = "| " + " | ".join("---" if c == columns[0] else "---:" for c in columns) + " |"
    body = ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


__all__ = ["CACHE", "content_features", "fit_member", "load_data", "machine_line", "table"]
