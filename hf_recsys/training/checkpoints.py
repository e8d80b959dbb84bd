"""Training checkpoints: the files, their verification, and atomic writes.

A checkpoint folder ``checkpoint-<step>`` holds the model (safetensors), the optimizer and scheduler states
(``torch.save``, read back with ``weights_only=True``), one RNG state per process (safetensors) and
``trainer_state.json``: the data position, the early-stopping state and the size and sha256 of every other file.
It is written under a hidden temporary name, fsynced and renamed (:func:`write_atomically`), so a folder with the
final name is complete; :func:`latest_checkpoint` also verifies the hashes and skips a damaged one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHECKPOINT_PREFIX = "checkpoint-"
STATE_FILE = "trainer_state.json"
MODEL_STATE_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"
SCHEDULER_FILE = "scheduler.pt"
BEST_DIR = "best"


class IncompleteTrainerCheckpointError(OSError):
    """A training checkpoint is missing a file, or a file differs from what its ``trainer_state.json`` lists."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def checkpoint_step(path: str | os.PathLike) -> int | None:
    m = re.fullmatch(CHECKPOINT_PREFIX + r"(\d+)", Path(path).name)
    return int(m.group(1)) if m else None


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
    bad = []
    for name, meta in saved.get("files", {}).items():
        f = path / name
        if not f.is_file() or f.stat().st_size != meta["size"] or sha256_file(f) != meta["sha256"]:
            bad.append(name)
    if bad:
        raise IncompleteTrainerCheckpointError(
            f"{path} is not a complete training checkpoint: missing or changed: {', '.join(bad)}."
        )
    return saved


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint in ``output_dir`` (incomplete or damaged ones are skipped with a warning)."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = sorted(
        (checkpoint_step(p), p) for p in output_dir.iterdir() if p.is_dir() and checkpoint_step(p) is not None
    )
    for _, path in reversed(found):
        try:
            verify_trainer_checkpoint(path)
            return path
        except IncompleteTrainerCheckpointError as exc:
            logger.warning("Skipping %s", exc)
    return None


def write_atomically(
    accelerator, final: Path, write: Callable[[Path], None], per_process: Callable[[Path], None] | None = None
) -> None:
    """Write the folder ``final`` under a hidden temporary name and rename it into place once complete and fsynced,
    so that a folder with the final name is always complete.

    Args:
        accelerator: the run's ``Accelerator`` (the main process writes; every process waits for it).
        final: the folder to produce (an existing one is replaced).
        write: ``write(tmp)``, run on the main process, fills the temporary folder.
        per_process: ``per_process(tmp)``, run on every process first (e.g. each process's RNG state).
    """
    acc = accelerator
    tmp = final.parent / f".tmp-{final.name}"
    if acc.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    acc.wait_for_everyone()
    if per_process is not None:
        per_process(tmp)
    acc.wait_for_everyone()
    if acc.is_main_process:
        write(tmp)
        for f in tmp.iterdir():
            _fsync_file(f)
        _fsync_dir(tmp)
        old = final.parent / f".old-{final.name}"
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
        os.replace(tmp, final)
        _fsync_dir(final.parent)
        shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


__all__ = [
    "BEST_DIR",
    "CHECKPOINT_PREFIX",
    "MODEL_STATE_FILE",
    "OPTIMIZER_FILE",
    "SCHEDULER_FILE",
    "STATE_FILE",
    "IncompleteTrainerCheckpointError",
    "checkpoint_step",
    "latest_checkpoint",
    "sha256_file",
    "verify_trainer_checkpoint",
    "write_atomically",
]
