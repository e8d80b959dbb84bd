"""``RetrievalMixin``: ``build_index`` / ``drop_index`` / ``save_index`` / ``load_index`` on every recommender,
and the two hooks through which ``recommend`` and ``similar_items`` use an index when one is built."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from .embeddings import RetrievalEmbeddings, family_embeddings
from .index import FaissIndex
from .search import (
    EXACT_CANDIDATES,
    INDEX_BATCH,
    ModelIndex,
    StaleIndexError,
    _np,
    exact_topk,
    fingerprint,
    probe,
    topk_eligible,
)

logger = logging.getLogger(__name__)

INDEX_FILE = "item_index.safetensors"
CONFIG_KEY = "retrieval_index"


class RetrievalMixin:
    """ANN retrieval for models with item embeddings (mixed into ``RecPreTrainedModel``)."""

    _item_index: ModelIndex | None = None

    # ------------------------------------------------------------------ the embeddings and the index
    def retrieval_embeddings(self) -> RetrievalEmbeddings:
        """Query-side functions and item vectors of the model (see :mod:`hf_recsys.retrieval.embeddings`).

        Override in a model family outside this project to make it indexable.
        """
        return family_embeddings(self)

    @property
    def item_index(self) -> ModelIndex | None:
        """The index built by :meth:`build_index` (or loaded with the model), or ``None``."""
        return self._item_index

    @torch.no_grad()
    def build_index(
        self,
        kind: str = "hnsw",
        *,
        recall_k: int = 10,
        recall_users: int = 256,
        similar_items: bool = True,
        seed: int = 0,
        **params: Any,
    ) -> dict[str, Any]:
        """Build a faiss index over the item vectors; ``recommend`` and ``similar_items`` then use it.

        Args:
            kind: ``"exact"``, ``"hnsw"``, ``"ivf_flat"`` or ``"ivf_pq"`` (see :mod:`hf_recsys.retrieval.index`).
            recall_k: the ``k`` of the recall measured at build time.
            recall_users: known users sampled to measure the recall@k of the index against exact scoring.
            similar_items: also index the unit item vectors for ``similar_items``.
            seed: seeds the user sample and the IVF / PQ k-means.
            **params: the kind's parameters (``M``, ``ef_construction``, ``ef_search``; ``nlist``, ``nprobe``;
                ``pq_m``, ``pq_bits``).

        Returns:
            The index description also stored in ``config.retrieval_index``: kind, parameters, recall@k (mean over
            the sample, and a 95% lower bound), sample size and the item fingerprint.
        """
        emb = self.retrieval_embeddings()
        items = _np(emb.item_vectors(None))
        main = FaissIndex.build(items, kind, seed=seed, **params)
        similar = None
        if similar_items and emb.similarity_vectors is not None:
            similar = FaissIndex.build(_np(emb.similarity_vectors(None)), kind, seed=seed, **params)
        rows, vecs = probe(items)
        info = {"kind": kind, "params": main.params, "num_items": int(len(items)), "dim": int(items.shape[1])}
        self._item_index = ModelIndex(main, similar, fingerprint(items), rows, vecs, info)
        info.update(self.index_recall(k=recall_k, num_users=recall_users, seed=seed))
        info["fingerprint"] = self._item_index.fingerprint
        self.config.retrieval_index = info
        return info

    def tune_index(self, recall_k: int = 10, recall_users: int = 256, seed: int = 0, **search_params) -> dict:
        """Change the index's search-time parameters (``ef_search``; ``nprobe``) without rebuilding it, and
        measure its recall again; returns the updated ``config.retrieval_index``."""
        index = self._require_index()
        for part in (index.main, index.similar):
            if part is not None:
                part.set_search_params(**search_params)
        index.info["params"] = index.main.params
        index.info.update(self.index_recall(k=recall_k, num_users=recall_users, seed=seed))
        self.config.retrieval_index = index.info
        return index.info

    def drop_index(self) -> None:
        """Forget the index: ``recommend`` and ``similar_items`` score every item exactly again."""
        self._item_index = None
        self.config.__dict__.pop(CONFIG_KEY, None)

    @torch.no_grad()
    def index_recall(self, k: int = 10, num_users: int = 256, seed: int = 0) -> dict[str, Any]:
        """Recall@k of the index's top-k against exact scoring, on ``num_users`` known users drawn with ``seed``.

        Returns:
            ``{"recall_at_k", "recall_lower_95", "recall_k", "recall_users"}`` (``recall_at_k`` is ``None`` when
            the model knows no users).
        """
        index = self._require_index()
        emb = self.retrieval_embeddings()
        n_users = int(self.config.num_users or 0)
        k = int(min(k, index.main.num_items))
        if n_users == 0:
            return {"recall_at_k": None, "recall_lower_95": None, "recall_k": k, "recall_users": 0}
        users = np.random.default_rng(seed).choice(n_users, size=min(num_users, n_users), replace=False)
        q, _ = emb.user_queries(torch.as_tensor(users, device=self.device))
        q = _np(q)
        truth, _ = exact_topk(emb.item_vectors, q, np.zeros(len(q), np.float32), k)
        _, got = index.main.search(q, k)
        hits = (truth[:, :, None] == got[:, None, :]).any(2).sum(1) / k
        mean, se = float(hits.mean()), float(hits.std(ddof=1) / np.sqrt(len(hits))) if len(hits) > 1 else 0.0
        return {
            "recall_at_k": round(mean, 6),
            "recall_lower_95": round(max(0.0, mean - 1.96 * se), 6),
            "recall_k": k,
            "recall_users": int(len(users)),
        }

    def _require_index(self) -> ModelIndex:
        if self._item_index is None:
            raise RuntimeError(f"{type(self).__name__} has no index: call model.build_index(kind=...) first.")
        return self._item_index

    # ------------------------------------------------------------------ hooks used by recommend / similar_items
    @torch.no_grad()
    def _index_recommend(
        self, user_idx: np.ndarray, hists: list | None, k: int, exclude_seen: bool, cand, batch_size: int
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """``(item_idx, scores)`` through the index, or ``None`` when the model has none."""
        index = self._item_index
        if index is None:
            return None
        emb = self.retrieval_embeddings()
        index.check_fresh(emb)
        cand = None if cand is None else np.asarray(cand.cpu() if torch.is_tensor(cand) else cand, dtype=np.int64)
        allowed = None
        if cand is not None:
            allowed = np.zeros(index.main.num_items, dtype=bool)
            allowed[cand] = True
        out_i = np.empty((len(user_idx), k), dtype=np.int64)
        out_s = np.empty((len(user_idx), k), dtype=np.float32)
        step = max(batch_size, INDEX_BATCH)  # no (batch, num_items) matrix here: faiss prefers large batches
        for start in range(0, len(user_idx), step):
            sl = slice(start, start + step)
            q, off, seen = self._index_queries(emb, user_idx[sl], hists[sl] if hists is not None else None)
            banned = seen if exclude_seen else None
            if cand is not None and len(cand) <= EXACT_CANDIDATES:
                out_i[sl], out_s[sl] = exact_topk(emb.item_vectors, q, off, k, banned, allowed)
            else:
                out_i[sl], out_s[sl] = topk_eligible(index.main, emb.item_vectors, q, off, k, banned, allowed)
        return out_i, out_s

    @torch.no_grad()
    def _index_similar(self, item_idx: torch.Tensor, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """``(item_ids, scores)`` of ``similar_items`` through the index, or ``None`` without a similarity index."""
        index = self._item_index
        if index is None or index.similar is None:
            return None
        emb = self.retrieval_embeddings()
        index.check_fresh(emb)
        idx = item_idx.cpu().numpy().astype(np.int64)
        q = _np(emb.similarity_vectors(torch.as_tensor(idx)))
        n = index.similar.num_items
        itself = sp.csr_matrix((np.ones(len(idx)), idx, np.arange(len(idx) + 1)), shape=(len(idx), n))
        ids, scores = topk_eligible(index.similar, emb.similarity_vectors, q, np.zeros(len(q), np.float32), k, itself)
        return self.item_vocab.decode(ids), scores

    def _index_queries(
        self, emb: RetrievalEmbeddings, user_idx: np.ndarray, hists: list | None
    ) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
        """Queries, offsets and seen items (CSR) of a batch; rows with ``user_idx == -1`` come from ``hists``."""
        warm, cold = np.flatnonzero(user_idx >= 0), np.flatnonzero(user_idx < 0)
        parts, seen_parts = [], []
        if len(warm):
            parts.append(emb.user_queries(torch.as_tensor(user_idx[warm], device=self.device)))
            seen_parts.append(
                self.seen_items[user_idx[warm]]
                if self.seen_items is not None
                else sp.csr_matrix((len(warm), self.config.num_items), dtype=np.float32)
            )
        if len(cold):
            if emb.history_queries is None:
                raise NotImplementedError(f"{type(self).__name__} cannot recommend from item histories.")
            hist = self._histories_csr([hists[j] for j in cold])
            parts.append(emb.history_queries(hist))
            seen_parts.append(hist)
        q = np.concatenate([_np(p[0]) for p in parts])
        off = np.concatenate(
            [_np(p[1]) if p[1] is not None else np.zeros(len(p[0]), np.float32) for p in parts]
        ).astype(np.float32)
        seen = sp.vstack(seen_parts).tocsr()
        back = np.argsort(np.concatenate([warm, cold]), kind="stable")  # back to the batch's row order
        return q[back], off[back], seen[back]

    # ------------------------------------------------------------------ saving and loading
    def save_index(self, save_directory: str | os.PathLike) -> str | None:
        """Write the index to ``save_directory/item_index.safetensors`` (faiss-serialized bytes in safetensors,
        no pickle), after checking that it matches the current item embeddings. Returns the path, or ``None``
        without an index."""
        index = self._item_index
        if index is None:
            return None
        if fingerprint(_np(self.retrieval_embeddings().item_vectors(None))) != index.fingerprint:
            raise StaleIndexError(
                "Refusing to save an index built from other item embeddings than the model's: rebuild it first."
            )
        from safetensors.numpy import save_file

        tensors = {"main": index.main.to_bytes(), "probe_rows": index.probe_rows, "probe_vectors": index.probe_vectors}
        if index.similar is not None:
            tensors["similar"] = index.similar.to_bytes()
        meta = {**index.info, "fingerprint": index.fingerprint, "max_norm": index.main.max_norm}
        if index.similar is not None:
            meta["similar_max_norm"], meta["similar_dim"] = index.similar.max_norm, index.similar.dim
        path = os.path.join(save_directory, INDEX_FILE)
        tmp = path + ".tmp"
        save_file(tensors, tmp, metadata={"hf_recsys_index": json.dumps(meta)})
        os.replace(tmp, path)
        return path

    def load_index(self, path: str | os.PathLike, on_stale: str = "raise", **hub_kwargs: Any) -> bool:
        """Load ``item_index.safetensors`` from a local folder or Hub repo, if it is there.

        Args:
            path: the checkpoint folder or repo id.
            on_stale: what to do when the stored index was built from other item embeddings than the model's:
                ``"raise"`` (:class:`StaleIndexError`), ``"rebuild"`` (same kind and parameters) or ``"drop"``.
            **hub_kwargs: ``revision``, ``token``, ``cache_dir``... for a Hub repo.

        Returns:
            Whether an index is attached afterwards.
        """
        if on_stale not in ("raise", "rebuild", "drop"):
            raise ValueError(f"on_stale must be 'raise', 'rebuild' or 'drop', got {on_stale!r}.")
        from safetensors import safe_open
        from transformers.utils import cached_file

        file = cached_file(
            str(path),
            INDEX_FILE,
            _raise_exceptions_for_missing_entries=False,
            _raise_exceptions_for_connection_errors=False,
            **hub_kwargs,
        )
        if file is None:
            if CONFIG_KEY in self.config.__dict__:
                logger.warning("config.json describes an item index but %s has no %s: none loaded.", path, INDEX_FILE)
                self.config.__dict__.pop(CONFIG_KEY)
            return False
        with safe_open(file, framework="np") as f:
            meta = json.loads(f.metadata()["hf_recsys_index"])
            t = {name: f.get_tensor(name) for name in f.keys()}
        current = fingerprint(_np(self.retrieval_embeddings().item_vectors(None)))
        if current != meta["fingerprint"]:
            msg = f"The index in {path} was built from other item embeddings than the model's (stale index)."
            if on_stale == "raise":
                raise StaleIndexError(msg + " Load it with on_stale='rebuild' or 'drop'.")
            logger.warning("%s %s it.", msg, "Rebuilding" if on_stale == "rebuild" else "Dropping")
            if on_stale == "drop":
                self.drop_index()
                return False
            self.build_index(meta["kind"], recall_k=meta["recall_k"], **meta["params"])
            return True
        kind, params, dim = meta["kind"], meta["params"], meta["dim"]
        main = FaissIndex.from_bytes(t["main"], kind, params, meta["max_norm"], dim)
        similar = None
        if "similar" in t:
            similar = FaissIndex.from_bytes(t["similar"], kind, params, meta["similar_max_norm"], meta["similar_dim"])
        info = {k: v for k, v in meta.items() if k not in ("max_norm", "similar_max_norm", "similar_dim")}
        self._item_index = ModelIndex(main, similar, meta["fingerprint"], t["probe_rows"], t["probe_vectors"], info)
        self.config.retrieval_index = info
        return True


__all__ = ["CONFIG_KEY", "INDEX_FILE", "RetrievalMixin", "StaleIndexError"]
