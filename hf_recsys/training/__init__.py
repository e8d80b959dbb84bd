"""Training: the lean seeded loop behind ``fit()``, and the Accelerate trainer behind ``hf-recsys train``.

The trainer's names (``RecTrainer``, ``RecTrainingArguments``, ``parse_train_args``, ...) import lazily, so that
``import hf_recsys`` does not import Accelerate.
"""

from .examples import TrainingExamples
from .loop import LoopArguments, TrainingHistory, minibatches, train_loop, trainable_parameters

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
    "LoopArguments",
    "TrainingExamples",
    "TrainingHistory",
    "minibatches",
    "train_loop",
    "trainable_parameters",
    *_LAZY,
]
