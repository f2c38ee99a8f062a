"""Retrying transient transport errors: exponential backoff with full jitter.

Rules (docs/transports.md):

- Only `TransportError`s with `transient=True` are retried; permanent ones (authentication, TLS or
  host-key verification, device errors, other 4xx) are raised at once.
- At most `limits.max_retries` retries (so `max_retries + 1` attempts); then the last error is raised.
- Delay before retry n (1-based) is uniform in [0, min(backoff_max, backoff_base * 2**(n-1))]
  ("full jitter"), and at least the error's `retry_after` (429/503 `Retry-After`). A `retry_after`
  longer than `backoff_max` is not waited out here: the error is raised so the caller can requeue.
- A non-idempotent call (create) is retried only when the request surely did not reach the device
  (connection refused, TLS/connect timeout, 429) or when the caller's `landed()` check (a list by
  natural key) says it did not land. If `landed()` says it landed, or fails, the original error is
  raised: the next reconcile lists the device and sees the item.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from vnf_operator.core.errors import TransportError

log = logging.getLogger(__name__)

T = TypeVar("T")

_NOT_DELIVERED = "_vnf_not_delivered"


class RetryPolicy(Protocol):
    """What retrying needs from the limits (`LimitSettings` or the dictionary's `Limits`)."""

    @property
    def max_retries(self) -> int: ...
    @property
    def backoff_base(self) -> float: ...
    @property
    def backoff_max(self) -> float: ...


def mark_not_delivered(err: TransportError) -> TransportError:
    """Record that the request surely never reached the device (safe to resend even a create)."""
    setattr(err, _NOT_DELIVERED, True)
    return err


def may_have_landed(err: TransportError) -> bool:
    """False only when the transport knows the request never reached the device."""
    return not getattr(err, _NOT_DELIVERED, False)


@dataclass(frozen=True)
class RetryEvent:
    """Passed to `on_retry` before each wait: attempt `attempt` failed, retrying after `delay`."""

    attempt: int
    delay: float
    error: TransportError
    max_retries: int


OnRetry = Callable[[RetryEvent], Awaitable[None] | None]
Landed = Callable[[], Awaitable[bool]]


def backoff_delay(
    retry: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Delay before retry number `retry` (1-based): full jitter, never below `retry_after`."""
    ceiling = min(cap, base * (2 ** (retry - 1)))
    delay = (rng or random).uniform(0.0, ceiling) if ceiling > 0 else 0.0
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    *,
    idempotent: bool,
    limits: RetryPolicy,
    landed: Landed | None = None,
    on_retry: OnRetry | None = None,
    rng: random.Random | None = None,
) -> T:
    """Run `fn`, retrying transient `TransportError`s per the rules above."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await fn()
        except TransportError as err:
            if not err.transient:
                raise
            if attempt > limits.max_retries:
                err.add_note(f"gave up after {attempt} attempt(s)")
                raise
            if not idempotent and may_have_landed(err):
                if landed is None:
                    err.add_note("not retried: the non-idempotent request may have reached the device")
                    raise
                try:
                    did_land = await landed()
                except Exception as check_err:
                    err.add_note(f"not retried: the landed() check failed ({type(check_err).__name__})")
                    raise err from check_err
                if did_land:
                    err.add_note("not retried: the request landed on the device despite the error")
                    raise
            delay = backoff_delay(
                attempt,
                base=limits.backoff_base,
                cap=limits.backoff_max,
                retry_after=err.retry_after,
                rng=rng,
            )
            if err.retry_after is not None and err.retry_after > limits.backoff_max:
                err.add_note(f"Retry-After {err.retry_after:g}s exceeds backoff_max; not waited out")
                raise
            event = RetryEvent(attempt=attempt, delay=delay, error=err, max_retries=limits.max_retries)
            log.info(
                "retrying after transient error (attempt %d of %d, in %.2fs): %s",
                attempt,
                limits.max_retries + 1,
                delay,
                err,
            )
            if on_retry is not None:
                result = on_retry(event)
                if inspect.isawaitable(result):
                    await result
            await asyncio.sleep(delay)
