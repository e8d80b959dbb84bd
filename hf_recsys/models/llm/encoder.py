"""Item text embeddings from a pretrained LLM, for cold start: the mean-pooled (or last-token) hidden states of each
item's text, cached on disk so that a catalogue is encoded once.

They drop in where the project uses MiniLM features: ``item_text_embeddings=(ids, matrix)`` of the sequential
models (``item_text_dim`` = the LLM's hidden size) and ``backbone_features=`` of a frozen text two-tower model.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .pretrained import cache_root, smollm2_path

POOLINGS = ("mean", "last")


def _cache_file(model_path: str, texts: list[str], pooling: str, max_length: int, num_layers, cache_dir) -> Path:
    config = Path(model_path) / "config.json"
    ident = config.read_text(encoding="utf-8") if config.is_file() else model_path
    blob = json.dumps([ident, os.path.abspath(model_path), pooling, max_length, num_layers, texts], ensure_ascii=False)
    key = hashlib.sha256(blob.encode()).hexdigest()[:24]
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / "item_embeddings"
    return root / f"{Path(model_path).name}-{pooling}-{key}.npy"


def encode_item_texts(
    texts: Sequence[str],
    model_name_or_path: str | os.PathLike | None = None,
    pooling: str = "mean",
    max_length: int = 64,
    batch_size: int = 32,
    num_layers: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    precision: str = "fp32",
    show_progress: bool = True,
) -> np.ndarray:
    """Embeddings ``(len(texts), hidden_size)`` of item texts by a pretrained (causal) LLM, cached on disk.

    Args:
        texts: one text per item (e.g. "title (year) genres").
        model_name_or_path: a local folder of an ``AutoModel`` LLM; default SmolLM2-135M-Instruct
            (:func:`~hf_recsys.models.llm.smollm2_path`). A text encoder such as all-MiniLM-L6-v2 (BERT) works too,
            for its last layer (``num_layers=None``).
        pooling: ``"mean"`` (mean of the token states, padding excluded) or ``"last"`` (the state of the last
            token, which in a causal LLM has read the whole text).
        max_length: tokens per text (longer texts are cut).
        batch_size: texts per forward pass (texts of similar length are batched together).
        num_layers: read the states after the first ``num_layers`` decoder layers (then the final norm) instead of
            after all of them: proportionally cheaper, and middle layers often embed text as well as the last.
        cache_dir: folder of the cache (default ``<hf-recsys cache>/item_embeddings``); the file is keyed by the
            model's config and path, the pooling, ``max_length`` and the texts.
        precision: ``"fp32"`` or ``"bf16"`` (autocast; faster on CPUs with AVX512-BF16, slightly different values).
        show_progress: progress bar over the batches.

    Returns:
        A float32 array, row ``j`` for ``texts[j]``.

    Example:
        ```python
        >>> from hf_recsys.models.llm import encode_item_texts
        >>> feats = encode_item_texts(["Toy Story (1995)", "Heat (1995)"])  # doctest: +SKIP
        >>> model.fit(log, item_text_embeddings=(item_ids, feats))  # doctest: +SKIP
        ```
    """
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}.")
    if num_layers is not None and int(num_layers) < 1:
        raise ValueError(f"num_layers must be >= 1 (or None: all layers), got {num_layers!r}.")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"precision must be 'fp32' or 'bf16', got {precision!r}.")
    texts = [str(t) for t in texts]
    path = str(model_name_or_path) if model_name_or_path is not None else smollm2_path(show_progress=show_progress)
    num_layers = None if num_layers is None else int(num_layers)
    file = _cache_file(path, texts, pooling, int(max_length), num_layers, cache_dir)
    if file.is_file():
        return np.load(file)
    feats = _encode(texts, path, pooling, int(max_length), int(batch_size), num_layers, precision, show_progress)
    file.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{file.name}-", dir=file.parent)
    with os.fdopen(fd, "wb") as f:
        np.save(f, feats)
    os.replace(tmp, file)  # atomic: a reader sees the whole file or none
    return feats


def _encode(texts, path, pooling, max_length, batch_size, num_layers, precision, show_progress) -> np.ndarray:
    layer = num_layers if num_layers is not None else -1
    return encode_item_text_layers(texts, path, [layer], (pooling,), max_length, batch_size, precision, show_progress)[
        (layer, pooling)
    ]


@torch.no_grad()
def encode_item_text_layers(
    texts: Sequence[str],
    model_name_or_path: str | os.PathLike,
    layers: Sequence[int],
    poolings: Sequence[str] = POOLINGS,
    max_length: int = 64,
    batch_size: int = 32,
    precision: str = "fp32",
    show_progress: bool = True,
) -> dict[tuple[int, str], np.ndarray]:
    """Item text embeddings after several depths and poolings in one pass (not cached): e.g. to choose
    ``num_layers`` and ``pooling`` of :func:`encode_item_texts` on validation data at the cost of one encoding.

    Args:
        texts: one text per item.
        model_name_or_path: a local folder of an ``AutoModel`` LLM.
        layers: decoder layer counts to read (the states after the first ``l`` layers, then the final norm, as
            ``encode_item_texts(num_layers=l)``); ``-1`` is all layers. The pass runs up to the deepest one.
        poolings: ``"mean"`` and/or ``"last"``.
        max_length, batch_size, precision, show_progress: as in :func:`encode_item_texts`.

    Returns:
        ``{(layer, pooling): float32 array (len(texts), hidden_size)}``, the same values ``encode_item_texts`` gives.
    """
    from tqdm.auto import tqdm
    from transformers import AutoModel, AutoTokenizer

    unknown = sorted(set(poolings) - set(POOLINGS))
    if unknown:
        raise ValueError(f"poolings must be among {POOLINGS}, got {unknown}.")
    path = str(model_name_or_path)
    tok = AutoTokenizer.from_pretrained(path)
    tok.padding_side = "right"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    model = AutoModel.from_pretrained(path).eval()
    all_layers = getattr(model, "layers", None)
    if all_layers is None and all(int(n) == -1 for n in layers):
        all_layers = [None]  # an encoder without `.layers` (BERT, MiniLM): its last states only
    total = len(all_layers or [])
    resolved = {n: total if int(n) == -1 else int(n) for n in layers}
    wanted = sorted(set(resolved.values()))
    decoder = getattr(model, "layers", None) is not None and getattr(model, "norm", None) is not None
    if any(n < 1 for n in wanted) or (wanted and wanted[-1] > total) or (wanted != [total] and not decoder):
        raise ValueError(f"layers={list(layers)}: {path} has {total} decoder layers in `.layers` (and a `.norm`).")
    depth = wanted[-1]
    if depth < total:  # run only as deep as needed
        model.layers = all_layers[:depth]
        model.config.num_hidden_layers = depth
    texts = [str(t) for t in texts]
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = {
        (n, pool): np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        for n in wanted
        for pool in poolings
    }
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")
    for start in tqdm(range(0, len(texts), batch_size), desc="LLM item texts", disable=not show_progress):
        sel = order[start : start + batch_size]
        enc = tok([texts[j] for j in sel], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with amp:
            res = model(**enc, output_hidden_states=len(wanted) > 1)
            states = {depth: res.last_hidden_state.float()}  # after the final norm
            for n in wanted[:-1]:
                states[n] = model.norm(res.hidden_states[n]).float()
        mask = enc["attention_mask"]
        m = mask.unsqueeze(-1).float()
        last = (mask.sum(1) - 1).clamp(min=0)
        for (n, pool), arr in out.items():
            if pool == "mean":
                arr[sel] = ((states[n] * m).sum(1) / m.sum(1).clamp(min=1)).numpy()
            else:
                arr[sel] = states[n][torch.arange(len(sel)), last].numpy()
    return {(n, pool): out[(resolved[n], pool)] for n in layers for pool in poolings}


__all__ = ["POOLINGS", "encode_item_text_layers", "encode_item_texts"]
