"""ANN retrieval on faiss for every model with item embeddings: ``model.build_index(kind=...)``.

``faiss`` is an optional dependency: ``pip install "hf-recsys[retrieval]"``.
"""

from .embeddings import RetrievalEmbeddings, family_embeddings
from .index import DEFAULTS, KINDS, FaissIndex, augment_items
from .mixin import INDEX_FILE, RetrievalMixin
from .search import ModelIndex, StaleIndexError, exact_topk, fingerprint, topk_eligible

__all__ = [
    "DEFAULTS",
    "INDEX_FILE",
    "KINDS",
    "FaissIndex",
    "ModelIndex",
    "RetrievalEmbeddings",
    "RetrievalMixin",
    "StaleIndexError",
    "augment_items",
    "exact_topk",
    "family_embeddings",
    "fingerprint",
    "topk_eligible",
]
