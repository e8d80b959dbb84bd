"""Per-epoch training history for ``train_results.json`` and a PNG of the curves.

:class:`EpochTimer` logs each epoch's duration as ``train/epoch_seconds`` through the trainer, so it lands in the
trackers and in ``state.log_history`` — which checkpoints save, so a resumed run still knows the earlier epochs.
:func:`epoch_history` turns the log history into one row per epoch (loss, validation metrics, seconds).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from .trainer import TrainerCallback

logger = logging.getLogger(__name__)

EPOCH_SECONDS = "train/epoch_seconds"


class EpochTimer(TrainerCallback):
    """Logs ``train/epoch_seconds`` at the end of every epoch: the time this run spent in it (a resumed epoch
    counts from the resume)."""

    def on_train_begin(self, trainer) -> None:
        self.started = self.epoch_started = time.perf_counter()

    def on_step_end(self, trainer) -> None:
        state = trainer.state
        if state.step_in_epoch == state.steps_per_epoch:
            now = time.perf_counter()
            trainer.log({EPOCH_SECONDS: now - self.epoch_started})
            self.epoch_started = now

    def seconds_after_last_epoch(self) -> float:
        """Time of this run not yet counted in an ``epoch_seconds`` entry (a partial last epoch, the end)."""
        return time.perf_counter() - self.epoch_started


def epoch_history(log_history: list[dict[str, Any]], steps_per_epoch: int) -> list[dict[str, Any]]:
    """One row per completed epoch: ``epoch``, ``step``, ``loss`` (mean of the losses logged in it), ``seconds``
    and the validation metrics of its last step (``eval/...`` keys without the prefix)."""
    rows: dict[int, dict[str, Any]] = {}
    losses: dict[int, list[float]] = {}
    for entry in log_history:
        step = int(entry["step"])
        epoch = (step - 1) // max(steps_per_epoch, 1) + 1
        row = rows.setdefault(epoch, {"epoch": epoch, "step": step})
        row["step"] = max(row["step"], step)
        if "train/loss" in entry:
            losses.setdefault(epoch, []).append(float(entry["train/loss"]))
        if EPOCH_SECONDS in entry:
            row["seconds"] = round(float(entry[EPOCH_SECONDS]), 3)
        for key, value in entry.items():
            if key.startswith("eval/") and step % max(steps_per_epoch, 1) == 0:
                row[key[len("eval/") :]] = value
    for epoch, values in losses.items():
        rows[epoch]["loss"] = sum(values) / len(values)
    return [rows[e] for e in sorted(rows) if rows[e]["step"] % max(steps_per_epoch, 1) == 0]


def plot_history(history: list[dict[str, Any]], path: str | Path, metric: str | None = None) -> Path | None:
    """Write the loss and validation curves as a PNG; returns its path, or ``None`` (with a one-line warning)
    when matplotlib is not installed or there is nothing to plot."""
    if not history:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning('No training curves plot: matplotlib is missing (pip install "hf-recsys[train]").')
        return None
    epochs = [row["epoch"] for row in history]
    metrics = [k for k in history[-1] if "@" in k and not k.startswith(("num_", "skipped"))]
    shown = [metric] if metric in metrics else metrics[:3]
    fig, axes = plt.subplots(1, 2 if shown else 1, figsize=(10 if shown else 5, 3.6), squeeze=False)
    ax = axes[0][0]
    ax.plot(epochs, [row.get("loss") for row in history], marker="o", ms=3)
    ax.set(title="training loss", xlabel="epoch", ylabel="loss")
    ax.grid(alpha=0.3)
    if shown:
        ax = axes[0][1]
        for key in shown:
            ax.plot(epochs, [row.get(key) for row in history], marker="o", ms=3, label=key)
        ax.set(title="validation", xlabel="epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["EPOCH_SECONDS", "EpochTimer", "epoch_history", "plot_history"]
