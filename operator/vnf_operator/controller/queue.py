"""A work queue with controller-runtime semantics, on asyncio.

kopf gives one task per object and no way to bound how many reconciles run at once or to
coalesce bursts. This queue does: a key waiting in the queue is there once however often it is
added; a key being processed is never processed twice at once (a re-add while processing runs
it again afterwards); delayed adds serve resync and error backoff; a fixed pool of workers bounds
concurrency (and so the load on devices and the apiserver).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
log = logging.getLogger(__name__)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._queue: asyncio.Queue[K] = asyncio.Queue()
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        self._delayed: list[tuple[float, int, K]] = []
        self._delayed_at: dict[K, float] = {}
        self._seq = 0
        self._wakeup = asyncio.Event()
        self.adds = 0

    def __len__(self) -> int:
        return len(self._dirty)

    @property
    def depth(self) -> int:
        return len(self._dirty)

    @property
    def active(self) -> int:
        return len(self._processing)

    def add(self, key: K) -> None:
        self.adds += 1
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._queue.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Add `key` after `delay` seconds; an earlier pending delayed add wins."""
        if delay <= 0:
            self.add(key)
            return
        due = time.monotonic() + delay
        if self._delayed_at.get(key, float("inf")) <= due:
            return
        self._delayed_at[key] = due
        self._seq += 1
        heapq.heappush(self._delayed, (due, self._seq, key))
        self._wakeup.set()

    def forget(self, key: K) -> None:
        """Drop pending delayed adds of a deleted object."""
        self._delayed_at.pop(key, None)

    @contextlib.asynccontextmanager
    async def holding(self, key: K) -> AsyncIterator[bool]:
        """Hold `key` as a worker would: no worker starts it meanwhile (an add, or an earlier one still
        waiting, runs it afterwards). Yields False, holding nothing, while it is being processed."""
        if key in self._processing:
            yield False
            return
        self._processing.add(key)
        try:
            yield True
        finally:
            self._done(key)

    async def _get(self) -> K:
        while True:
            key = await self._queue.get()
            if key in self._processing:  # held (`holding`): queued again when released
                continue
            self._dirty.discard(key)
            self._processing.add(key)
            return key

    def _done(self, key: K) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.put_nowait(key)

    async def _release_delayed(self) -> None:
        while True:
            now = time.monotonic()
            while self._delayed and self._delayed[0][0] <= now:
                due, _, key = heapq.heappop(self._delayed)
                if self._delayed_at.get(key) == due:
                    del self._delayed_at[key]
                    self.add(key)
            timeout = self._delayed[0][0] - now if self._delayed else None
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    async def run(self, workers: int, handle: Callable[[K], Awaitable[None]]) -> None:
        """Run `workers` workers until cancelled. `handle` must not raise; failures are logged."""

        async def worker() -> None:
            while True:
                key = await self._get()
                try:
                    await handle(key)
                except asyncio.CancelledError:
                    raise
                except Exception:  # a bug must not kill the worker pool
                    log.exception("unhandled error while processing %s", key)
                    self.add_after(key, 5.0 + random.random())
                finally:
                    self._done(key)

        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._release_delayed())
            for _ in range(workers):
                tg.create_task(worker())


def jittered(seconds: float, fraction: float = 0.1) -> float:
    """Spread resyncs so thousands of appliances do not hit their devices at the same instant."""
    return seconds * (1 - fraction + 2 * fraction * random.random())
