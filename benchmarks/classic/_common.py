"""Shared helpers of the classic-model benchmarks: data, machine facts, Markdown."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def data_path() -> Path:
    from hf_recsys.testing_utils import ml_latest_small_path

    path = ml_latest_small_path()
    if path is None:
        raise SystemExit("ml-latest-small not found: set HF_RECSYS_ML_LATEST_SMALL or put it in ../shared/data/.")
    return path


def load_ratings() -> pd.DataFrame:
    """ml-latest-small ratings with the canonical columns ``user_id, item_id, rating, timestamp``."""
    df = pd.read_csv(data_path() / "ratings.csv")
    return df.rename(columns={"userId": "user_id", "movieId": "item_id"})


def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def machine() -> dict:
    import torch

    try:
        import implicit

        implicit_version = implicit.__version__
    except ImportError:  # pragma: no cover
        implicit_version = "absent"
    cpu = platform.processor() or "cpu"
    try:
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.split("Model name:")[1].splitlines()[0]
    except (IndexError, OSError):
        pass
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu.strip(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "implicit": implicit_version,
        "numpy": np.__version__,
        "commit": commit(),
    }


def commit() -> str:
    """The checkout's short commit, with ``+ uncommitted changes`` when the tree differs from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=HERE)  # fmt: skip
    except OSError:  # pragma: no cover
        return "unknown"
    return head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else "")


def ml1m_path() -> Path | None:
    """Folder of the SASRec ML-1M file (``ml-1m.txt``): ``$HF_RECSYS_ML_1M``, else ``../shared/data/ml-1m`` beside
    the checkout; ``None`` when absent."""
    env = os.environ.get("HF_RECSYS_ML_1M")
    for folder in [Path(env)] if env else [HERE.parents[2] / "shared" / "data" / "ml-1m"]:
        if (folder / "ml-1m.txt").is_file():
            return folder
    return None


def load_ml1m() -> pd.DataFrame:
    """ML-1M as SASRec preprocessed it (999,611 interactions, 6,040 users, 3,416 items) with ``user_id, item_id,
    timestamp`` (each user's order in the file)."""
    from hf_recsys.data import load_interactions

    folder = ml1m_path()
    if folder is None:
        raise SystemExit("ml-1m.txt not found: set HF_RECSYS_ML_1M or put it in ../shared/data/ml-1m/.")
    return load_interactions(folder / "ml-1m.txt", format="sasrec").to_pandas()


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
