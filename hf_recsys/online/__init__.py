"""Online updates: ``partial_fit`` support shared by every family (see :mod:`hf_recsys.online.partial_fit`)."""

from .partial_fit import (
    LOG_SCHEMA_KEY,
    REPLAY_SOURCES,
    check_update_log,
    concat_interactions,
    gradient_partial_fit,
    grow_vocabularies,
    log_schema,
    merge_seen,
    pad_csr,
    partial_fit,
    record_fitted_log,
    seen_interactions,
    sequential_partial_fit,
)

__all__ = [
    "LOG_SCHEMA_KEY",
    "REPLAY_SOURCES",
    "check_update_log",
    "concat_interactions",
    "gradient_partial_fit",
    "grow_vocabularies",
    "log_schema",
    "merge_seen",
    "pad_csr",
    "partial_fit",
    "record_fitted_log",
    "seen_interactions",
    "sequential_partial_fit",
]
