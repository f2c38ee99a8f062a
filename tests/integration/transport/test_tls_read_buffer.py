"""The operator shrinks asyncio's per-connection TLS read buffer (controller/memory.py); answers
longer than the buffer still arrive whole, read in more chunks."""

from __future__ import annotations

import asyncio.sslproto

import pytest
from transport_servers import Device, Pki

from vnf_operator.controller import memory
from vnf_operator.core.rendered import HttpRequest
from vnf_operator.transport.http import HttpTransport
from vnf_operator.transport.settings import HttpSettings

pytestmark = pytest.mark.integration


def expected(kib: int) -> str:
    return "".join(f"{i:09d}\n" for i in range(kib * 1024 // 10 + 1))[: kib * 1024]


@pytest.mark.parametrize("buffer_kib", ["1", "32", "0"])
async def test_long_answers_arrive_whole_with_a_small_read_buffer(
    device: Device, pki: Pki, monkeypatch: pytest.MonkeyPatch, buffer_kib: str
) -> None:
    monkeypatch.setattr(asyncio.sslproto.SSLProtocol, "max_size", asyncio.sslproto.SSLProtocol.max_size)
    monkeypatch.setenv("VNF_TLS_READ_BUFFER_KIB", buffer_kib)
    memory.small_tls_read_buffers()
    wanted = 256 * 1024 if buffer_kib == "0" else int(buffer_kib) * 1024
    assert asyncio.sslproto.SSLProtocol.max_size == wanted

    t = HttpTransport(HttpSettings(name="api", base_url=device.url + "/api", ca_pem=pki.ca_pem))
    try:
        for kib in (1, 300):
            req = HttpRequest(connection="api", method="GET", path="/large", query={"kib": str(kib)})
            resp = await t.send(req, operation="list")
            assert resp.status == 200
            assert resp.text == expected(kib)
    finally:
        await t.aclose()
