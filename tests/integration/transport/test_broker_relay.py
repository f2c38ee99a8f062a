"""The reference broker, served over TLS, relaying to a real HTTPS device and a real sshd."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from transport_servers import (
    API_PASSWORD,
    PASSWORD,
    USER,
    Device,
    Pki,
    Sshd,
    free_port,
    server_ssl,
    wait_for_port,
)

from vnf_operator.broker.app import AllowList, BrokerConfig, TokenSource, create_app
from vnf_operator.core.errors import (
    AuthenticationError,
    DeviceError,
    TransportError,
    VerificationError,
)
from vnf_operator.core.rendered import CliCommands, HttpRequest
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport.broker import BrokerTransport
from vnf_operator.transport.settings import (
    HttpBasicAuth,
    HttpSessionAuth,
    HttpSettings,
    ReachSettings,
    SshSettings,
)

pytestmark = pytest.mark.integration

TOKEN = "broker-T0ken-5e7a1c"


@dataclass
class Broker:
    url: str
    config: BrokerConfig


@pytest.fixture
async def broker(pki: Pki) -> AsyncIterator[Broker]:
    config = BrokerConfig(
        tokens=TokenSource(token=TOKEN), allow=AllowList(["127.0.0.0/8"]), max_body_bytes=64_000
    )
    runner = web.AppRunner(create_app(config), shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl(pki.cert, pki.key)).start()
    try:
        yield Broker(url=f"https://127.0.0.1:{port}", config=config)
    finally:
        await runner.cleanup()


def reach(broker: Broker, pki: Pki, token: str = TOKEN) -> ReachSettings:
    return ReachSettings(mode="broker", broker_url=broker.url, broker_token=token, broker_ca_pem=pki.ca_pem)


def http_target(device: Device, pki: Pki, **kw: object) -> HttpSettings:
    base: dict[str, object] = {
        "name": "api",
        "appliance": "fw9",
        "base_url": device.url + "/api",
        "ca_pem": pki.ca_pem,
        "auth": HttpBasicAuth("admin", API_PASSWORD),
    }
    base.update(kw)
    return HttpSettings(**base)  # type: ignore[arg-type]


def ssh_target(sshd: Sshd, **kw: object) -> SshSettings:
    base: dict[str, object] = {
        "name": "cli",
        "appliance": "sw9",
        "host": sshd.address,
        "port": sshd.port,
        "username": USER,
        "password": PASSWORD,
        "host_key": sshd.host_key_line,
        "mode": "exec",
    }
    base.update(kw)
    return SshSettings(**base)  # type: ignore[arg-type]


async def test_http_relay(broker: Broker, device: Device, pki: Pki) -> None:
    t = BrokerTransport(http_target(device, pki), reach(broker, pki))
    try:
        resp = await t.send(
            HttpRequest(connection="api", method="GET", path="/basic/items"), operation="list"
        )
        assert resp.status == 200
        assert json.loads(resp.text) == {"items": [{"name": "a"}]}
        missing = await t.send(HttpRequest(connection="api", method="GET", path="/missing"), operation="read")
        assert missing.status == 404  # 4xx is returned, as with a direct transport
    finally:
        await t.aclose()
    assert device.hits["GET /api/basic/items"] == 1
    assert broker.config.stats["relayed"] == 2


async def test_ssh_relay_with_tofu(broker: Broker, plain_sshd: Sshd, pki: Pki) -> None:
    t = BrokerTransport(ssh_target(plain_sshd, host_key=None, trust_on_first_use=True), reach(broker, pki))
    try:
        resp = await t.run(
            CliCommands(connection="cli", commands=("echo via-broker",), mode="exec"), operation="x"
        )
        assert resp.outputs == ("via-broker",)
        assert t.host_key_fingerprint == plain_sshd.fingerprint
        assert t.host_key_line == plain_sshd.host_key_line
    finally:
        await t.aclose()


async def test_errors_keep_their_class_and_transient_flag(
    broker: Broker, device: Device, pki: Pki, plain_sshd: Sshd
) -> None:
    wrong_ca = BrokerTransport(http_target(device, pki, ca_pem=pki.other_ca_pem), reach(broker, pki))
    try:
        with pytest.raises(
            VerificationError, match=r"certificate verify failed for host 127\.0\.0\.1"
        ) as info:
            await wrong_ca.send(
                HttpRequest(connection="api", method="GET", path="/hello"), operation="health"
            )
        assert "fw9/api/health" in str(info.value)
        assert f"via broker 127.0.0.1:{broker.url.rsplit(':', 1)[1]}" in str(info.value)
    finally:
        await wrong_ca.aclose()

    broken = BrokerTransport(http_target(device, pki), reach(broker, pki))
    try:
        with pytest.raises(TransportError) as info2:
            await broken.send(HttpRequest(connection="api", method="GET", path="/broken"), operation="list")
        assert info2.value.transient and info2.value.status == 500
    finally:
        await broken.aclose()

    ssh = BrokerTransport(ssh_target(plain_sshd), reach(broker, pki))
    try:
        with pytest.raises(DeviceError, match="exit status 4"):
            await ssh.run(CliCommands(connection="cli", commands=("exit 4",), mode="exec"), operation="apply")
    finally:
        await ssh.aclose()


async def test_wrong_token_is_refused(broker: Broker, device: Device, pki: Pki) -> None:
    t = BrokerTransport(http_target(device, pki), reach(broker, pki, token="not-the-token"))
    try:
        with pytest.raises(AuthenticationError, match="refused the token"):
            await t.send(HttpRequest(connection="api", method="GET", path="/hello"), operation="health")
    finally:
        await t.aclose()
    assert device.hits["GET /api/hello"] == 0
    assert broker.config.stats["refused"] == 1


async def test_broker_tls_is_verified(broker: Broker, device: Device, pki: Pki) -> None:
    r = ReachSettings(
        mode="broker", broker_url=broker.url, broker_token=TOKEN, broker_ca_pem=pki.other_ca_pem
    )
    t = BrokerTransport(http_target(device, pki), r)
    try:
        with pytest.raises(VerificationError, match="broker"):
            await t.send(HttpRequest(connection="api", method="GET", path="/hello"), operation="health")
    finally:
        await t.aclose()


async def test_allow_list_and_size_limit(pki: Pki, device: Device) -> None:
    config = BrokerConfig(
        tokens=TokenSource(token=TOKEN), allow=AllowList(["10.0.0.0/8", "*.example.net"]), max_body_bytes=2000
    )
    runner = web.AppRunner(create_app(config), shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_ssl(pki.cert, pki.key)).start()
    b = Broker(url=f"https://127.0.0.1:{port}", config=config)
    try:
        t = BrokerTransport(http_target(device, pki), reach(b, pki))
        with pytest.raises(TransportError, match="allow-list") as info:
            await t.send(HttpRequest(connection="api", method="GET", path="/hello"), operation="health")
        assert not info.value.transient and info.value.status == 403
        big = HttpRequest(connection="api", method="POST", path="/items", json={"blob": "x" * 5000})
        with pytest.raises(TransportError, match="HTTP 413"):
            await t.send(big, operation="create")
        await t.aclose()
    finally:
        await runner.cleanup()
    assert device.hits["GET /api/hello"] == 0


async def test_no_secret_in_broker_logs_or_errors(
    broker: Broker, device: Device, pki: Pki, plain_sshd: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Brok3r-Wrong-Secret"
    login = HttpRequest(
        connection="api", method="POST", path="/session/login", json={"username": "admin", "password": wrong}
    )
    target = http_target(
        device,
        pki,
        auth=HttpSessionAuth(login=login, token_jsonpath="$.data.token"),
        masker=SecretMasker([wrong]),
    )
    t = BrokerTransport(target, reach(broker, pki))
    with pytest.raises(AuthenticationError) as info:
        await t.send(HttpRequest(connection="api", method="GET", path="/session/items"), operation="list")
    await t.aclose()
    assert "invalid password" in info.value.device_message  # the device echoed the password...

    ssh = BrokerTransport(
        ssh_target(plain_sshd, password=wrong, masker=SecretMasker([wrong])), reach(broker, pki)
    )
    with pytest.raises(AuthenticationError):
        await ssh.run(CliCommands(connection="cli", commands=("echo hi",), mode="exec"), operation="x")
    await ssh.aclose()

    ok = BrokerTransport(ssh_target(plain_sshd, masker=SecretMasker([PASSWORD])), reach(broker, pki))
    await ok.run(
        CliCommands(connection="cli", commands=(f"echo {PASSWORD} > /dev/null",), mode="exec"), operation="x"
    )
    await ok.aclose()

    for text in (str(info.value), info.value.device_message, caplog.text):
        for secret in (wrong, PASSWORD, TOKEN, API_PASSWORD):
            assert secret not in text  # ...but no secret reaches the error or any log line
    assert "relayed ssh sw9/x" in caplog.text


async def test_broker_process_from_the_command_line(tmp_path: Path, pki: Pki, device: Device) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    log = tmp_path / "broker.log"
    proc = await asyncio.to_thread(start_broker, port, token_file, pki, log)
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, proc, log, "broker")
        async with httpx.AsyncClient(verify=False) as client:
            health = await client.get(f"https://127.0.0.1:{port}/healthz")
            assert health.status_code == 200
        b = Broker(url=f"https://127.0.0.1:{port}", config=None)  # type: ignore[arg-type]
        t = BrokerTransport(http_target(device, pki), reach(b, pki))
        try:
            resp = await t.send(
                HttpRequest(connection="api", method="GET", path="/basic/items"), operation="list"
            )
            assert resp.status == 200
        finally:
            await t.aclose()
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
    text = await asyncio.to_thread(log.read_text)
    assert "relayed http fw9/list to 127.0.0.1" in text
    assert API_PASSWORD not in text and TOKEN not in text


def start_broker(port: int, token_file: Path, pki: Pki, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vnf_operator.broker",
            "--listen",
            f"127.0.0.1:{port}",
            "--token-file",
            str(token_file),
            "--tls-cert",
            str(pki.cert),
            "--tls-key",
            str(pki.key),
            "--allow",
            "127.0.0.1/32",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
    )


def test_broker_refuses_to_start_without_tls(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    result = subprocess.run(
        [sys.executable, "-m", "vnf_operator.broker", "--token-file", str(token_file)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "TLS is required" in result.stderr
