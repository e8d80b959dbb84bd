"""Training: one engine (:mod:`~hf_recsys.training.engine`) behind ``fit()``, ``hf-recsys train`` and
``accelerate launch``: the Accelerate trainer :class:`RecTrainer`, with the training options of the model's config.

The trainer's names (``RecTrainer``, ``RecTrainingArguments``, ``parse_train_args``, ...) import lazily, so that
``import hf_recsys`` does not import Accelerate.
"""

from .engine import (
    EngineTrainedMixin,
    TrainingHistory,
    TrainingOptions,
    fit_model,
    resize_embedding,
    resize_rows,
    trainable_parameters,
)
from .examples import TrainingExamples

_LAZY = {
    "DataArguments": "arguments",
    "ModelArguments": "arguments",
    "RecTrainingArguments": "arguments",
    "parse_train_args": "arguments",
    "IncompleteTrainerCheckpointError": "trainer",
    "RecTrainer": "trainer",
    "TrainerCallback": "trainer",
    "TrainerState": "trainer",
    "TrainingInterrupted": "trainer",
    "latest_checkpoint": "trainer",
    "run_train": "run",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EngineTrainedMixin",
    "TrainingExamples",
    "TrainingHistory",
    "TrainingOptions",
    "fit_model",
    "resize_embedding",
    "resize_rows",
    "trainable_parameters",
    *_LAZY,
]
