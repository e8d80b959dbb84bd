"""Micro-batching: concurrent requests that ask the same kind of question are answered by one model call."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class MicroBatcher:
    """Collects requests for up to ``max_wait_ms`` (or ``max_batch`` rows), groups them by key and answers each
    group with one call of ``fn(key, payloads) -> results`` in a single worker thread (the model is used by one
    thread at a time; the event loop stays free to accept requests meanwhile).

    A group whose call fails is split in halves and retried, so one bad request (an unknown id) fails alone.
    Requests whose client went away are skipped when their answer is ready.

    Args:
        fn: answers a list of payloads sharing a key, in order.
        max_batch: most payloads per model call.
        max_wait_ms: how long the first request of a batch waits for others.
    """

    def __init__(self, fn: Callable[[Hashable, list], list], max_batch: int = 256, max_wait_ms: float = 2.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, got {max_batch} and {max_wait_ms}.")
        self.fn, self.max_batch, self.max_wait = fn, int(max_batch), float(max_wait_ms) / 1000.0
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-recsys-model")
        self.queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self.calls = 0  # model calls made (a test checks that concurrent requests share them)

    def start(self) -> None:
        self.queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, func: Callable[..., Any], *args) -> Any:
        """Run ``func(*args)`` on the model thread (for calls that are not batched)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    async def submit(self, key: Hashable, payload: Any) -> Any:
        """Queue ``payload`` under ``key`` and wait for its result."""
        fut = asyncio.get_running_loop().create_future()
        await self.queue.put((key, payload, fut))
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.max_batch:
                try:
                    batch.append(self.queue.get_nowait())
                    continue
                except asyncio.QueueEmpty:
                    pass
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.queue.get(), left))
                except asyncio.TimeoutError:
                    break
            groups: dict[Hashable, list] = {}
            for key, payload, fut in batch:
                if not fut.done():  # a cancelled request (client gone) needs no answer
                    groups.setdefault(key, []).append((payload, fut))
            for key, items in groups.items():
                await self._answer(key, items)

    async def _answer(self, key: Hashable, items: list) -> None:
        try:
            self.calls += 1
            results = await self.run(self.fn, key, [p for p, _ in items])
            for (_, fut), res in zip(items, results):
                if not fut.done():
                    fut.set_result(res)
        except Exception as exc:
            if len(items) == 1:
                if not items[0][1].done():
                    items[0][1].set_exception(exc)
                return
            half = len(items) // 2  # isolate the failing request by bisection: about 2 log2(n) more calls
            await self._answer(key, items[:half])
            await self._answer(key, items[half:])


__all__ = ["MicroBatcher"]
