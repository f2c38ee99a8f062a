"""Token bucket and concurrency limiter, and limits from the dictionary with appliance overrides."""

from __future__ import annotations

import asyncio

import pytest

from vnf_operator.core.model import Limits
from vnf_operator.transport.limits import Limiter, TokenBucket
from vnf_operator.transport.settings import LimitSettings

pytestmark = pytest.mark.unit


async def test_bucket_spends_saved_tokens_without_waiting() -> None:
    bucket = TokenBucket(rate=1000.0, capacity=3)
    for _ in range(3):
        await bucket.acquire()
    assert bucket.throttled == 0
    assert bucket.available < 1
    await bucket.acquire()
    assert bucket.throttled == 1


async def test_bucket_makes_callers_wait_for_refill() -> None:
    # 40 tokens at 2000/s with a capacity of 1: the later callers must have waited for tokens.
    bucket = TokenBucket(rate=2000.0, capacity=1)
    await asyncio.gather(*(bucket.acquire() for _ in range(40)))
    assert bucket.throttled >= 20


async def test_bucket_serves_in_arrival_order() -> None:
    bucket = TokenBucket(rate=5000.0, capacity=1)
    order: list[int] = []

    async def take(i: int) -> None:
        await bucket.acquire()
        order.append(i)

    await asyncio.gather(*(take(i) for i in range(20)))
    assert order == list(range(20))


def test_bucket_rejects_a_zero_rate() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


async def test_limiter_caps_concurrency() -> None:
    limiter = Limiter(LimitSettings(requests_per_second=1e6, max_concurrency=3))
    running = 0
    seen = 0
    gate = asyncio.Event()

    async def work() -> None:
        nonlocal running, seen
        async with limiter.slot():
            running += 1
            seen = max(seen, running)
            if running == 3:
                gate.set()
            await asyncio.wait_for(gate.wait(), 5)
            await asyncio.sleep(0)
            running -= 1

    await asyncio.gather(*(work() for _ in range(12)))
    assert seen == 3
    assert limiter.peak == 3
    assert limiter.active == 0


def test_limits_from_the_dictionary_and_overrides() -> None:
    declared = Limits(requests_per_second=5, max_concurrency=2, max_retries=3)
    assert LimitSettings.from_model(declared) == LimitSettings(
        requests_per_second=5, max_concurrency=2, max_retries=3, backoff_base=0.5, backoff_max=30.0
    )
    over = LimitSettings.from_model(declared, {"maxConcurrency": 1, "requests_per_second": 0.5, "burst": 2})
    assert (over.max_concurrency, over.requests_per_second, over.burst, over.max_retries) == (1, 0.5, 2, 3)
    assert LimitSettings.from_model(None) == LimitSettings()
    with pytest.raises(ValueError, match="unknown limit 'maxThings'"):
        LimitSettings.from_model(declared, {"maxThings": 1})
    with pytest.raises(ValueError):
        LimitSettings.from_model(declared, {"maxConcurrency": 0})
