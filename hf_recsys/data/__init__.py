"""Interaction logs and item content as ``datasets.Dataset``, id vocabularies, splits and model views."""

from .views import CANONICAL_COLUMNS, Interactions, build_vocabs, encode_interactions
from .vocab import IdVocab, UnknownIdError, load_vocabs, save_vocabs

__all__ = [
    "CANONICAL_COLUMNS",
    "IdVocab",
    "Interactions",
    "UnknownIdError",
    "build_vocabs",
    "encode_interactions",
    "load_vocabs",
    "save_vocabs",
]
