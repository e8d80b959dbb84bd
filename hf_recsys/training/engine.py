"""The training engine: one place where a gradient-trained model is sized, trained and (later) resumed.

Every gradient-trained family (the causal and masked sequential models, the two-tower, BPRMF, BiasedMF, NeuMF)
provides two things and nothing else:

- ``training_examples(interactions, **kwargs)`` -> :class:`~hf_recsys.training.TrainingExamples`: prepares the model
  for the log (calls ``resize_tables``, stores what it reads at inference) and builds batches;
- ``resize_tables(num_users, num_items, mean_resizing=False)``: sizes its user/item tables to the vocabularies. Rows
  of ids that already exist are kept; new rows get the family's initialisation, or with ``mean_resizing=True`` the
  mean of the existing rows (as transformers' ``resize_token_embeddings(mean_resizing=True)``), so that a model
  can grow with its vocabulary without forgetting what it learned.

A family may add one optional hook, ``sgd_step(learning_rate, **batch) -> loss``: a closed-form, in-place update
used instead of autograd when its config's optimizer is ``"sgd"`` (BPRMF and BiasedMF: per-sample SGD as implicit
and Surprise do it).

The training options (epochs, learning rate, batch size, optimizer, weight decay, gradient clipping, seed) live in
the model's config (:class:`TrainingOptions` reads them). ``model.fit(data)`` and ``hf-recsys train`` /
``accelerate launch`` run the same loop, :class:`~hf_recsys.training.RecTrainer`: ``fit`` on one process without
validation or checkpoints, ``train`` with whatever its arguments add. A run argument left unset (``None``) takes the
config's value, so the same config trains the same way under both, and the same config and seed give the same
model.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adamw", "adam", "adagrad", "sgd")
PRECISIONS = ("fp32", "bf16", "auto")
#: transformers' schedulers that need no options beyond the run's length and warm-up steps
LR_SCHEDULERS = (
    "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial", "inverse_sqrt",
)  # fmt: skip


@dataclass
class TrainingOptions:
    """The training options a model config carries (each config sets its family's defaults).

    Args:
        epochs: passes over the training examples.
        batch_size: examples per optimiser step (per process under several processes).
        learning_rate: the optimiser's step size.
        optimizer: ``"adamw"``, ``"adam"``, ``"adagrad"`` or ``"sgd"`` (with a family's ``sgd_step`` hook, its
            closed-form update).
        weight_decay: the optimiser's weight decay.
        max_grad_norm: clip the gradient norm to this (``0`` or ``None``: no clipping).
        seed: seeds the new tables, the data order and everything sampled.
        precision: ``"fp32"`` (default, safe everywhere), ``"bf16"`` (forward under bf16 autocast: matrix products
            in bf16, softmax, norms and the weights in fp32) or ``"auto"`` (bf16 where the hardware has it: a CUDA
            GPU with bf16, or a CPU with AVX512-BF16 or AMX; fp32 elsewhere).
        compile: run the model's backbone (the model itself when it has none) through ``torch.compile`` before
            training (off by default: the first steps then pay the compile time, and a CPU needs a C++ compiler).
        lr_scheduler_type: how the learning rate changes over the run's steps: a transformers scheduler name
            (``"constant"``, the default; ``"linear"`` or ``"cosine"``: decay from ``learning_rate`` to 0 by the
            last step of ``epochs``).
    """

    epochs: int = 10
    batch_size: int = 128
    learning_rate: float = 1e-3
    optimizer: str = "adamw"
    weight_decay: float = 0.0
    max_grad_norm: float | None = None
    seed: int = 0
    precision: str = "fp32"
    compile: bool = False
    lr_scheduler_type: str = "constant"

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_config(cls, config: Any, **overrides: Any) -> TrainingOptions:
        """The options of ``config`` (its attributes of the same names), with the non-``None`` ``overrides``."""
        values = {n: getattr(config, n) for n in cls.names() if getattr(config, n, None) is not None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self):
        check_training_options("TrainingOptions", self.__dict__)


def check_training_options(owner: str, values: dict[str, Any]) -> None:
    """A clear ``ValueError`` naming the first invalid training option among ``values``."""
    for name in ("epochs", "batch_size"):
        if name in values and (values[name] is None or int(values[name]) < 1):
            raise ValueError(f"{owner}.{name} must be >= 1, got {values[name]!r}.")
    if "learning_rate" in values and not float(values["learning_rate"]) > 0:
        raise ValueError(f"{owner}.learning_rate must be > 0, got {values['learning_rate']!r}.")
    if "optimizer" in values and values["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"{owner}.optimizer must be one of {OPTIMIZERS}, got {values['optimizer']!r}.")
    if "precision" in values and values["precision"] not in PRECISIONS:
        raise ValueError(f"{owner}.precision must be one of {PRECISIONS}, got {values['precision']!r}.")
    if "lr_scheduler_type" in values and values["lr_scheduler_type"] not in LR_SCHEDULERS:
        raise ValueError(
            f"{owner}.lr_scheduler_type must be one of {LR_SCHEDULERS}, got {values['lr_scheduler_type']!r}."
        )
    if "compile" in values and not isinstance(values["compile"], bool):
        raise ValueError(f"{owner}.compile must be true or false, got {values['compile']!r}.")
    for name in ("weight_decay", "max_grad_norm"):
        if values.get(name) is not None and float(values[name]) < 0:
            raise ValueError(f"{owner}.{name} must be >= 0, got {values[name]!r}.")


def set_training_options(config: Any, defaults: dict[str, Any], kwargs: dict[str, Any]) -> None:
    """Validate and set the training options of a config, taking them out of ``kwargs`` (its ``__init__``'s keyword
    arguments); an option not given (or ``None``) takes the family's default from ``defaults``."""
    given = {k: kwargs.pop(k, None) for k in defaults}
    merged = {k: (given[k] if given[k] is not None else v) for k, v in defaults.items()}
    check_training_options(type(config).__name__, merged)
    for name, value in merged.items():
        setattr(config, name, value)


def build_optimizer(params: list[nn.Parameter], options: TrainingOptions, betas=(0.9, 0.999), eps: float = 1e-8):
    """The torch optimizer ``options.optimizer`` over ``params``."""
    name, lr, wd = options.optimizer, options.learning_rate, options.weight_decay
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, eps=eps, weight_decay=wd)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=wd)
    raise ValueError(f"Unknown optimizer {name!r}; use one of {OPTIMIZERS}.")


def uses_sgd_hook(model: nn.Module, options: TrainingOptions) -> bool:
    """Whether the model's own closed-form ``sgd_step`` replaces autograd (``optimizer="sgd"`` and the hook)."""
    return options.optimizer == "sgd" and callable(getattr(model, "sgd_step", None))


def hardware_has_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bf16 natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16 or AMX."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return torch.backends.mkldnn.is_available() and any(getattr(cpu, c, lambda: False)() for c in checks)
    return False


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (``None``: plain fp32)."""
    if precision == "bf16" or (precision == "auto" and hardware_has_bf16(device)):
        return torch.bfloat16
    return None


def compile_model(model: nn.Module) -> nn.Module:
    """Compile ``model``'s backbone (or ``model`` when it has none) in place with ``torch.compile(dynamic=True)``
    (``nn.Module.compile``: the parameter names, and so saving and loading, stay the same); returns what was
    compiled. ``dynamic=True`` compiles for symbolic shapes, to limit recompiles for batches of other sizes."""
    target = getattr(model, "backbone", None)
    target = target if isinstance(target, nn.Module) else model
    target.compile(dynamic=True)
    return target


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters the optimiser updates; a clear error when there are none."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(
            f"{type(model).__name__} has no trainable parameters (frozen backbone and no adapter or head?); "
            "unfreeze something or use fit() for solver-fitted models."
        )
    return params


@torch.no_grad()
def resize_rows(
    weight: torch.Tensor | None,
    num_rows: int,
    width: int,
    init: Callable[[torch.Tensor], Any],
    mean_resizing: bool = False,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """A ``(num_rows, width)`` table that keeps the first rows of ``weight`` and initialises the others.

    Args:
        weight: the current table (``None`` or empty: all rows are new).
        num_rows: rows wanted.
        width: columns of the table.
        init: initialises a new block of rows in place (e.g. ``lambda t: t.normal_(0, 0.01)``).
        mean_resizing: new rows take the mean of the existing rows instead (when there are any).
        device: where a table without ``weight`` is made.

    Returns:
        The new table (``weight`` itself when its size already matches).
    """
    old = 0 if weight is None else int(weight.shape[0])
    if weight is not None and old == num_rows:
        return weight
    dev = weight.device if weight is not None else device
    dtype = weight.dtype if weight is not None else torch.float32
    out = torch.empty(num_rows, width, device=dev, dtype=dtype)
    keep = min(old, num_rows)
    if keep:
        out[:keep] = weight[:keep]
    if num_rows > keep:
        if mean_resizing and keep:
            out[keep:] = weight[:keep].mean(0, keepdim=True)
        else:
            init(out[keep:])
    return out


def resize_embedding(
    module: nn.Embedding | None,
    num_rows: int,
    width: int,
    init: Callable[[torch.Tensor], Any],
    mean_resizing: bool = False,
    device: torch.device | str | None = None,
) -> nn.Embedding:
    """``module`` resized to ``num_rows`` rows with :func:`resize_rows` (the module itself when the size matches)."""
    if module is not None and module.num_embeddings == num_rows:
        return module
    weight = None if module is None else module.weight.detach()
    table = resize_rows(weight, num_rows, width, init, mean_resizing, device)
    padding_idx = None if module is None else module.padding_idx
    emb = nn.Embedding(num_rows, width, padding_idx=padding_idx, _weight=table)  # _weight: no throw-away init
    emb.weight.requires_grad_(True if module is None else module.weight.requires_grad)
    return emb


@dataclass
class TrainingHistory:
    """What a ``fit`` saw: the loss of every step and the mean loss of every epoch."""

    step_losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    stopped_early: bool = False


EpochCallback = Callable[[int, float], bool | None]


@contextmanager
def torch_threads(num_threads: int | None):
    """Run a block with ``num_threads`` torch intra-op threads (``None``: leave the setting alone), then restore."""
    old = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _history_callback(history: TrainingHistory, on_epoch_end: EpochCallback | None):
    from .trainer import TrainerCallback

    class _History(TrainerCallback):
        """Records every step's loss, and calls ``on_epoch_end(epoch, mean_loss)`` (``True`` stops training)."""

        def __init__(self):
            self.epoch_start = 0

        def on_step_end(self, trainer) -> None:
            history.step_losses.append(float(trainer.last_step_loss))
            state = trainer.state
            if state.step_in_epoch == state.steps_per_epoch or state.global_step >= state.max_steps:
                losses = history.step_losses[self.epoch_start :]
                history.epoch_losses.append(sum(losses) / len(losses) if losses else math.nan)
                self.epoch_start = len(history.step_losses)
                epoch = len(history.epoch_losses) - 1
                logger.info("epoch %d: mean loss %.5f", epoch + 1, history.epoch_losses[-1])
                if on_epoch_end is not None:
                    was_training = trainer.unwrapped.training
                    stop = on_epoch_end(epoch, history.epoch_losses[-1])
                    trainer.unwrapped.train(was_training)  # the callback may have evaluated the model
                    if stop:
                        history.stopped_early = state.should_stop = True

    return _History()


def fit_model(
    model,
    interactions,
    show_progress: bool = True,
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    optimizer: str | None = None,
    weight_decay: float | None = None,
    max_grad_norm: float | None = None,
    seed: int | None = None,
    precision: str | None = None,
    compile: bool | None = None,
    lr_scheduler_type: str | None = None,
    max_steps: int | None = None,
    num_threads: int | None = None,
    on_epoch_end: EpochCallback | None = None,
    **examples_kwargs: Any,
) -> TrainingHistory:
    """Train ``model`` on encoded ``interactions`` in this process with :class:`~hf_recsys.training.RecTrainer`.

    Args:
        model: a gradient-trained recommender with its vocabularies set.
        interactions: the training log (:class:`~hf_recsys.data.Interactions`) in the model's vocabularies.
        show_progress: a progress bar.
        epochs, batch_size, learning_rate, optimizer, weight_decay, max_grad_norm, seed, precision, compile,
            lr_scheduler_type: override the config's training options for this run (``None``: the config's); the
            values used are written to the config.
        max_steps: stop after this many optimiser steps.
        num_threads: torch threads during training (``None``: the family's ``fit_num_threads``, else unchanged).
        on_epoch_end: ``f(epoch, mean_loss) -> stop?`` (e.g. validation and early stopping).
        **examples_kwargs: passed to ``model.training_examples`` (e.g. ``item_texts=(ids, texts)``).

    Returns:
        :class:`TrainingHistory`, also kept as ``model.last_training_history``. The model is left in eval mode.
    """
    from .arguments import RecTrainingArguments
    from .trainer import RecTrainer

    overrides = dict(epochs=epochs, batch_size=batch_size, learning_rate=learning_rate, optimizer=optimizer)
    overrides.update(weight_decay=weight_decay, max_grad_norm=max_grad_norm, seed=seed, precision=precision)
    overrides.update(compile=compile, lr_scheduler_type=lr_scheduler_type)
    options = TrainingOptions.from_config(model.config, **overrides)
    history = TrainingHistory()
    threads = num_threads if num_threads is not None else getattr(model, "fit_num_threads", None)
    with tempfile.TemporaryDirectory(prefix="hf-recsys-fit-") as tmp, torch_threads(threads):
        args = RecTrainingArguments(
            output_dir=tmp,
            num_train_epochs=options.epochs,
            max_steps=max_steps if max_steps else -1,
            per_device_train_batch_size=options.batch_size,
            learning_rate=options.learning_rate,
            optim=options.optimizer,
            weight_decay=options.weight_decay,
            max_grad_norm=options.max_grad_norm or 0.0,
            seed=options.seed,
            lr_scheduler_type=options.lr_scheduler_type,
            eval_strategy="no",
            save_strategy="no",
            load_best_model_at_end=False,
            logging_steps=1_000_000,
            disable_tqdm=not show_progress,
            do_test=False,
        )
        trainer = RecTrainer(
            model,
            args,
            interactions,
            callbacks=[_history_callback(history, on_epoch_end)],
            examples_kwargs=examples_kwargs,
        )
        trainer.train()
    model.last_training_history = history
    return history


class EngineTrainedMixin:
    """``fit`` of a gradient-trained family: the engine (:func:`fit_model`) with the config's training options.

    ``fit(data, epochs=..., learning_rate=..., ...)`` overrides them for one run; other keyword arguments go to the
    family's ``training_examples``.
    """

    #: torch threads during ``fit`` (``None``: leave torch's setting); small-tensor families run best on one
    fit_num_threads: int | None = None

    def _fit(self, interactions, show_progress: bool = True, **kwargs) -> None:
        fit_model(self, interactions, show_progress=show_progress, **kwargs)

    def _partial_fit(self, interactions, seen_before=None, show_progress: bool = False, **options) -> None:
        """``partial_fit``: continued training on the new rows (:func:`hf_recsys.online.gradient_partial_fit`)."""
        from ..online import gradient_partial_fit

        gradient_partial_fit(self, interactions, seen_before, show_progress=show_progress, **options)


__all__ = [
    "OPTIMIZERS",
    "PRECISIONS",
    "autocast_dtype",
    "hardware_has_bf16",
    "EngineTrainedMixin",
    "TrainingHistory",
    "TrainingOptions",
    "build_optimizer",
    "check_training_options",
    "compile_model",
    "fit_model",
    "resize_embedding",
    "resize_rows",
    "set_training_options",
    "torch_threads",
    "trainable_parameters",
    "uses_sgd_hook",
]
