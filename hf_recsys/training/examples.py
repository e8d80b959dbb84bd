"""Training examples: what a gradient-trained model gives a training loop.

A model's :meth:`~hf_recsys.RecPreTrainedModel.training_examples` prepares the model for a log (sizes its tables,
stores the histories it reads at inference) and returns a :class:`TrainingExamples`: ``len()`` examples (users
for sequential models, (user, item) pairs for matrix factorisation, ...) and a ``collate(indices, generator)``
that builds the keyword arguments of ``model(**batch)`` for some of them. Everything random in a batch (negative
items, masked positions, training windows) is drawn from ``generator``, so a loop that seeds it per step and per
process gets different negatives on every process and the same ones again when a run is resumed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

CollateFn = Callable[[torch.LongTensor, torch.Generator], dict]


class TrainingExamples:
    """``num_examples`` examples and the function that turns a set of them into a batch.

    Args:
        num_examples: how many examples there are (indices ``0 .. num_examples - 1``).
        collate: ``collate(indices, generator) -> dict`` of keyword arguments for the model's ``forward``; the
            output must hold a scalar ``loss`` (the mean over the batch).
        unit: what one example is (``"user"``, ``"pair"``, ...), for messages and logs.
        group_lengths: optional ``(num_examples,)`` sizes of the examples (e.g. the tokens of each user's training
            window). When given, the engine batches examples of similar size together
            (:func:`~hf_recsys.training.trainer.length_grouped_permutation`), so that a batch padded to its longest
            example wastes little work on padding.

    Example:
        ```python
        >>> import torch
        >>> from hf_recsys.training import TrainingExamples
        >>> users, items = torch.tensor([0, 0, 1]), torch.tensor([2, 3, 1])
        >>> ex = TrainingExamples(3, lambda idx, gen: {"user_ids": users[idx], "item_ids": items[idx]}, unit="pair")
        >>> ex.collate(torch.tensor([2, 0]), torch.Generator())["item_ids"].tolist()
        [1, 2]
        ```
    """

    def __init__(self, num_examples: int, collate: CollateFn, unit: str = "example", group_lengths=None):
        if int(num_examples) < 1:
            raise ValueError(f"No training examples ({unit}s): the training log is empty or too short for this model.")
        self.num_examples = int(num_examples)
        self._collate = collate
        self.unit = unit
        if group_lengths is not None:
            group_lengths = torch.as_tensor(group_lengths).reshape(-1)
            if len(group_lengths) != self.num_examples:
                raise ValueError(
                    f"group_lengths has {len(group_lengths)} entries for {self.num_examples} training examples."
                )
        self.group_lengths = group_lengths

    def __len__(self) -> int:
        return self.num_examples

    def collate(self, indices: torch.LongTensor, generator: torch.Generator) -> dict:
        """The batch of the examples ``indices``; random choices come from ``generator``."""
        return self._collate(indices, generator)

    def __repr__(self) -> str:
        return f"TrainingExamples({self.num_examples:,} {self.unit}s)"


__all__ = ["CollateFn", "TrainingExamples"]
