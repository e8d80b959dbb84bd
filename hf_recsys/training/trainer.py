"""The Accelerate trainer: one loop from one CPU to many GPUs and machines.

:class:`RecTrainer` runs a lean loop on Accelerate (``accelerate launch``, ``torchrun`` or plain ``python``); why a
lean loop and not a ``transformers.Trainer`` subclass is measured in ``benchmarks/training/``. What it does:

- **Sharding.** Each epoch has one permutation of the model's training examples, the same on every process (seeded
  by ``seed`` and the epoch). An optimiser step takes the next ``batch * processes * accumulation`` examples and
  deals them out round-robin, so every example is used exactly once per epoch, by one process, and no example is
  padded or dropped. Each process's loss is weighted by its share of the step's examples, so the averaged
  gradient is the mean over the whole step, as on one process.
- **Randomness.** Negatives, masks and windows are drawn from a generator seeded by (seed, epoch, step,
  micro-step, process): different on every process, and the same again when a run is resumed. Dropout and other
  uses of the global torch generator are seeded per process and saved in checkpoints.
- **Validation** by full ranking (the core evaluator) every ``eval_steps`` or epoch: each process ranks its share
  of the validation users, the per-user metrics are gathered, and the trainer checks that every user was counted
  exactly once. Early stopping and best-model selection use ``metric_for_best_model``.
- **Checkpoints** (model + optimizer + scheduler + per-process RNG + data position + early-stopping state) are
  written to a hidden temporary folder, fsynced and renamed: a checkpoint folder that exists is complete, and its
  ``trainer_state.json`` lists every file with its sha256. ``resume_from_checkpoint`` continues exactly. On SIGTERM
  (a preempted job) the trainer checkpoints after the current step and raises :class:`TrainingInterrupted`.
- **Logging**: a progress bar on the main process, the loss every ``logging_steps`` to the console and to the
  Accelerate trackers in ``report_to`` (TensorBoard, ...).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.views import Interactions
from .arguments import RecTrainingArguments
from .checkpoints import (
    BEST_DIR,
    BEST_FILE,
    CHECKPOINT_PREFIX,
    MODEL_STATE_FILE,
    OPTIMIZER_FILE,
    SCHEDULER_FILE,
    STATE_FILE,
    IncompleteTrainerCheckpointError,
    NonFiniteLossGuard,
    acquire_output_lock,
    check_resume,
    checkpoint_manifest,
    data_fingerprint,
    latest_checkpoint,
    rotate_checkpoints,
    set_aside_newer_checkpoints,
    verify_best,
    verify_trainer_checkpoint,
    write_atomically,
)
from .engine import (
    TrainingOptions,
    autocast_dtype,
    build_optimizer,
    compile_model,
    trainable_parameters,
    uses_sgd_hook,
)
from .examples import TrainingExamples

logger = logging.getLogger(__name__)


@dataclass
class TrainerState:
    """Where a run is: saved in every checkpoint as ``trainer_state.json``."""

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    max_steps: int = 0
    steps_per_epoch: int = 0
    num_examples: int = 0
    num_processes: int = 1
    best_metric: float | None = None
    best_step: int | None = None
    evals_without_improvement: int = 0
    should_stop: bool = False
    log_history: list[dict[str, Any]] = field(default_factory=list, repr=False)  # long: kept out of print(state)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainerState:
        names = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in names})


class TrainingInterrupted(RuntimeError):
    """Training stopped on SIGTERM (e.g. a preempted job); ``checkpoint`` is where it was saved (``None`` with
    ``save_strategy="no"``). Resume with ``resume_from_checkpoint="latest"``."""

    def __init__(self, step: int, checkpoint: Path | None):
        where = f"saved to {checkpoint}" if checkpoint else "not saved (save_strategy is 'no')"
        super().__init__(
            f"Training stopped by SIGTERM after step {step}; the checkpoint was {where}. Resume with "
            "--resume_from_checkpoint latest."
        )
        self.step, self.checkpoint = step, checkpoint


class TrainerCallback:
    """Hooks into :class:`RecTrainer`; every method is optional. ``trainer.state`` holds the current step."""

    def on_train_begin(self, trainer: RecTrainer) -> None: ...

    def on_batch(self, trainer: RecTrainer, indices: torch.LongTensor) -> None:
        """The example indices this process trains on in the coming micro-step."""

    def on_step_end(self, trainer: RecTrainer) -> None: ...

    def on_log(self, trainer: RecTrainer, logs: dict[str, float]) -> None: ...

    def on_evaluate(self, trainer: RecTrainer, metrics: dict[str, float]) -> None: ...

    def on_save(self, trainer: RecTrainer, checkpoint: Path) -> None: ...

    def on_train_end(self, trainer: RecTrainer) -> None: ...


def epoch_permutation(num_examples: int, seed: int, epoch: int) -> torch.LongTensor:
    """The order of the examples in ``epoch``: the same on every process."""
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))
    return torch.randperm(num_examples, generator=gen)


#: examples sorted together by length: this many optimiser steps' worth (HF's LengthGroupedSampler uses 50 batches;
#: fewer keeps more randomness in which examples meet in a batch, at a little more padding)
LENGTH_GROUP_STEPS = 8


def length_grouped_permutation(lengths: torch.Tensor, step_size: int, seed: int, epoch: int) -> torch.LongTensor:
    """The order of the examples in ``epoch`` with examples of similar length in the same optimiser step.

    The epoch's random permutation is cut into groups of ``LENGTH_GROUP_STEPS * step_size`` examples, each group is
    sorted by length (longest first) and cut into steps, and the steps are shuffled: every example is still seen once
    an epoch, batches still change from epoch to epoch, and a batch padded to its longest example holds little
    padding. The same on every process.
    """
    order = epoch_permutation(len(lengths), seed, epoch)
    group = LENGTH_GROUP_STEPS * step_size
    parts = []
    for g in order.split(group):
        parts.append(g[torch.sort(lengths[g], descending=True, stable=True).indices])
    steps = torch.cat(parts).split(step_size)
    full = [s for s in steps if len(s) == step_size]
    gen = torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch) + 7_919)
    shuffled = [full[i] for i in torch.randperm(len(full), generator=gen).tolist()]
    return torch.cat(shuffled + [s for s in steps if len(s) < step_size])  # a short last step stays last


def epoch_order(examples: TrainingExamples, step_size: int, seed: int, epoch: int) -> torch.LongTensor:
    """The order of ``examples`` in ``epoch``: random, or grouped by length when the examples carry lengths."""
    if examples.group_lengths is None:
        return epoch_permutation(len(examples), seed, epoch)
    return length_grouped_permutation(examples.group_lengths, step_size, seed, epoch)


def step_generator(seed: int, epoch: int, step: int, micro_step: int, process: int) -> torch.Generator:
    """The generator of one process's micro-step (negatives, masks, windows)."""
    key = f"{seed}/{epoch}/{step}/{micro_step}/{process}".encode()
    return torch.Generator().manual_seed(int.from_bytes(hashlib.blake2b(key, digest_size=7).digest(), "little"))


def shard_step(indices: torch.LongTensor, per_device: int, num_processes: int, process: int) -> list:
    """Split one optimiser step's examples into micro-steps and keep this process's share of each.

    Returns:
        ``[(local_indices, weight), ...]``, one per micro-step; ``weight = len(local) * num_processes / len(indices)``
        so the gradients averaged by DDP are the mean over all of the step's examples. A process with no example in a
        micro-step (only in the last, short step) gets one example with weight 0, so that every process runs the
        same collective operations.
    """
    total = len(indices)
    out = []
    for micro in indices.split(per_device * num_processes):
        local = micro[process::num_processes]
        if len(local) == 0:
            out.append((micro[:1], 0.0))
        else:
            out.append((local, len(local) * num_processes / total))
    return out


def make_accelerator(args: RecTrainingArguments):
    """The ``Accelerator`` for ``args``: mixed precision, trackers, and the CPU when there is no accelerator.

    Without a GPU, Accelerate needs ``cpu=True`` to join the process group that ``torchrun`` or ``accelerate launch``
    set up; without it every process would train alone. A launch of several processes that still ends up with one is
    refused rather than run as independent copies.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    has_device = getattr(torch, "accelerator", None) is not None and torch.accelerator.is_available()
    acc = Accelerator(
        cpu=args.use_cpu or not has_device,
        mixed_precision=args.mixed_precision,
        log_with=args.report_to or None,
        project_dir=str(args.output_dir),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=args.ddp_find_unused_parameters)],
    )
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and acc.num_processes != launched:
        raise RuntimeError(
            f"The launcher started {launched} processes (WORLD_SIZE) but Accelerate sees {acc.num_processes}: "
            "check the accelerate config (distributed_type) and launch command."
        )
    return acc


def run_options(config: Any, args: RecTrainingArguments) -> TrainingOptions:
    """The training options of a run: ``args``' values where set, else the model config's."""
    return TrainingOptions.from_config(
        config,
        epochs=args.num_train_epochs,
        batch_size=args.per_device_train_batch_size,
        learning_rate=args.learning_rate,
        optimizer=args.optim,
        weight_decay=args.weight_decay,
        max_grad_norm=args.max_grad_norm,
        seed=args.seed,
        lr_scheduler_type=args.lr_scheduler_type,
    )


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class RecTrainer:
    """Train a hf-recsys model under Accelerate, with validation, early stopping, checkpoints and exact resume.

    Args:
        model: a gradient-trained recommender (its family implements ``training_examples``), with id vocabularies
            (``set_vocabs``) when validation is used.
        args: :class:`~hf_recsys.training.RecTrainingArguments`.
        train: the encoded training log (:class:`~hf_recsys.data.Interactions`, encoded with the model's vocabularies).
        eval_data: the validation log (``datasets.Dataset``/DataFrame with canonical columns) ranked by full ranking,
            training items masked; ``None`` for no validation.
        callbacks: :class:`TrainerCallback` instances.
        accelerator: an ``accelerate.Accelerator``; by default one is made from ``args`` (mixed precision, trackers).
        examples_kwargs: passed to ``model.training_examples`` (e.g. ``item_texts=(ids, texts)`` for a two-tower).

    Example:
        ```python
        >>> from hf_recsys import AutoModelForRecommendation
        >>> from hf_recsys.data import build_vocabs, encode_interactions, leave_last_out
        >>> from hf_recsys.training import RecTrainer, RecTrainingArguments
        >>> splits = leave_last_out(log, n_validation=1)  # doctest: +SKIP
        >>> model = AutoModelForRecommendation.for_model("bprmf", factors=32)  # doctest: +SKIP
        >>> model.set_vocabs(*build_vocabs(splits["train"]))  # doctest: +SKIP
        >>> train = encode_interactions(splits["train"], model.user_vocab, model.item_vocab)  # doctest: +SKIP
        >>> args = RecTrainingArguments(output_dir="runs/bprmf", num_train_epochs=5)
        >>> trainer = RecTrainer(model, args, train, eval_data=splits["validation"])  # doctest: +SKIP
        >>> trainer.train()  # doctest: +SKIP
        ```
    """

    def __init__(
        self,
        model,
        args: RecTrainingArguments,
        train: Interactions,
        eval_data: Any = None,
        callbacks: Sequence[TrainerCallback] = (),
        accelerator=None,
        examples_kwargs: dict[str, Any] | None = None,
    ):
        from accelerate.utils import set_seed

        self.args = args
        self.callbacks = list(callbacks)
        self.accelerator = accelerator = accelerator if accelerator is not None else make_accelerator(args)
        if not isinstance(train, Interactions):
            raise TypeError(
                f"RecTrainer needs the training log as Interactions encoded with the model's vocabularies, got "
                f"{type(train).__name__}: use "
                "hf_recsys.data.encode_interactions(log, model.user_vocab, model.item_vocab)."
            )
        self.train_data = train
        # the training options: the run's arguments where given, else the model config's (written back to it)
        self.options = options = run_options(model.config, args)
        for name, value in asdict(options).items():
            if hasattr(model.config, name):
                setattr(model.config, name, value)
        # the model's own setup (table sizes, stored histories) and its examples; the same on every process
        set_seed(options.seed)
        model.config.num_users, model.config.num_items = train.num_users, train.num_items
        model.seen_items = train.to_csr("binary")
        self.examples: TrainingExamples = model.training_examples(train, **(examples_kwargs or {}))
        model.to(accelerator.device)
        self.eval_data = eval_data
        self._eval_shard = None
        params = trainable_parameters(model)
        optimizer = build_optimizer(params, options, betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)
        # a family's closed-form update (BPR's per-sample SGD) replaces autograd; the optimizer then only carries the
        # learning rate (and the scheduler's changes to it)
        self._sgd_hook = uses_sgd_hook(model, options)
        if self._sgd_hook and (accelerator.num_processes > 1 or args.gradient_accumulation_steps > 1):
            raise ValueError(
                f"{type(model).__name__} with optimizer='sgd' updates its rows in place (no gradients to average or "
                "accumulate): it trains on one process without gradient accumulation; set optim (or the config's "
                "optimizer) to adam or adamw for that."
            )
        if self._sgd_hook:
            optimizer._opt_called = True  # never stepped: tells the scheduler that is intended
        self.model, self.optimizer = accelerator.prepare(model, optimizer)
        self._params = params
        # Accelerate's optimizer step() looks up the optional `lomo_optim` package twice on every call (0.3 ms a
        # step, a few % of a small model's step; see benchmarks/training). Where it would only call the wrapped
        # optimizer's step() (no fp16 loss scaler, no XLA, no DeepSpeed), the trainer calls that directly.
        plain = ("NO", "MULTI_CPU", "MULTI_GPU", "MULTI_XPU", "MULTI_NPU", "MULTI_MLU", "MULTI_SDAA", "MULTI_MUSA")
        self._plain_step = (
            str(accelerator.distributed_type).rsplit(".", 1)[-1] in plain
            and accelerator.scaler is None
            and hasattr(self.optimizer, "optimizer")
        )
        self.unwrapped = accelerator.unwrap_model(self.model)
        if options.compile:
            compile_model(self.unwrapped)
        self._autocast_dtype = autocast_dtype(options.precision, accelerator.device)
        world = accelerator.num_processes
        self.step_size = options.batch_size * world * args.gradient_accumulation_steps
        steps_per_epoch = math.ceil(len(self.examples) / self.step_size)
        max_steps = args.max_steps if args.max_steps > 0 else steps_per_epoch * options.epochs
        self.state = TrainerState(
            max_steps=max_steps,
            steps_per_epoch=steps_per_epoch,
            num_examples=len(self.examples),
            num_processes=world,
        )
        from transformers import get_scheduler

        # stepped once per optimiser step by the trainer itself (not prepared: Accelerate would step it per process)
        self.scheduler = get_scheduler(
            options.lr_scheduler_type, optimizer, num_warmup_steps=args.warmup_steps, num_training_steps=max_steps
        )
        self.output_dir = Path(args.output_dir)
        sharded = str(accelerator.distributed_type).rsplit(".", 1)[-1] in ("FSDP", "DEEPSPEED", "MEGATRON_LM")
        if sharded:
            if args.save_strategy != "no" or args.resume_from_checkpoint:
                raise NotImplementedError(
                    f"Training checkpoints under {accelerator.distributed_type} are not supported yet (their model "
                    "and optimizer states are sharded): set save_strategy to 'no'."
                )
            logger.warning(
                "%s runs of the hf-recsys trainer are untested (no GPU was available to its developers); "
                "DDP and single-device runs are tested.",
                accelerator.distributed_type,
            )
        self.last_eval_users: list = []
        self._nan_guard = NonFiniteLossGuard()

    # ------------------------------------------------------------------ helpers
    @property
    def is_main_process(self) -> bool:
        return self.accelerator.is_main_process

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    def _should(self, strategy: str, steps: int | None, end_of_epoch: bool) -> bool:
        if strategy == "epoch":
            return end_of_epoch
        if strategy == "steps":
            return self.state.global_step % steps == 0
        return False

    # ------------------------------------------------------------------ training
    def train(self, resume_from_checkpoint: str | os.PathLike | bool | None = None) -> TrainerState:
        """Run the training loop; returns the final :class:`TrainerState`.

        Args:
            resume_from_checkpoint: a checkpoint folder, ``"latest"`` or ``True`` for the newest complete checkpoint in
                ``output_dir`` (default: ``args.resume_from_checkpoint``).
        """
        from accelerate.utils import set_seed
        from tqdm.auto import tqdm

        args, acc, state = self.args, self.accelerator, self.state
        resume = resume_from_checkpoint if resume_from_checkpoint is not None else args.resume_from_checkpoint
        set_seed(self.options.seed, device_specific=True)  # dropout and other global draws differ per process
        if acc.is_main_process:
            acquire_output_lock(self.output_dir)  # one run per output folder
        if resume:
            self._load_checkpoint(resume)
            state = self.state
        if acc.is_main_process:
            self.output_dir.mkdir(parents=True, exist_ok=True)
        if args.report_to:
            config = {k: v for k, v in asdict(args).items() if isinstance(v, int | float | str | bool)}
            acc.init_trackers(args.run_name or self.output_dir.name or "hf-recsys", config=config)
        logger.info(
            "training %s on %s %ss: %d process(es), %d examples per step, %d steps per epoch, %d steps",
            type(self.unwrapped).__name__,
            f"{len(self.examples):,}",
            self.examples.unit,
            acc.num_processes,
            self.step_size,
            state.steps_per_epoch,
            state.max_steps,
        )
        self._call("on_train_begin")
        bar = tqdm(
            total=state.max_steps,
            initial=state.global_step,
            desc="training",
            disable=args.disable_tqdm or not acc.is_local_main_process,
            dynamic_ncols=True,
        )
        self.model.train()
        running = torch.zeros((), device=acc.device)
        running_steps, started = 0, time.perf_counter()
        self._sigterm = False
        previous_handler = self._catch_sigterm()
        try:
            while state.global_step < state.max_steps and not state.should_stop:
                order = epoch_order(self.examples, self.step_size, self.options.seed, state.epoch)
                for step in range(state.step_in_epoch, state.steps_per_epoch):
                    chunk = order[step * self.step_size : (step + 1) * self.step_size]
                    self.last_step_loss = self._optimizer_step(chunk, state.epoch, step)
                    running += self.last_step_loss
                    running_steps += 1
                    state.global_step += 1
                    state.step_in_epoch = step + 1
                    bar.update(1)
                    self._call("on_step_end")
                    end_of_epoch = state.step_in_epoch == state.steps_per_epoch
                    if state.global_step % args.logging_steps == 0 or state.global_step == state.max_steps:
                        loss = acc.reduce(running / running_steps, reduction="mean").item()
                        if not math.isfinite(loss):
                            raise FloatingPointError(
                                f"Training loss became {loss} by step {state.global_step}: lower the learning rate."
                            )
                        elapsed = time.perf_counter() - started
                        self.log(
                            {
                                "train/loss": loss,
                                "train/learning_rate": self.scheduler.get_last_lr()[0],
                                "train/epoch": state.epoch + state.step_in_epoch / state.steps_per_epoch,
                                "train/steps_per_second": running_steps / max(elapsed, 1e-9),
                            }
                        )
                        bar.set_postfix(loss=f"{loss:.4f}")
                        running.zero_()
                        running_steps, started = 0, time.perf_counter()
                    if end_of_epoch:
                        state.epoch += 1
                        state.step_in_epoch = 0
                    finished = state.global_step >= state.max_steps
                    if self.eval_data is not None and args.eval_strategy != "no":
                        if self._should(args.eval_strategy, args.eval_steps, end_of_epoch) or finished:
                            self._validate()  # also after the last step, so the best model is chosen among all
                    last = finished or state.should_stop
                    saved = self._should(args.save_strategy, args.save_steps, end_of_epoch) or (
                        last and args.save_strategy != "no"
                    )
                    if saved:
                        self.save_checkpoint()
                    if not last and self._terminate_requested():
                        checkpoint = None
                        if args.save_strategy != "no":
                            checkpoint = self.output_dir / f"{CHECKPOINT_PREFIX}{state.global_step}"
                            if not saved:
                                self.save_checkpoint()
                        raise TrainingInterrupted(state.global_step, checkpoint)
                    if last or end_of_epoch:
                        break
        finally:
            bar.close()
            if previous_handler is not None:
                import signal

                signal.signal(signal.SIGTERM, previous_handler)
        if args.load_best_model_at_end and state.best_step is not None:
            self._load_best()
        self.model.eval()
        if args.report_to:  # not acc.end_training(): it also destroys the process group, which the final test
            for tracker in acc.trackers:  # evaluation (gather_object) still needs; close() releases the group
                tracker.finish()
        self._call("on_train_end")
        return state

    def _catch_sigterm(self):
        """From the main thread, turn SIGTERM into a request to checkpoint and stop after the current step."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return None

        def handler(signum, frame):
            self._sigterm = True

        return signal.signal(signal.SIGTERM, handler)

    def _terminate_requested(self) -> bool:
        """Whether any process got SIGTERM; with several processes they agree at logging steps, so that all of
        them checkpoint and stop at the same step."""
        acc = self.accelerator
        if acc.num_processes == 1:
            return self._sigterm
        if self.state.global_step % self.args.logging_steps:
            return False
        flag = torch.tensor(float(self._sigterm), device=acc.device)
        return bool(acc.reduce(flag, reduction="sum").item() > 0)

    def _optimizer_step(self, chunk: torch.LongTensor, epoch: int, step: int) -> torch.Tensor:
        """One optimiser step over this process's share of ``chunk``; returns the process's weighted loss."""
        acc = self.accelerator
        micro = shard_step(chunk, self.options.batch_size, acc.num_processes, acc.process_index)
        total, host = torch.zeros((), device=acc.device), 0.0
        for m, (local, weight) in enumerate(micro):
            self._call("on_batch", local if weight > 0 else local[:0])
            gen = step_generator(self.options.seed, epoch, step, m, acc.process_index)
            batch = _to_device(self.examples.collate(local, gen), acc.device)
            if self._sgd_hook:  # the family's own in-place update at the current learning rate (a host loss)
                lr = self.optimizer.param_groups[0]["lr"]
                host += float(self.unwrapped.sgd_step(lr, **batch)) * weight
                continue
            sync = m == len(micro) - 1
            with nullcontext() if sync else acc.no_sync(self.model):
                with acc.autocast(), self._precision():
                    loss = self.model(**batch).loss
                acc.backward(loss if weight == 1.0 else loss * weight)
            total += loss.detach().float() * weight  # the mean over processes is the step's mean loss
        if self._sgd_hook:  # a short step (BPR: about 1 ms), so no tensor work for its loss
            self._nan_guard.update(host, self.state.global_step + 1)
            self.scheduler.step()
            return total.fill_(host)
        self._nan_guard.update(total, self.state.global_step + 1)
        if self.options.max_grad_norm:
            acc.clip_grad_norm_(self._params, self.options.max_grad_norm)
        if self._plain_step:
            self.optimizer.optimizer.step()
        else:
            self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total

    def _precision(self):
        """The config's precision: bf16 autocast of the forward (and so of its backward), or nothing."""
        if self._autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.accelerator.device.type, dtype=self._autocast_dtype)

    def log(self, logs: dict[str, float]) -> None:
        """Log to the trackers and the console (main process) and keep in ``state.log_history``."""
        step = self.state.global_step
        self.state.log_history.append({"step": step, **logs})
        self.accelerator.log(logs, step=step)
        if self.is_main_process:
            logger.info("step %d: %s", step, ", ".join(f"{k}={v:.5g}" for k, v in logs.items()))
        self._call("on_log", logs)

    # ------------------------------------------------------------------ evaluation
    def _shard_users(self):
        """This process's validation rows: the sorted validation users, dealt out round-robin."""
        if self._eval_shard is None:
            import pandas as pd

            df = self.eval_data if isinstance(self.eval_data, pd.DataFrame) else self.eval_data.to_pandas()
            users = np.sort(df["user_id"].unique())
            acc = self.accelerator
            mine = users[acc.process_index :: acc.num_processes]
            self._eval_shard = (df[df["user_id"].isin(mine)].reset_index(drop=True), len(users))
        return self._eval_shard

    @torch.no_grad()
    def evaluate(self, eval_data: Any = None) -> dict[str, float]:
        """Full-ranking metrics over the validation users, each ranked by one process and gathered.

        Returns:
            ``{"eval/ndcg@10": ..., ..., "eval/num_users": n}``. Raises ``RuntimeError`` when the gathered users are
            not exactly the validation users (one each).
        """
        from accelerate.utils import gather_object

        from ..evaluation import evaluate_model

        if eval_data is not None:
            self.eval_data, self._eval_shard = eval_data, None
        local, num_users = self._shard_users()
        model, args = self.unwrapped, self.args
        was_training = model.training
        model.eval()
        if len(local):
            res = evaluate_model(
                model,
                None,
                local,
                ks=args.eval_ks,
                metrics=("hit_rate", "precision", "recall", "ndcg", "map", "mrr"),
                batch_size=args.eval_batch_size,
                show_progress=args.show_eval_progress and self.is_main_process,
            )
            payload = (
                list(res.users),
                {k: np.asarray(v).tolist() for k, v in res.per_user.items()},
                res.skipped_users,
            )
        else:
            payload = ([], {}, [])
        if was_training:
            model.train()
        parts = gather_object([payload])
        users = [u for p in parts for u in p[0]]
        skipped = [u for p in parts for u in p[2]]
        self.last_eval_users = [p[0] for p in parts]
        if len(set(users)) != len(users) or len(users) + len(skipped) != num_users:
            raise RuntimeError(
                f"Distributed evaluation covered {len(users)} users ({len(set(users))} distinct) and skipped "
                f"{len(skipped)}, but the validation set has {num_users}: users were duplicated or dropped."
            )
        keys = [k for p in parts for k in p[1]]
        metrics = {}
        for key in dict.fromkeys(keys):
            values = [v for p in parts for v in p[1].get(key, [])]
            metrics[f"eval/{key}"] = float(np.mean(values)) if values else float("nan")
        metrics["eval/num_users"] = len(users)
        metrics["eval/skipped_users"] = len(skipped)
        return metrics

    def _validate(self) -> None:
        args, state = self.args, self.state
        self._nan_guard.check(self.accelerator, self.output_dir)
        metrics = self.evaluate()
        self.log(metrics)
        self._call("on_evaluate", metrics)
        key = f"eval/{args.metric_for_best_model}"
        if key not in metrics:
            raise KeyError(f"metric_for_best_model={args.metric_for_best_model!r} is not among {sorted(metrics)}.")
        value = metrics[key]
        better = state.best_metric is None or (
            value > state.best_metric + args.early_stopping_threshold
            if args.greater_is_better
            else value < state.best_metric - args.early_stopping_threshold
        )
        if better:
            state.best_metric, state.best_step, state.evals_without_improvement = value, state.global_step, 0
            if args.load_best_model_at_end:
                self._save_best()
        else:
            state.evals_without_improvement += 1
            if (
                args.early_stopping_patience is not None
                and state.evals_without_improvement >= args.early_stopping_patience
            ):
                logger.info(
                    "early stopping at step %d: %s has not improved on %.5f (step %s) for %d validations",
                    state.global_step,
                    args.metric_for_best_model,
                    state.best_metric,
                    state.best_step,
                    state.evals_without_improvement,
                )
                state.should_stop = True

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        """Write ``output_dir/checkpoint-<step>`` atomically and drop checkpoints beyond ``save_total_limit``."""
        from safetensors.torch import save_file, save_model

        acc, state = self.accelerator, self.state
        self._nan_guard.check(acc, self.output_dir)  # never a NaN checkpoint
        final = self.output_dir / f"{CHECKPOINT_PREFIX}{state.global_step}"

        def rng(tmp: Path) -> None:
            tensors = {"cpu": torch.get_rng_state()}
            if torch.cuda.is_available():
                for i, s in enumerate(torch.cuda.get_rng_state_all()):
                    tensors[f"cuda{i}"] = s
            save_file(tensors, tmp / f"rng_state_{acc.process_index}.safetensors")

        def write(tmp: Path) -> None:
            save_model(self.unwrapped, str(tmp / MODEL_STATE_FILE))
            torch.save(self.optimizer.state_dict(), tmp / OPTIMIZER_FILE)
            torch.save(self.scheduler.state_dict(), tmp / SCHEDULER_FILE)
            payload = {**asdict(state), "files": checkpoint_manifest(tmp), "args": self._args_json()}
            payload["data_fingerprint"] = data_fingerprint(self.train_data)
            (tmp / STATE_FILE).write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")

        write_atomically(self.accelerator, final, write, rng, verify=verify_trainer_checkpoint)
        if acc.is_main_process:
            self._rotate_checkpoints()
        self._call("on_save", final)
        return final

    def _args_json(self) -> dict[str, Any]:
        """The run's arguments with the options it really trains with (``None`` ones resolved from the config)."""
        o = self.options
        resolved = {
            "num_train_epochs": o.epochs,
            "per_device_train_batch_size": o.batch_size,
            "learning_rate": o.learning_rate,
            "optim": o.optimizer,
            "weight_decay": o.weight_decay,
            "max_grad_norm": o.max_grad_norm,
            "seed": o.seed,
            "precision": o.precision,
            "compile": o.compile,
            "lr_scheduler_type": o.lr_scheduler_type,
        }
        return json.loads(json.dumps({**asdict(self.args), **resolved}, default=str))

    def _rotate_checkpoints(self) -> None:
        rotate_checkpoints(self.output_dir, self.args.save_total_limit)

    def _save_best(self) -> None:
        from safetensors.torch import save_model

        self._nan_guard.check(self.accelerator, self.output_dir)  # never a NaN best model

        def write(tmp: Path) -> None:
            save_model(self.unwrapped, str(tmp / MODEL_STATE_FILE))
            meta = {"step": self.state.global_step, "metric": self.args.metric_for_best_model}
            meta["value"], meta["files"] = self.state.best_metric, checkpoint_manifest(tmp)
            (tmp / BEST_FILE).write_text(json.dumps(meta), encoding="utf-8")

        write_atomically(self.accelerator, self.output_dir / BEST_DIR, write, verify=verify_best)

    def close(self) -> None:
        """Leave the process group cleanly; call it at the end of a multi-process script (``hf-recsys train`` does).

        With gloo, destroying the DDP wrapper joins the process group's worker threads while holding the GIL; a
        worker still releasing the tensors of the last collective needs the GIL too, and the process hangs (seen
        about once in 45 two-process launches here; a process that exits in that state aborts with "terminate
        called without an active exception"). So: a last barrier, a pause with the GIL released so the workers finish,
        then the wrapper and the process group are released, while the workers are idle.
        """
        import gc

        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return
        self.accelerator.wait_for_everyone()
        time.sleep(0.5)  # the GIL is released: gloo's workers free the last collective's tensors
        self.model = self.unwrapped
        self.optimizer = None
        self.accelerator.free_memory()
        gc.collect()
        torch.distributed.destroy_process_group()

    def _load_best(self) -> None:
        from safetensors.torch import load_model

        path = self.output_dir / BEST_DIR / MODEL_STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"The best model of step {self.state.best_step} was not found at {path}.")
        verify_best(path.parent)  # before reading it
        load_model(self.unwrapped, str(path))  # read on the CPU, copied into the parameters
        logger.info(
            "loaded the best model: step %s, %s = %.5f",
            self.state.best_step,
            self.args.metric_for_best_model,
            self.state.best_metric,
        )

    def _load_checkpoint(self, resume: str | os.PathLike | bool) -> None:
        from safetensors.torch import load_file, load_model

        acc = self.accelerator
        if resume is True or resume == "latest":
            path = latest_checkpoint(self.output_dir)
            if path is None:
                raise FileNotFoundError(
                    f"resume_from_checkpoint: no complete checkpoint in {self.output_dir} to resume from."
                )
        else:
            path = Path(resume)
        saved = verify_trainer_checkpoint(path)
        allow = getattr(self.args, "resume_allow_changes", None) or ()
        check_resume(path, saved, self._args_json(), data_fingerprint(self.train_data), allow)
        if acc.is_main_process:
            set_aside_newer_checkpoints(self.output_dir, int(saved.get("global_step", 0)))
        if saved.get("num_examples") != len(self.examples):
            raise ValueError(
                f"Checkpoint {path} was trained on {saved.get('num_examples')} examples, this run has "
                f"{len(self.examples)}: resume with the same data."
            )
        load_model(self.unwrapped, str(path / MODEL_STATE_FILE))
        self.optimizer.load_state_dict(torch.load(path / OPTIMIZER_FILE, map_location="cpu", weights_only=True))
        self.scheduler.load_state_dict(torch.load(path / SCHEDULER_FILE, weights_only=True))
        rng_file = path / f"rng_state_{acc.process_index}.safetensors"
        if saved.get("num_processes") != acc.num_processes:
            logger.warning(
                "Checkpoint %s was written by %s process(es), this run has %d: the data position is kept but the "
                "run will not repeat the uninterrupted one exactly.",
                path,
                saved.get("num_processes"),
                acc.num_processes,
            )
            steps_per_epoch = self.state.steps_per_epoch
            saved["step_in_epoch"] = min(saved["step_in_epoch"], steps_per_epoch)
        if rng_file.is_file():
            rng = load_file(rng_file)
            torch.set_rng_state(rng["cpu"])
            if torch.cuda.is_available():
                cuda = [rng[k] for k in sorted(k for k in rng if k.startswith("cuda"))]
                if len(cuda) == torch.cuda.device_count():
                    torch.cuda.set_rng_state_all(cuda)
        restored = TrainerState.from_dict(saved)
        restored.max_steps, restored.steps_per_epoch = self.state.max_steps, self.state.steps_per_epoch
        restored.num_processes = acc.num_processes
        self.state = restored
        logger.info("resumed from %s at step %d (epoch %d)", path, restored.global_step, restored.epoch)


__all__ = [
    "IncompleteTrainerCheckpointError",
    "RecTrainer",
    "TrainerCallback",
    "TrainerState",
    "TrainingInterrupted",
    "epoch_order",
    "epoch_permutation",
    "length_grouped_permutation",
    "latest_checkpoint",
    "make_accelerator",
    "shard_step",
    "step_generator",
    "verify_trainer_checkpoint",
]
