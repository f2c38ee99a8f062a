"""Retry rules of call_with_retry and the backoff arithmetic (no sockets; sleeps of 0 s)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vnf_operator.core.errors import AuthenticationError, DeviceError, TransportError
from vnf_operator.transport.retry import (
    RetryEvent,
    backoff_delay,
    call_with_retry,
    mark_not_delivered,
    may_have_landed,
)
from vnf_operator.transport.settings import LimitSettings

pytestmark = pytest.mark.unit

NO_WAIT = LimitSettings(max_retries=3, backoff_base=0.0001, backoff_max=0.001)


class Flaky:
    """Fails with the given errors, then returns "ok"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


def transient(**kw: object) -> TransportError:
    return TransportError("boom", transient=True, **kw)  # type: ignore[arg-type]


async def test_transient_errors_are_retried() -> None:
    fn = Flaky(transient(), transient())
    events: list[RetryEvent] = []
    assert await call_with_retry(fn, idempotent=True, limits=NO_WAIT, on_retry=events.append) == "ok"
    assert fn.calls == 3
    assert [e.attempt for e in events] == [1, 2]


async def test_async_on_retry_is_awaited() -> None:
    seen: list[int] = []

    async def on_retry(e: RetryEvent) -> None:
        seen.append(e.attempt)

    await call_with_retry(Flaky(transient()), idempotent=True, limits=NO_WAIT, on_retry=on_retry)
    assert seen == [1]


@pytest.mark.parametrize(
    "err",
    [
        TransportError("nope", transient=False),
        AuthenticationError("refused"),
        DeviceError("invalid"),
    ],
)
async def test_permanent_errors_are_not_retried(err: TransportError) -> None:
    fn = Flaky(err)
    with pytest.raises(type(err)):
        await call_with_retry(fn, idempotent=True, limits=NO_WAIT)
    assert fn.calls == 1


async def test_gives_up_after_max_retries() -> None:
    fn = Flaky(*(transient() for _ in range(10)))
    with pytest.raises(TransportError) as info:
        await call_with_retry(fn, idempotent=True, limits=NO_WAIT)
    assert fn.calls == NO_WAIT.max_retries + 1
    assert "gave up after 4 attempt(s)" in info.value.__notes__


async def test_zero_retries() -> None:
    fn = Flaky(transient())
    with pytest.raises(TransportError):
        await call_with_retry(fn, idempotent=True, limits=LimitSettings(max_retries=0))
    assert fn.calls == 1


async def test_non_idempotent_not_retried_when_it_may_have_landed() -> None:
    fn = Flaky(transient())
    with pytest.raises(TransportError) as info:
        await call_with_retry(fn, idempotent=False, limits=NO_WAIT)
    assert fn.calls == 1
    assert any("may have reached the device" in n for n in info.value.__notes__)


async def test_non_idempotent_retried_when_not_delivered() -> None:
    fn = Flaky(mark_not_delivered(transient()))
    assert await call_with_retry(fn, idempotent=False, limits=NO_WAIT) == "ok"
    assert fn.calls == 2


@pytest.mark.parametrize(("landed", "calls"), [(True, 1), (False, 2)])
async def test_landed_check_decides(landed: bool, calls: int) -> None:
    fn = Flaky(transient())
    checked = 0

    async def check() -> bool:
        nonlocal checked
        checked += 1
        return landed

    if landed:
        with pytest.raises(TransportError):
            await call_with_retry(fn, idempotent=False, landed=check, limits=NO_WAIT)
    else:
        assert await call_with_retry(fn, idempotent=False, landed=check, limits=NO_WAIT) == "ok"
    assert fn.calls == calls
    assert checked == 1


async def test_failing_landed_check_means_no_retry() -> None:
    fn = Flaky(transient())

    async def check() -> bool:
        raise TransportError("list failed too", transient=True)

    with pytest.raises(TransportError, match="boom"):
        await call_with_retry(fn, idempotent=False, landed=check, limits=NO_WAIT)
    assert fn.calls == 1


async def test_retry_after_sets_the_minimum_delay() -> None:
    events: list[RetryEvent] = []
    limits = LimitSettings(max_retries=2, backoff_base=0.0001, backoff_max=1.0)
    fn = Flaky(transient(retry_after=0.05, status=429))
    await call_with_retry(fn, idempotent=True, limits=limits, on_retry=events.append)
    assert events[0].delay >= 0.05


async def test_retry_after_beyond_backoff_max_is_left_to_the_caller() -> None:
    fn = Flaky(transient(retry_after=600.0, status=503))
    with pytest.raises(TransportError) as info:
        await call_with_retry(fn, idempotent=True, limits=NO_WAIT)
    assert fn.calls == 1
    assert info.value.retry_after == 600.0


def test_may_have_landed_default() -> None:
    assert may_have_landed(transient())
    assert not may_have_landed(mark_not_delivered(transient()))


@given(
    retry=st.integers(min_value=1, max_value=30),
    base=st.floats(min_value=0.001, max_value=5),
    cap=st.floats(min_value=0.001, max_value=60),
    retry_after=st.none() | st.floats(min_value=0, max_value=100),
    seed=st.integers(),
)
def test_backoff_bounds(retry: int, base: float, cap: float, retry_after: float | None, seed: int) -> None:
    delay = backoff_delay(retry, base=base, cap=cap, retry_after=retry_after, rng=random.Random(seed))
    ceiling = min(cap, base * 2 ** (retry - 1))
    if retry_after is None:
        assert 0 <= delay <= ceiling
    else:
        assert delay >= retry_after
        assert delay <= max(ceiling, retry_after)


def test_backoff_is_jittered_and_grows() -> None:
    rng = random.Random(7)
    first = [backoff_delay(1, base=1, cap=100, rng=rng) for _ in range(200)]
    fifth = [backoff_delay(5, base=1, cap=100, rng=rng) for _ in range(200)]
    assert len(set(first)) > 100  # full jitter, not a fixed delay
    assert max(first) <= 1 and max(fifth) <= 16
    assert sum(fifth) / 200 > sum(first) / 200
