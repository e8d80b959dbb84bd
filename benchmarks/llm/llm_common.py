"""What the LLM benchmarks share: the backbone benchmarks' helpers (data, MiniLM features, machine notes, result
files), the ml-latest-small leave-last-out split with a seeded subset of evaluation users, and cost accounting."""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "backbones"))

from common import git_commit, load_ml_latest_small, machine_note, minilm_features  # noqa: E402

RESULTS = HERE / "results"


def split_with_eval_users(num_eval_users: int, seed: int = 0):
    """``(train, val, test, final_train, items)`` of ml-latest-small, leave-last-out; ``val`` and ``test`` restricted
    to the same ``num_eval_users`` users (seeded) so that every model is scored on the same users."""
    from hf_recsys.data import leave_last_out

    inter, items = load_ml_latest_small()
    splits = leave_last_out(inter, n_test=1, n_validation=1)
    train, val, test = (splits[s].to_pandas() for s in ("train", "validation", "test"))
    users = np.sort(test.user_id.unique())
    pick = np.random.default_rng(seed).choice(users, size=min(num_eval_users, len(users)), replace=False)
    val, test = val[val.user_id.isin(pick)], test[test.user_id.isin(pick)]
    return train, val, test, pd.concat([train, splits["validation"].to_pandas()], ignore_index=True), items.to_pandas()


def peak_rss_mb() -> float:
    """The process's peak resident memory so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_note() -> str:
    return "load average " + " / ".join(f"{x:.1f}" for x in os.getloadavg())


def write_result(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {**payload, "machine": machine_note(), "commit": git_commit(), "written": time.strftime("%H:%M UTC")}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float))
    if markdown:
        (RESULTS / f"{name}.md").write_text(markdown)
        print(markdown, flush=True)


__all__ = ["git_commit", "load_note", "machine_note", "minilm_features", "peak_rss_mb", "split_with_eval_users"]
