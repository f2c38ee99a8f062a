"""Retries against a real device: 429 + Retry-After, 5xx, read timeouts, creates and landed()."""

from __future__ import annotations

import random

import pytest
from transport_servers import Device, Pki, free_port

from vnf_operator.core.errors import TransportError
from vnf_operator.core.rendered import HttpRequest, RawResponse
from vnf_operator.transport.http import HttpTransport
from vnf_operator.transport.retry import RetryEvent, call_with_retry
from vnf_operator.transport.settings import HttpSettings, LimitSettings

pytestmark = pytest.mark.integration

FAST = LimitSettings(max_retries=3, backoff_base=0.01, backoff_max=2.0)


def transport(device: Device, pki: Pki, **kw: object) -> HttpTransport:
    return HttpTransport(HttpSettings(name="api", base_url=device.url + "/api", ca_pem=pki.ca_pem, **kw))  # type: ignore[arg-type]


async def test_429_retry_after_is_honoured(device: Device, pki: Pki) -> None:
    device.fail_429 = 2
    device.retry_after = "1"
    events: list[RetryEvent] = []
    t = transport(device, pki)
    try:
        resp = await call_with_retry(
            lambda: t.send(HttpRequest(connection="api", method="GET", path="/limited"), operation="list"),
            idempotent=True,
            limits=FAST,
            on_retry=events.append,
            rng=random.Random(1),
        )
    finally:
        await t.aclose()
    assert resp.status == 200
    assert device.hits["GET /api/limited"] == 3
    assert [e.attempt for e in events] == [1, 2]
    assert all(e.delay >= 1.0 for e in events)  # the jittered backoff alone would be < 0.04s
    assert all(e.error.status == 429 and e.error.retry_after == 1.0 for e in events)


async def test_5xx_retried_then_given_up(device: Device, pki: Pki) -> None:
    events: list[RetryEvent] = []
    t = transport(device, pki)
    try:
        with pytest.raises(TransportError) as info:
            await call_with_retry(
                lambda: t.send(HttpRequest(connection="api", method="GET", path="/broken"), operation="list"),
                idempotent=True,
                limits=FAST,
                on_retry=events.append,
            )
    finally:
        await t.aclose()
    assert device.hits["GET /api/broken"] == FAST.max_retries + 1
    assert len(events) == FAST.max_retries
    assert info.value.status == 500
    assert "internal error" in info.value.device_message
    assert any("gave up after 4 attempt(s)" in n for n in info.value.__notes__)


async def test_read_timeout_is_transient(device: Device, pki: Pki) -> None:
    t = transport(device, pki, read_timeout=0.3)
    try:
        with pytest.raises(TransportError) as info:
            await t.send(HttpRequest(connection="api", method="GET", path="/slow"), operation="list")
    finally:
        await t.aclose()
    assert info.value.transient
    assert "read timeout" in str(info.value)


async def test_per_request_timeout_overrides(device: Device, pki: Pki) -> None:
    t = transport(device, pki, read_timeout=30.0)
    try:
        with pytest.raises(TransportError, match=r"within 0\.2s"):
            await t.send(
                HttpRequest(connection="api", method="GET", path="/slow", timeout=0.2), operation="list"
            )
    finally:
        await t.aclose()


def create_request() -> HttpRequest:
    return HttpRequest(connection="api", method="POST", path="/items", json={"name": "web"})


async def test_create_not_retried_after_timeout(device: Device, pki: Pki) -> None:
    device.slow_creates = 1
    t = transport(device, pki, read_timeout=0.3)
    try:
        with pytest.raises(TransportError) as info:
            await call_with_retry(
                lambda: t.send(create_request(), operation="create", idempotent=False),
                idempotent=False,
                limits=FAST,
            )
    finally:
        await t.aclose()
    assert device.hits["POST /api/items"] == 1
    assert "may have reached the device" in str(info.value)


@pytest.mark.parametrize("landed_on_device", [True, False])
async def test_create_retried_only_when_landed_says_no(
    device: Device, pki: Pki, landed_on_device: bool
) -> None:
    device.slow_creates = 1
    t = transport(device, pki, read_timeout=0.3)
    checks: list[bool] = []

    async def landed() -> bool:
        # The engine lists the items by natural key; here the device's own record says it.
        if not landed_on_device:
            device.created.clear()  # the device lost it: it did not land
        checks.append(bool(device.created))
        return bool(device.created)

    async def create() -> RawResponse:
        return await t.send(create_request(), operation="create", idempotent=False)

    try:
        if landed_on_device:
            with pytest.raises(TransportError):
                await call_with_retry(create, idempotent=False, landed=landed, limits=FAST)
            assert device.hits["POST /api/items"] == 1
        else:
            resp = await call_with_retry(create, idempotent=False, landed=landed, limits=FAST)
            assert resp.status == 201
            assert device.hits["POST /api/items"] == 2
    finally:
        await t.aclose()
    assert checks == [landed_on_device]


async def test_create_retried_when_it_never_left() -> None:
    t = HttpTransport(HttpSettings(name="api", base_url=f"http://127.0.0.1:{free_port()}"))
    events: list[RetryEvent] = []
    try:
        with pytest.raises(TransportError, match="cannot connect"):
            await call_with_retry(
                lambda: t.send(create_request(), operation="create", idempotent=False),
                idempotent=False,
                limits=FAST,
                on_retry=events.append,
            )
    finally:
        await t.aclose()
    assert len(events) == FAST.max_retries  # connection refused: the create surely did not land


async def test_4xx_not_retried(device: Device, pki: Pki) -> None:
    t = transport(device, pki)
    try:
        resp = await call_with_retry(
            lambda: t.send(HttpRequest(connection="api", method="GET", path="/missing"), operation="read"),
            idempotent=True,
            limits=FAST,
        )
    finally:
        await t.aclose()
    assert resp.status == 404
    assert device.hits["GET /api/missing"] == 1
