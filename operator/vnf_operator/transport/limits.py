"""Per-appliance limits: a token-bucket rate limiter and a concurrency semaphore.

The dictionary declares `limits` (requests per second, concurrent requests); an appliance may
override them (`LimitSettings.from_model`). One `Limiter` is shared by every connection of one
appliance, so an HTTP API and an SSH CLI on the same device share its budget. Every attempt of a
request (retries and session logins included) takes a token; waiting never blocks the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from vnf_operator.transport.settings import LimitSettings


class TokenBucket:
    """`rate` tokens per second, at most `capacity` saved up; `acquire` waits for one token.

    Waiters are served in arrival order (the lock is FIFO), so a burst of callers is spread out
    evenly instead of racing.
    """

    def __init__(self, rate: float, capacity: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = rate
        self.capacity = max(1.0, capacity if capacity is not None else rate)
        self._tokens = self.capacity
        self._updated: float | None = None
        self._lock = asyncio.Lock()
        self.throttled = 0
        """How many acquisitions had to wait for a token (metrics, tests)."""

    def _refill(self, now: float) -> None:
        if self._updated is not None:
            self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self, tokens: float = 1.0) -> float:
        """Take `tokens`; returns how long this call waited (seconds, loop clock)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with self._lock:
            waited = False
            while True:
                now = loop.time()
                self._refill(now)
                if self._tokens >= tokens:
                    self._tokens -= tokens
                    self.throttled += waited
                    return loop.time() - start
                waited = True
                await asyncio.sleep((tokens - self._tokens) / self.rate)

    @property
    def available(self) -> float:
        return self._tokens


class Limiter:
    """Rate and concurrency limits of one appliance."""

    def __init__(self, settings: LimitSettings | None = None) -> None:
        self.settings = settings or LimitSettings()
        self.bucket = TokenBucket(self.settings.requests_per_second, self.settings.burst)
        self._concurrency = asyncio.Semaphore(self.settings.max_concurrency)
        self._active = 0
        self.peak = 0
        """Highest number of concurrent slots seen (for metrics and tests)."""

    @property
    def active(self) -> int:
        return self._active

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of `max_concurrency` slots and one rate token for the duration of a request."""
        async with self._concurrency:
            await self.bucket.acquire()
            self._active += 1
            self.peak = max(self.peak, self._active)
            try:
                yield
            finally:
                self._active -= 1

    async def token(self) -> None:
        """One more rate token inside a held slot (a session login before the request)."""
        await self.bucket.acquire()


UNLIMITED = LimitSettings(requests_per_second=1e9, max_concurrency=1_000_000, burst=1e9)
