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
    }


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
