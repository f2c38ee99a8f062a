"""TLS verification of HttpTransport against real HTTPS servers with a test CA."""

from __future__ import annotations

import json

import pytest
from transport_servers import Device, DeviceFactory, Pki

from vnf_operator.core.errors import TransportError, VerificationError
from vnf_operator.core.rendered import HttpRequest
from vnf_operator.transport.http import HttpTransport, shared_ssl_context
from vnf_operator.transport.settings import HttpSettings

pytestmark = pytest.mark.integration

HELLO = HttpRequest(connection="api", method="GET", path="/hello")


async def send(settings: HttpSettings) -> int | None:
    t = HttpTransport(settings)
    try:
        return (await t.send(HELLO, operation="health")).status
    finally:
        await t.aclose()


async def test_right_ca_verifies(device: Device, pki: Pki) -> None:
    assert await send(HttpSettings(name="api", base_url=device.url + "/api", ca_pem=pki.ca_pem)) == 200


async def test_wrong_ca_is_refused_clearly(device: Device, pki: Pki) -> None:
    s = HttpSettings(name="api", appliance="fw1", base_url=device.url + "/api", ca_pem=pki.other_ca_pem)
    with pytest.raises(VerificationError) as info:
        await send(s)
    message = str(info.value)
    assert "TLS certificate verify failed for host 127.0.0.1" in message
    assert "fw1/api/health" in message
    assert not info.value.transient
    assert device.hits["GET /api/hello"] == 0


async def test_system_bundle_does_not_trust_the_test_ca(device: Device) -> None:
    with pytest.raises(VerificationError, match="certificate verify failed"):
        await send(HttpSettings(name="api", base_url=device.url + "/api"))


async def test_verify_false_skips_verification(device: Device, pki: Pki) -> None:
    s = HttpSettings(name="api", base_url=device.url + "/api", ca_pem=pki.other_ca_pem, verify=False)
    assert await send(s) == 200


async def test_server_name_is_checked_instead_of_the_address(device_factory: DeviceFactory, pki: Pki) -> None:
    named = await device_factory(cert="named")  # the certificate names only device.test
    base = named.url + "/api"
    with pytest.raises(VerificationError, match=r"for host 127\.0\.0\.1"):
        await send(HttpSettings(name="api", base_url=base, ca_pem=pki.ca_pem))
    assert (
        await send(HttpSettings(name="api", base_url=base, ca_pem=pki.ca_pem, server_name="device.test"))
        == 200
    )
    with pytest.raises(VerificationError, match=r"for host other\.test"):
        await send(HttpSettings(name="api", base_url=base, ca_pem=pki.ca_pem, server_name="other.test"))


async def test_plain_http_and_host_header(device_factory: DeviceFactory) -> None:
    plain = await device_factory(tls=False)
    t = HttpTransport(HttpSettings(name="api", base_url=plain.url + "/api"))
    try:
        resp = await t.send(HELLO, operation="health")
        assert json.loads(resp.text)["host"] == plain.url.removeprefix("http://")
    finally:
        await t.aclose()


async def test_ssl_contexts_are_shared_per_ca(pki: Pki) -> None:
    ctx = await shared_ssl_context(pki.ca_pem)
    assert await shared_ssl_context(pki.ca_pem) is ctx
    assert await shared_ssl_context(pki.other_ca_pem) is not ctx


async def test_bad_ca_pem_is_a_verification_error(device: Device) -> None:
    with pytest.raises(VerificationError, match="not valid PEM"):
        await send(HttpSettings(name="api", base_url=device.url, ca_pem="-----BEGIN CERTIFICATE-----\nxx\n"))


async def test_closed_port_is_transient() -> None:
    from transport_servers import free_port

    with pytest.raises(TransportError) as info:
        await send(HttpSettings(name="api", base_url=f"https://127.0.0.1:{free_port()}"))
    assert info.value.transient
    assert "cannot connect to 127.0.0.1" in str(info.value)
