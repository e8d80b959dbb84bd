"""Training utilities: a lean seeded loop (the Accelerate trainer builds on the same ``forward(**batch).loss``)."""

from .loop import LoopArguments, TrainingHistory, minibatches, train_loop, trainable_parameters

__all__ = ["LoopArguments", "TrainingHistory", "minibatches", "train_loop", "trainable_parameters"]
