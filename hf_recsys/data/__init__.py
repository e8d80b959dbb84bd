"""Interaction logs and item content as ``datasets.Dataset``, id vocabularies, splits and model views."""

from .catalogue import find_items, resolve_item
from .loading import DataValidationError, load_interactions, load_items, read_table, validate_interactions
from .movielens import detect_movielens, load_movielens, load_movielens_1m_sasrec
from .sampling import sample_negatives
from .splits import global_temporal_split, kcore_filter, leave_last_out, random_split, temporal_user_split
from .synthetic import generate_interactions, generate_interactions_table, write_synthetic_parquet
from .views import CANONICAL_COLUMNS, Interactions, build_vocabs, encode_interactions, to_sequences
from .vocab import IdVocab, UnknownIdError, load_vocabs, save_vocabs

__all__ = [
    "CANONICAL_COLUMNS",
    "DataValidationError",
    "IdVocab",
    "Interactions",
    "UnknownIdError",
    "build_vocabs",
    "detect_movielens",
    "encode_interactions",
    "find_items",
    "generate_interactions",
    "generate_interactions_table",
    "global_temporal_split",
    "kcore_filter",
    "leave_last_out",
    "load_interactions",
    "load_items",
    "load_movielens",
    "load_movielens_1m_sasrec",
    "load_vocabs",
    "random_split",
    "read_table",
    "resolve_item",
    "sample_negatives",
    "save_vocabs",
    "temporal_user_split",
    "to_sequences",
    "validate_interactions",
    "write_synthetic_parquet",
]
