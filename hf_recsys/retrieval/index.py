"""faiss indexes for maximum inner product search (MIPS) over item vectors.

Kinds:

- ``"exact"``: ``IndexFlatIP``, exact inner products (a brute-force scan, in faiss' BLAS kernels).
- ``"hnsw"``, ``"ivf_flat"``, ``"ivf_pq"``: approximate indexes. Maximum inner product search (MIPS) is not a
  nearest-neighbour problem, and there are two correct ways to run it on these structures, chosen by ``mips=``:

  * ``"ip"`` (the default): faiss' ``METRIC_INNER_PRODUCT``. HNSW then builds and walks its graph under the inner
    product, the ip-NSW method (Morozov & Babenko, NeurIPS 2018), which they found better than any reduction
    to L2; IVF assigns items and queries to the coarse centroid of largest inner product and scans exact
    (IVF-Flat) or PQ-approximated (IVF-PQ) inner products inside the probed lists. What is searched is the
    true MIPS objective; only the pruning is heuristic.
  * ``"augment"``: the classic reduction to L2 (Bachrach et al., RecSys 2014): items ``x`` become
    ``[x, sqrt(M^2 - |x|^2)]`` with ``M`` the largest item norm, queries ``[q, 0]``; then ``|q' - x'|^2 =
    |q|^2 + M^2 - 2 q.x``, so the L2 order is exactly the inner-product order (tested). Its weakness: the extra
    coordinate dominates the distances when norms vary, and graph / cluster pruning suffers.

  On item vectors whose norms vary (popularity, biases) ``"ip"`` gave the higher recall at the same parameters
  for every kind (``tests/retrieval``, ``benchmarks/retrieval/``), hence the default. Either way the library
  re-scores every returned item exactly, so the scores it reports are the model's own.

``faiss`` (``pip install "hf-recsys[retrieval]"``) is imported here only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

KINDS = ("exact", "hnsw", "ivf_flat", "ivf_pq")
DEFAULTS: dict[str, dict[str, Any]] = {
    "exact": {},
    "hnsw": {"M": 32, "ef_construction": 200, "ef_search": 128, "mips": "ip"},
    "ivf_flat": {"nlist": None, "nprobe": 32, "mips": "ip"},
    "ivf_pq": {"nlist": None, "nprobe": 32, "pq_m": None, "pq_bits": 8, "mips": "ip"},
}
MIPS = ("ip", "augment")


def import_faiss():
    """``faiss``, or an ImportError naming the extra to install."""
    try:
        import faiss
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            'ANN retrieval needs faiss: pip install "hf-recsys[retrieval]" (or pip install faiss-cpu).'
        ) from exc
    return faiss


def resolve_params(kind: str, num_items: int, dim: int, params: dict[str, Any]) -> dict[str, Any]:
    """The full parameter set of ``kind`` for a catalogue: defaults, then ``params``; sizes adapted to small
    catalogues (``nlist`` about ``4 sqrt(n)``, at most ``n / 39``; PQ codes of 8 bits need 256 training points)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
    unknown = set(params) - set(DEFAULTS[kind])
    if unknown:
        known = sorted(DEFAULTS[kind])
        raise ValueError(f"Unknown parameter(s) {sorted(unknown)} for a {kind!r} index; known: {known}.")
    out = {**DEFAULTS[kind], **params}
    if kind != "exact" and out["mips"] not in MIPS:
        raise ValueError(f"mips must be one of {MIPS}, got {out['mips']!r}.")
    if kind.startswith("ivf"):
        if out["nlist"] is None:
            out["nlist"] = max(1, min(int(4 * math.sqrt(num_items)), num_items // 39))
        out["nlist"] = int(min(out["nlist"], num_items))
        out["nprobe"] = int(min(out["nprobe"], out["nlist"]))
    if kind == "ivf_pq":
        if out["pq_m"] is None:  # sub-quantizers of 2 dimensions (the dimension rounded up)
            out["pq_m"] = max(1, (dim + (out["mips"] == "augment") + 1) // 2)
        out["pq_bits"] = int(min(out["pq_bits"], max(1, int(math.log2(max(num_items, 2))))))
    return out


@dataclass
class FaissIndex:
    """One faiss index over ``(n, d)`` item vectors, searched by inner product.

    Args:
        kind: one of :data:`KINDS`.
        params: the resolved parameters (see :func:`resolve_params`).
        index: the faiss index (over zero-padded, or augmented, vectors).
        max_norm: ``M`` of the augmentation (``0`` for ``"exact"``).
        dim: the item vectors' dimension ``d``.
    """

    kind: str
    params: dict[str, Any]
    index: Any
    max_norm: float
    dim: int
    num_items: int = field(default=0)

    @property
    def index_dim(self) -> int:
        return self.index.d

    @classmethod
    def build(cls, vectors: np.ndarray, kind: str = "hnsw", seed: int = 0, **params) -> FaissIndex:
        """Build an index of ``kind`` over ``vectors`` (float32 ``(n, d)``)."""
        faiss = import_faiss()
        x = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = x.shape
        p = resolve_params(kind, n, d, params)
        if kind == "exact":
            index = faiss.IndexFlatIP(d)
            index.add(x)
            return cls(kind, p, index, 0.0, d, n)
        augment = p["mips"] == "augment"
        max_norm = float(np.sqrt((x.astype(np.float64) ** 2).sum(1).max())) if n and augment else 0.0
        pad_to = _padded_dim(kind, d + augment, p)
        vecs = augment_items(x, max_norm, pad_to) if augment else _pad(x, pad_to)
        index = _new_index(faiss, kind, pad_to, p, faiss.METRIC_L2 if augment else faiss.METRIC_INNER_PRODUCT)
        if kind.startswith("ivf"):
            index.cp.seed = seed
            index.cp.min_points_per_centroid = 1  # small catalogues: train anyway, without faiss' warning
            if kind == "ivf_pq":
                index.pq.cp.seed, index.pq.cp.min_points_per_centroid = seed, 1
            index.train(vecs)
            index.nprobe = p["nprobe"]
        index.add(vecs)
        return cls(kind, p, index, max_norm, d, n)

    @property
    def exact_scores(self) -> bool:
        """The index returns exact inner products of the stored vectors (no PQ codes, no L2 reduction)."""
        return self.kind != "ivf_pq" and self.params.get("mips", "ip") == "ip"

    def set_search_params(self, **params) -> None:
        """Change the search-time parameters (``ef_search`` for HNSW, ``nprobe`` for IVF) without rebuilding."""
        allowed = {"hnsw": {"ef_search"}, "ivf_flat": {"nprobe"}, "ivf_pq": {"nprobe"}}.get(self.kind, set())
        if set(params) - allowed:
            raise ValueError(f"A {self.kind!r} index has search parameters {sorted(allowed)}, got {sorted(params)}.")
        self.params.update({k: int(v) for k, v in params.items()})
        if "nprobe" in params:
            self.index.nprobe = min(self.params["nprobe"], self.params["nlist"])

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``k`` item indices per query, best first (``-1`` where the index found fewer), with the index's
        own scores (inner products, or negative augmented L2 distances with ``mips="augment"``)."""
        q = np.ascontiguousarray(queries, dtype=np.float32)
        k = int(min(k, self.num_items))
        q = _pad(q, self.index_dim)
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = max(int(self.params["ef_search"]), k)
        dist, ids = self.index.search(q, k)
        return (-dist if self.params.get("mips") == "augment" else dist), ids

    def to_bytes(self) -> np.ndarray:
        """The index as ``faiss.serialize_index`` bytes (a uint8 array; no pickle)."""
        return import_faiss().serialize_index(self.index)

    @classmethod
    def from_bytes(cls, data: np.ndarray, kind: str, params: dict[str, Any], max_norm: float, dim: int) -> FaissIndex:
        index = import_faiss().deserialize_index(np.ascontiguousarray(data, dtype=np.uint8))
        if kind.startswith("ivf"):
            index.nprobe = int(params["nprobe"])
        return cls(kind, params, index, max_norm, dim, int(index.ntotal))

    def memory_bytes(self) -> int:
        """Size of the serialized index (what it holds in memory, to within small headers)."""
        return int(self.to_bytes().nbytes)


def augment_items(x: np.ndarray, max_norm: float, pad_to: int | None = None) -> np.ndarray:
    """``[x, sqrt(M^2 - |x|^2)]`` (zero-padded to ``pad_to`` columns): the MIPS -> L2 reduction of the items."""
    sq = (x.astype(np.float64) ** 2).sum(1)
    extra = np.sqrt(np.maximum(max_norm**2 - sq, 0.0)).astype(np.float32)
    return _pad(np.concatenate([x, extra[:, None]], axis=1), pad_to)


def _pad(x: np.ndarray, pad_to: int | None) -> np.ndarray:
    if pad_to is not None and pad_to > x.shape[1]:
        x = np.pad(x, ((0, 0), (0, pad_to - x.shape[1])))
    return np.ascontiguousarray(x, dtype=np.float32)


def _padded_dim(kind: str, d: int, p: dict[str, Any]) -> int:
    if kind != "ivf_pq":
        return d
    m = int(p["pq_m"])
    return int(math.ceil(d / m) * m)  # PQ needs the dimension to be a multiple of its sub-quantizers


def _new_index(faiss, kind: str, dim: int, p: dict[str, Any], metric: int):
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, int(p["M"]), metric)
        index.hnsw.efConstruction = int(p["ef_construction"])
        return index
    quantizer = faiss.IndexFlatL2(dim) if metric == faiss.METRIC_L2 else faiss.IndexFlatIP(dim)
    if kind == "ivf_flat":
        return faiss.IndexIVFFlat(quantizer, dim, int(p["nlist"]), metric)
    return faiss.IndexIVFPQ(quantizer, dim, int(p["nlist"]), int(p["pq_m"]), int(p["pq_bits"]), metric)


__all__ = ["DEFAULTS", "KINDS", "MIPS", "FaissIndex", "augment_items", "import_faiss", "resolve_params"]
