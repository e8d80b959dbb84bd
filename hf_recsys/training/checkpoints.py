"""Training checkpoints: the files, their verification, atomic writes, rotation, the output-folder lock, the checks
of a resume and the non-finite-loss guard.

A checkpoint folder ``checkpoint-<step>`` holds the model (safetensors), the optimizer and scheduler states
(``torch.save``, read back with ``weights_only=True``), one RNG state per process (safetensors) and
``trainer_state.json``: the data position, the early-stopping state, the training options, a fingerprint of the
training data and the manifest (:mod:`hf_recsys.serialization`: the same scheme and hashing helper as
``save_pretrained``) of every other file. It is staged under a hidden name, fsynced, verified and swapped in
(:func:`write_atomically`), so a folder with the final name is complete; a write interrupted between its renames
is finished on the next :func:`latest_checkpoint`, which also verifies the hashes and skips a damaged folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..serialization import (
    IncompleteCheckpointError,
    SaveError,
    UnsafeCheckpointError,
    abort_staging,
    build_manifest,
    commit_staging,
    prepare_staging,
    recover_save,
    sha256_file,
    staging_path,
    verify_manifest,
)

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
ABANDONED_PREFIX = "abandoned-"
STATE_FILE = "trainer_state.json"
MODEL_STATE_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
BEST_DIR = "best"
BEST_FILE = "best.json"
LOCK_FILE = ".hf-recsys-train.lock"
#: Training options a resume must not change silently (they change the result of the resumed run).
RESUME_CHECKED_OPTIONS = (
    "seed", "learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "weight_decay",
    "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm", "lr_scheduler_type", "warmup_steps",
    "num_train_epochs", "max_steps", "mixed_precision", "optim", "precision",
)  # fmt: skip


# schedules that do not depend on the run's length: under them a resume may train longer (or shorter)
LENGTH_FREE_SCHEDULES = ("constant", "constant_with_warmup")


class IncompleteTrainerCheckpointError(OSError):
    """A training checkpoint is missing a file, or a file differs from what its ``trainer_state.json`` lists."""


class OutputDirLockedError(RuntimeError):
    """Another training run holds the output folder."""


class ResumeMismatchError(ValueError):
    """A resume would continue a checkpoint with other training options or other data."""


def checkpoint_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a staged checkpoint: every file but ``trainer_state.json``, which will hold it."""
    return build_manifest(folder, exclude=(STATE_FILE,))


def checkpoint_step(path: str | os.PathLike) -> int | None:
    m = re.fullmatch(CHECKPOINT_PREFIX + r"(\d+)", Path(path).name)
    return int(m.group(1)) if m else None


def verify_best(folder: str | os.PathLike) -> dict[str, Any]:
    """The ``best.json`` of a ``best/`` folder after checking the files it lists (size and sha256).

    Raises:
        IncompleteTrainerCheckpointError: ``best.json`` is missing or unreadable, or a listed file differs.
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / BEST_FILE).read_text(encoding="utf-8"))
        if "files" in meta:
            verify_manifest(folder, meta["files"])
    except (OSError, ValueError, AttributeError) as exc:
        raise IncompleteTrainerCheckpointError(f"{folder} is not a complete best model: {exc}") from None
    return meta


def list_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    """``[(step, folder), ...]`` of the ``checkpoint-<step>`` folders in ``output_dir``, oldest first."""
    return sorted(
        (checkpoint_step(p), p) for p in output_dir.iterdir() if p.is_dir() and checkpoint_step(p) is not None
    )


def verify_trainer_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The ``trainer_state.json`` of a checkpoint after checking every file it lists (size and sha256).

    Raises:
        IncompleteTrainerCheckpointError: the state file is missing or unreadable, or a listed file is missing or
            changed.
    """
    path = Path(path)
    state_path = path / STATE_FILE
    try:
        saved = json.loads(state_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise IncompleteTrainerCheckpointError(f"{path} is not a complete training checkpoint: {exc}") from None
    try:
        verify_manifest(path, saved.get("files", {}) if isinstance(saved, dict) else None)
    except (IncompleteCheckpointError, UnsafeCheckpointError) as exc:
        raise IncompleteTrainerCheckpointError(f"{path} is not a complete training checkpoint: {exc}") from None
    return saved


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``output_dir`` (incomplete or damaged ones are skipped with a warning)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    recover_checkpoints(output_dir)
    for _, path in reversed(list_checkpoints(output_dir)):
        try:
            verify_trainer_checkpoint(path)
            return path
        except IncompleteTrainerCheckpointError as exc:
            logger.warning("Skipping %s", exc)
    return None


def recover_checkpoints(output_dir: str | os.PathLike) -> None:
    """Finish or undo checkpoint writes that were interrupted in ``output_dir`` (see
    :func:`hf_recsys.serialization.recover_save`), including the ``.tmp-``/``.old-`` folders of earlier versions."""
    output_dir = Path(output_dir)
    for p in list(output_dir.iterdir()):
        m = re.fullmatch(r"\.(.+)\.hfrs-(new|old)", p.name)
        if m:
            try:
                recover_save(output_dir / m.group(1))
            except FileNotFoundError:  # another process of the run recovered it first
                pass
            continue
        m = re.fullmatch(r"\.(tmp|old)-(.+)", p.name)
        final = output_dir / m.group(2) if m else None
        if final is not None and p.is_dir() and not final.exists() and checkpoint_step(final) is not None:
            try:
                verify_trainer_checkpoint(p)
            except IncompleteTrainerCheckpointError:
                continue
            logger.warning("Restoring %s from the complete copy %s (a write was interrupted).", final, p)
            try:
                os.replace(p, final)
            except FileNotFoundError:  # another process of the run restored it first
                pass


def write_atomically(
    accelerator, final: Path, write: Callable[[Path], None], per_process: Callable[[Path], None] | None = None,
    verify: Callable[[Path], Any] | None = None,
) -> None:  # fmt: skip
    """Write the folder ``final`` under a hidden staging name and swap it into place once complete, fsynced and
    verified (:func:`hf_recsys.serialization.commit_staging`), so that a folder with the final name is always
    complete.

    Args:
        accelerator: the run's ``Accelerator`` (the main process writes; every process waits for it).
        final: the folder to produce (an existing one is replaced).
        write: ``write(tmp)``, run on the main process, fills the staging folder.
        per_process: ``per_process(tmp)``, run on every process first (e.g. each process's RNG state).
        verify: ``verify(tmp)`` checks the staged folder before it is swapped in.

    Raises:
        hf_recsys.serialization.SaveError: the write failed (disk full, ...); ``final`` is as it was.
    """
    acc = accelerator
    tmp = staging_path(final)
    if acc.is_main_process:
        prepare_staging(final)
    acc.wait_for_everyone()
    try:
        if per_process is not None:
            per_process(tmp)
        acc.wait_for_everyone()
        if acc.is_main_process:
            write(tmp)
            commit_staging(final, verify, keep_foreign=False)
    except Exception as exc:
        if acc.is_main_process:
            abort_staging(final)
        if isinstance(exc, SaveError):
            raise
        raise SaveError(
            f"Writing {final} failed ({type(exc).__name__}: {exc}); earlier checkpoints are unchanged. Check the free "
            "disk space and file-size limits."
        ) from exc
    acc.wait_for_everyone()


def rotate_checkpoints(output_dir: Path, limit: int | None) -> list[Path]:
    """Delete the oldest checkpoints beyond ``limit``; returns the deleted folders."""
    if limit is None:
        return []
    found = sorted(
        (checkpoint_step(p), p) for p in output_dir.iterdir() if p.is_dir() and checkpoint_step(p) is not None
    )
    gone = [path for _, path in found[:-limit]]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    return gone


def set_aside_newer_checkpoints(output_dir: Path, step: int) -> list[Path]:
    """Rename the checkpoints written after ``step`` (an abandoned run, when resuming an older checkpoint) to
    ``abandoned-checkpoint-<n>``: rotation never deletes the resumed run's own checkpoints for them, ``latest`` never
    points at them, and nothing is deleted."""
    moved = []
    for p in sorted(output_dir.iterdir()):
        n = checkpoint_step(p)
        if p.is_dir() and n is not None and n > step:
            dest = output_dir / f"{ABANDONED_PREFIX}{p.name}"
            k = 1
            while dest.exists():
                dest, k = output_dir / f"{ABANDONED_PREFIX}{k}-{p.name}", k + 1
            os.replace(p, dest)
            moved.append(dest)
    if moved:
        logger.warning(
            "Resuming from step %d: the later checkpoints of the abandoned run were kept as %s.",
            step,
            ", ".join(p.name for p in moved),
        )
    return moved


# ---------------------------------------------------------------------------------------------- the output folder
_HELD_LOCKS: dict[str, Any] = {}


def acquire_output_lock(output_dir: str | os.PathLike) -> None:
    """Hold an exclusive lock on ``output_dir`` for the rest of this process (one run per output folder).

    Re-entrant within a process; released when the process exits (a killed run leaves no stale lock).

    Raises:
        OutputDirLockedError: another process holds the lock; the message names its pid.
    """
    import fcntl

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(output_dir)
    if key in _HELD_LOCKS:
        return
    f = open(output_dir / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.seek(0)
        holder = f.read().strip() or "unknown"
        f.close()
        raise OutputDirLockedError(
            f"{output_dir} is in use by another training run (pid {holder}): two runs writing one output folder "
            "would mix their checkpoints and weights. Wait for it to finish or choose another output_dir."
        ) from None
    f.truncate(0)
    f.write(str(os.getpid()))
    f.flush()
    _HELD_LOCKS[key] = f


# ---------------------------------------------------------------------------------------------- resuming
def data_fingerprint(train: Any) -> str:
    """A sha256 over the encoded training log (users, items, ratings, timestamps and sizes)."""
    h = hashlib.sha256()
    for name in ("user_idx", "item_idx", "rating", "timestamp"):
        value = getattr(train, name, None)
        if value is not None:
            arr = np.ascontiguousarray(value.numpy() if torch.is_tensor(value) else np.asarray(value))
            h.update(name.encode() + str(arr.dtype).encode() + arr.tobytes())
    h.update(f"{getattr(train, 'num_users', None)}/{getattr(train, 'num_items', None)}".encode())
    return h.hexdigest()


def check_resume(
    path: Path, saved: Mapping[str, Any], args: Mapping[str, Any], fingerprint: str, allow: Any = ()
) -> None:
    """Refuse to resume ``saved`` (a checkpoint's state) with changed training options or data.

    Args:
        path: the checkpoint, for messages.
        saved: its ``trainer_state.json``.
        args: this run's training options (``asdict(RecTrainingArguments)``).
        fingerprint: :func:`data_fingerprint` of this run's training data.
        allow: options the user explicitly allows to change (``"data"`` for the data), e.g. from
            ``resume_allow_changes`` (a list, or a comma-separated string).

    Raises:
        ResumeMismatchError: names each changed option with its old and new value.
    """
    allow = set(allow.split(",") if isinstance(allow, str) else allow or ())
    old = saved.get("args") or {}
    schedule = old.get("lr_scheduler_type", "constant")
    if schedule in LENGTH_FREE_SCHEDULES and schedule == args.get("lr_scheduler_type"):
        allow |= {"num_train_epochs", "max_steps"}  # training longer changes nothing done so far, nor the schedule
    changed = [
        f"{k}: {old[k]!r} -> {args.get(k)!r}"
        for k in RESUME_CHECKED_OPTIONS
        if k in old and k not in allow and not _same(old[k], args.get(k))
    ]
    if "data_fingerprint" in saved and saved["data_fingerprint"] != fingerprint and "data" not in allow:
        changed.append("data: the training interactions differ")
    if changed:
        raise ResumeMismatchError(
            f"Cannot resume from {path}: this run changes {'; '.join(changed)}. Resume with the same options and "
            "data, or allow the change explicitly (resume_allow_changes: "
            f"[{', '.join(c.split(':')[0] for c in changed)}])."
        )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    return str(a) == str(b)


# ---------------------------------------------------------------------------------------------- non-finite losses
class NonFiniteLossGuard:
    """Notes, without a device sync, the first optimiser step whose loss is NaN or infinite; :meth:`check` (before a
    checkpoint, a validation or a log) stops the run there, so no NaN checkpoint or ``best/`` is ever written."""

    def __init__(self):
        self.first_bad: torch.Tensor | None = None

    def update(self, loss: torch.Tensor | float, step: int) -> None:
        """Record ``step`` if ``loss`` is not finite (a device-side operation: no sync; a host ``float`` is checked
        on the host)."""
        if isinstance(loss, float):
            if math.isfinite(loss):
                return
            loss = torch.tensor(loss)
        if self.first_bad is None:
            self.first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad = ~torch.isfinite(loss) & (self.first_bad < 0)
        self.first_bad = torch.where(bad, torch.full_like(self.first_bad, step), self.first_bad)

    def check(self, accelerator, output_dir: Path | None = None) -> None:
        """Raise on every process if any process saw a non-finite loss.

        Raises:
            FloatingPointError: names the first step and the last complete checkpoint to resume from.
        """
        if self.first_bad is None:
            return
        steps = self.first_bad.reshape(1)
        if accelerator.num_processes > 1:  # every process takes part, so that all of them stop together
            steps = accelerator.gather(steps)
        steps = steps[steps >= 0]
        if len(steps) == 0:
            return
        step = int(steps.min().item())
        last = latest_checkpoint(output_dir) if output_dir is not None else None
        raise FloatingPointError(
            f"Training loss became NaN or infinite at step {step}: lower the learning rate, check the data (extreme "
            "ratings or weights) or use gradient clipping (max_grad_norm). Nothing was saved after that step; "
            + (f"the last good checkpoint is {last}." if last else "there is no earlier checkpoint.")
        )


__all__ = [
    "ABANDONED_PREFIX",
    "BEST_DIR",
    "BEST_FILE",
    "CHECKPOINT_PREFIX",
    "MODEL_STATE_FILE",
    "OPTIMIZER_FILE",
    "SCHEDULER_FILE",
    "STATE_FILE",
    "IncompleteTrainerCheckpointError",
    "NonFiniteLossGuard",
    "OutputDirLockedError",
    "RESUME_CHECKED_OPTIONS",
    "ResumeMismatchError",
    "acquire_output_lock",
    "check_resume",
    "checkpoint_manifest",
    "checkpoint_step",
    "data_fingerprint",
    "latest_checkpoint",
    "list_checkpoints",
    "recover_checkpoints",
    "rotate_checkpoints",
    "set_aside_newer_checkpoints",
    "sha256_file",
    "verify_best",
    "verify_trainer_checkpoint",
    "write_atomically",
]
