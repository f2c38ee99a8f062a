"""Reaching devices through a real SSH jump host (second sshd) and a real HTTP proxy (tinyproxy)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable

import asyncssh
import pytest
from transport_servers import PASSWORD, USER, DeviceFactory, Pki, Sshd, SshUser, Tinyproxy, wait_until

from vnf_operator.core.errors import TransportError, VerificationError
from vnf_operator.core.rendered import CliCommands, HttpRequest
from vnf_operator.transport.reach import HttpProxyDialer, JumpHost, make_http, make_ssh
from vnf_operator.transport.settings import HttpSettings, JumpHostSettings, ReachSettings, SshSettings

pytestmark = pytest.mark.integration

HELLO = HttpRequest(connection="api", method="GET", path="/hello")
SHOW = CliCommands(connection="cli", commands=("show version",))


def jump_settings(jump: Sshd, user: SshUser, **kw: object) -> JumpHostSettings:
    base: dict[str, object] = {
        "host": jump.address,
        "port": jump.port,
        "username": USER,
        "private_key": user.private_key,
        "host_key": jump.host_key_line,
    }
    base.update(kw)
    return JumpHostSettings(**base)  # type: ignore[arg-type]


def target_ssh(target: Sshd, **kw: object) -> SshSettings:
    base: dict[str, object] = {
        "name": "cli",
        "appliance": "rtr2",
        "host": target.address,
        "port": target.port,
        "username": USER,
        "password": PASSWORD,
        "host_key": target.host_key_line,
        "on_connect": ("terminal length 0",),
    }
    base.update(kw)
    return SshSettings(**base)  # type: ignore[arg-type]


async def eventually(predicate: Callable[[], bool], what: str) -> None:
    await asyncio.to_thread(wait_until, predicate, what)


def forwards_to(jump: Sshd, address: str, port: int) -> bool:
    # sshd (LogLevel DEBUG1) logs each direct-tcpip channel it opens for a client.
    pattern = rf"server_request_direct_tcpip: originator .* target {re.escape(address)} port {port}\b"
    return re.search(pattern, jump.log_text()) is not None


async def test_ssh_through_the_jump_host(jump_sshd: Sshd, target_sshd: Sshd, ssh_user: SshUser) -> None:
    assert not forwards_to(jump_sshd, target_sshd.address, target_sshd.port)
    reach = ReachSettings(mode="jumpHost", jump_host=jump_settings(jump_sshd, ssh_user))
    t = make_ssh(target_ssh(target_sshd), reach)
    try:
        resp = await t.run(SHOW, operation="show")
        assert resp.outputs[0].startswith("EmuOS version 1.0")
        assert t.host_key_fingerprint == target_sshd.fingerprint  # the second hop is verified too
    finally:
        await t.aclose()
    await asyncio.to_thread(
        wait_until,
        lambda: forwards_to(jump_sshd, target_sshd.address, target_sshd.port),
        "the jump host's log",
    )


async def test_jump_host_key_is_verified(jump_sshd: Sshd, target_sshd: Sshd, ssh_user: SshUser) -> None:
    wrong = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().strip()
    reach = ReachSettings(mode="jumpHost", jump_host=jump_settings(jump_sshd, ssh_user, host_key=wrong))
    t = make_ssh(target_ssh(target_sshd), reach)
    try:
        with pytest.raises(VerificationError, match="jump host") as info:
            await t.run(SHOW, operation="show")
        assert jump_sshd.fingerprint in str(info.value)
    finally:
        await t.aclose()


async def test_target_key_is_verified_through_the_jump_host(
    jump_sshd: Sshd, target_sshd: Sshd, ssh_user: SshUser
) -> None:
    reach = ReachSettings(mode="jumpHost", jump_host=jump_settings(jump_sshd, ssh_user))
    t = make_ssh(target_ssh(target_sshd, host_key=jump_sshd.host_key_line), reach)  # wrong pin for the target
    try:
        with pytest.raises(VerificationError) as info:
            await t.run(SHOW, operation="show")
        assert target_sshd.fingerprint in str(info.value)
    finally:
        await t.aclose()


async def test_https_through_the_jump_host(
    jump_sshd: Sshd, ssh_user: SshUser, device_factory: DeviceFactory, pki: Pki
) -> None:
    device = await device_factory(address="127.0.0.2")
    port = int(device.url.rsplit(":", 1)[1])
    jump = JumpHost(jump_settings(jump_sshd, ssh_user))
    reach = ReachSettings(mode="jumpHost", jump_host=jump.settings)
    t = make_http(HttpSettings(name="api", base_url=device.url + "/api", ca_pem=pki.ca_pem), reach, jump=jump)
    try:
        resp = await t.send(HELLO, operation="health")
        assert resp.status == 200
        assert json.loads(resp.text)["host"] == f"127.0.0.2:{port}"  # the device sees its own name
        await t.send(HELLO, operation="health")
        assert jump.connects == 1
    finally:
        await t.aclose()
        await jump.aclose()
    assert device.hits["GET /api/hello"] == 2
    await asyncio.to_thread(
        wait_until, lambda: forwards_to(jump_sshd, "127.0.0.2", port), "the jump host's log"
    )


async def test_http_and_https_through_tinyproxy(
    tinyproxy: Tinyproxy, device_factory: DeviceFactory, pki: Pki
) -> None:
    plain = await device_factory(tls=False)
    secure = await device_factory()
    reach = ReachSettings(mode="proxy", proxy_url=tinyproxy.url)
    for device in (plain, secure):
        t = make_http(HttpSettings(name="api", base_url=device.url + "/api", ca_pem=pki.ca_pem), reach)
        try:
            assert (await t.send(HELLO, operation="health")).status == 200
        finally:
            await t.aclose()
        assert device.hits["GET /api/hello"] == 1
    hostport = plain.url.removeprefix("http://")
    secure_hostport = secure.url.removeprefix("https://")

    def logged() -> bool:
        text = tinyproxy.log_text()
        return f"GET http://{hostport}/api/hello" in text and f"CONNECT {secure_hostport}" in text

    await eventually(logged, "tinyproxy's log")


async def test_https_through_tinyproxy_still_verifies_tls(
    tinyproxy: Tinyproxy, device_factory: DeviceFactory, pki: Pki
) -> None:
    secure = await device_factory()
    reach = ReachSettings(mode="proxy", proxy_url=tinyproxy.url)
    t = make_http(HttpSettings(name="api", base_url=secure.url + "/api", ca_pem=pki.other_ca_pem), reach)
    try:
        with pytest.raises(VerificationError, match="certificate verify failed"):
            await t.send(HELLO, operation="health")
    finally:
        await t.aclose()


async def test_ssh_through_tinyproxy_connect(tinyproxy: Tinyproxy, cli_sshd: Sshd) -> None:
    reach = ReachSettings(mode="proxy", proxy_url=tinyproxy.url)
    t = make_ssh(target_ssh(cli_sshd), reach)
    try:
        resp = await t.run(SHOW, operation="show")
        assert resp.outputs[0].startswith("EmuOS version 1.0")
    finally:
        await t.aclose()
    await asyncio.to_thread(
        wait_until,
        lambda: f"CONNECT {cli_sshd.address}:{cli_sshd.port}" in tinyproxy.log_text(),
        "tinyproxy's log",
    )


async def test_proxy_refusing_the_tunnel(tinyproxy: Tinyproxy) -> None:
    from transport_servers import free_port

    dialer = HttpProxyDialer(tinyproxy.url)
    with pytest.raises(TransportError, match="refused the tunnel"):
        await dialer.open("127.0.0.1", free_port())  # nothing listens there: the proxy answers 5xx
