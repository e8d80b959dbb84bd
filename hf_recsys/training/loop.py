"""A lean, seeded training loop for the neural recommenders: minibatches, AdamW, gradient clipping, tqdm.

It is deliberately small and generic: a model exposes ``forward(**batch) -> RecommenderOutput`` with a ``loss`` and
a function (or the model's ``TrainingExamples``) yields the batches of an epoch. ``fit()`` uses it; the Accelerate
trainer (:class:`~hf_recsys.training.RecTrainer`, ``hf-recsys train``) builds on the same contract and adds several
processes, validation, checkpoints and resume.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from .examples import TrainingExamples

logger = logging.getLogger(__name__)


@dataclass
class LoopArguments:
    """Options of :func:`train_loop`.

    Args:
        epochs: passes over the data.
        batch_size: examples per step (used by the batch function).
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        max_grad_norm: clip the gradient norm to this value (``None`` for no clipping).
        max_steps: stop after this many optimiser steps in total (``None``: run every epoch).
        seed: seeds torch and the batch generator, so a run is reproducible.
        show_progress: show a tqdm progress bar per epoch.
    """

    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    max_steps: int | None = None
    seed: int = 0
    show_progress: bool = True

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"LoopArguments.{name} must be >= 1, got {getattr(self, name)!r}.")
        if self.learning_rate <= 0:
            raise ValueError(f"LoopArguments.learning_rate must be > 0, got {self.learning_rate!r}.")


@dataclass
class TrainingHistory:
    """What :func:`train_loop` saw: the loss of every step and the mean loss of every epoch."""

    step_losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    stopped_early: bool = False


BatchFn = Callable[[int, torch.Generator], Iterable[dict]]
EpochCallback = Callable[[int, float], bool | None]


def minibatches(n: int, batch_size: int, generator: torch.Generator, shuffle: bool = True) -> Iterator[torch.Tensor]:
    """Index tensors covering ``range(n)`` in minibatches, shuffled with ``generator``."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimiser updates; a clear error when there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters (frozen backbone and no adapter or head?); "
            "unfreeze something or use fit() for solver-fitted models."
        )
    return params


def train_loop(
    model: nn.Module,
    batches: BatchFn | TrainingExamples,
    args: LoopArguments | None = None,
    num_batches: Callable[[], int] | None = None,
    on_epoch_end: EpochCallback | None = None,
) -> TrainingHistory:
    """Train ``model`` with AdamW on the batches ``batches(epoch, generator)`` yields.

    Args:
        model: a module whose ``forward(**batch)`` returns an output with a scalar ``loss``.
        batches: called once per epoch with the epoch number and a seeded ``torch.Generator``; yields dicts of
            keyword arguments for ``model``. Or the model's :class:`TrainingExamples`: shuffled minibatches of
            ``args.batch_size`` examples, collated with the same generator.
        args: loop options (:class:`LoopArguments`).
        num_batches: optional, the number of batches per epoch (for the progress bar).
        on_epoch_end: optional ``f(epoch, mean_loss)``; returning ``True`` stops training (early stopping).

    Returns:
        :class:`TrainingHistory`. The model is left in eval mode.

    Example:
        ```python
        >>> from hf_recsys.training import LoopArguments, minibatches, train_loop
        >>> def batches(epoch, gen):
        ...     for idx in minibatches(len(data), 64, gen):  # doctest: +SKIP
        ...         yield {"input": data[idx], "labels": labels[idx]}
        >>> history = train_loop(model, batches, LoopArguments(epochs=3))  # doctest: +SKIP
        ```
    """
    from tqdm.auto import tqdm

    args = args or LoopArguments()
    if isinstance(batches, TrainingExamples):
        examples = batches

        def batches(epoch: int, gen: torch.Generator):
            for idx in minibatches(len(examples), args.batch_size, gen):
                yield examples.collate(idx, gen)

        num_batches = num_batches or (lambda: -(-len(examples) // args.batch_size))
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.AdamW(trainable_parameters(model), lr=args.learning_rate, weight_decay=args.weight_decay)
    history, step = TrainingHistory(), 0
    model.train()
    try:
        for epoch in range(args.epochs):
            total = num_batches() if num_batches is not None else None
            bar = tqdm(
                batches(epoch, gen),
                total=total,
                desc=f"epoch {epoch + 1}/{args.epochs}",
                disable=not args.show_progress,
                leave=False,
            )
            losses = []
            for batch in bar:
                loss = model(**batch).loss
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"Loss became {loss.item()} at step {step}: lower the learning rate.")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if args.max_grad_norm is not None:
                    nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], args.max_grad_norm)
                opt.step()
                losses.append(loss.item())
                bar.set_postfix(loss=f"{losses[-1]:.4f}")
                step += 1
                if args.max_steps is not None and step >= args.max_steps:
                    break
            history.step_losses += losses
            history.epoch_losses.append(sum(losses) / max(len(losses), 1) if losses else math.nan)
            logger.info("epoch %d: mean loss %.5f", epoch + 1, history.epoch_losses[-1])
            if on_epoch_end is not None and on_epoch_end(epoch, history.epoch_losses[-1]):
                history.stopped_early = True
                model.train()
                break
            model.train()  # the callback may have evaluated the model
            if args.max_steps is not None and step >= args.max_steps:
                break
    finally:
        model.eval()
    return history


__all__ = ["LoopArguments", "TrainingHistory", "minibatches", "train_loop", "trainable_parameters"]
