"""Online updates of a served model: ``POST /feedback`` events passed to ``model.partial_fit`` off the request path.

``hf-recsys serve MODEL --online-updates`` (``create_app(model, online_updates=True)``): each accepted feedback
batch is logged first (as without the option), then queued; one updater thread applies everything queued in one
``model.partial_fit(events)`` call, under the lock every model call holds, so a request never sees a half-updated
model. Events that arrive during an update wait for the next one. A failed update is reported (``/feedback``'s
answer and ``GET /metadata``'s ``online_updates``: the error, the events it dropped) and the model is left as
``partial_fit`` left it; the events stay in the feedback log. A model with an ANN index gets its index rebuilt
with the same parameters after each update (the old one would be stale).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa


def _update_columns(model) -> dict[str, str] | None:
    """The canonical columns of the log the model was fitted on (``config.fitted_log``), or ``None`` if unknown."""
    fitted = getattr(model.config, "fitted_log", None) or {}
    return fitted.get("columns")


def events_table(model, events: list) -> pa.Table:
    """The feedback events as a log with the columns of the one ``model`` was fitted on.

    ``timestamp`` (always set by the server) is left out when the fitted log had none; a fitted log with ratings
    needs a rating on every event.

    Raises:
        ValueError: an event lacks a rating the model needs (the update would change the log's kinds).
    """
    columns = _update_columns(model)
    data: dict[str, list] = {"user_id": [e["user_id"] for e in events], "item_id": [e["item_id"] for e in events]}
    if columns is None:  # saved before partial_fit recorded the fitted log: pass what the events have
        need_rating, need_time = all("rating" in e for e in events), True
    else:
        need_rating, need_time = "rating" in columns, "timestamp" in columns
    if need_rating:
        missing = sum("rating" not in e for e in events)
        if missing:
            raise ValueError(
                f"{missing} feedback event(s) have no rating, but the model was fitted on ratings: partial_fit "
                "needs a rating on every event."
            )
        data["rating"] = [float(e["rating"]) for e in events]
    if need_time:
        data["timestamp"] = [int(e["timestamp"]) for e in events]
    return pa.table(data)


class OnlineUpdater:
    """Applies queued feedback events to a model with ``partial_fit`` in a background thread, under ``lock``.

    Args:
        model: the served model (it must have ``partial_fit``).
        lock: the lock every model call of the server holds.
        **options: passed to ``model.partial_fit`` (e.g. ``epochs`` for gradient families).
    """

    def __init__(self, model, lock: threading.Lock, **options: Any):
        if not callable(getattr(model, "partial_fit", None)):
            raise ValueError(
                f"--online-updates needs model.partial_fit, which {type(model).__name__} does not have in this "
                "version of hf-recsys."
            )
        self.model, self.lock, self.options = model, lock, options
        self._pending: list[dict] = []
        self._cond = threading.Condition()
        self._busy = False
        self._closed = False
        self.status: dict[str, Any] = {
            "updates": 0,
            "events_applied": 0,
            "events_failed": 0,
            "last_error": None,
            "last_update_seconds": None,
        }
        self._thread = threading.Thread(target=self._run, name="hf-recsys-online-updates", daemon=True)
        self._thread.start()

    def submit(self, events: list[dict]) -> None:
        """Queue events (dicts with ``user_id``, ``item_id``, ``rating``?, ``timestamp``) for the next update."""
        with self._cond:
            self._pending.extend(events)
            self._cond.notify()

    def snapshot(self) -> dict[str, Any]:
        with self._cond:
            return {**self.status, "pending": len(self._pending), "updating": self._busy}

    def wait(self, timeout: float = 60.0) -> bool:
        """Block until nothing is pending or being applied (tests, shutdown); ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                events, self._pending, self._busy = self._pending, [], True
            error = self._apply(events)
            with self._cond:
                self._busy = False
                if error is None:
                    self.status["updates"] += 1
                    self.status["events_applied"] += len(events)
                else:
                    self.status["events_failed"] += len(events)
                self.status["last_error"] = error
                self._cond.notify_all()

    def _apply(self, events: list[dict]) -> str | None:
        t0 = time.perf_counter()
        try:
            table = events_table(self.model, events)
            with self.lock:
                self.model.partial_fit(table, **self.options)
                index = getattr(self.model, "item_index", None)
                if index is not None:  # the item vectors changed: the old index is stale
                    info = index.info
                    self.model.build_index(info["kind"], recall_k=info.get("recall_k", 10), **info["params"])
                self.model.eval()
        except Exception as exc:  # reported, never raised into the server
            return f"{type(exc).__name__}: {exc}"
        finally:
            self.status["last_update_seconds"] = round(time.perf_counter() - t0, 4)
        return None


__all__ = ["OnlineUpdater", "events_table"]
