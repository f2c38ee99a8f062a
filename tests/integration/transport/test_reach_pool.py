"""TransportPool: one transport per (appliance, connection), replaced on change, closed on demand."""

from __future__ import annotations

import dataclasses

import pytest
from transport_servers import API_PASSWORD, PASSWORD, USER, Device, Pki, Sshd, SshUser

from vnf_operator.core.rendered import CliCommands, HttpRequest
from vnf_operator.transport.broker import BrokerTransport
from vnf_operator.transport.http import HttpTransport
from vnf_operator.transport.pool import TransportPool
from vnf_operator.transport.settings import (
    HttpSessionAuth,
    HttpSettings,
    JumpHostSettings,
    LimitSettings,
    ReachSettings,
    SshSettings,
)

pytestmark = pytest.mark.integration

ITEMS = HttpRequest(connection="api", method="GET", path="/session/items")


def session_settings(device: Device, pki: Pki, password: str = API_PASSWORD) -> HttpSettings:
    login = HttpRequest(
        connection="api",
        method="POST",
        path="/session/login",
        json={"username": "admin", "password": password},
    )
    logout = HttpRequest(connection="api", method="POST", path="/session/logout")
    return HttpSettings(
        name="api",
        base_url=device.url + "/api",
        ca_pem=pki.ca_pem,
        auth=HttpSessionAuth(login=login, token_jsonpath="$.data.token", logout=logout),
    )


async def test_reuse_replace_and_close(device: Device, pki: Pki) -> None:
    pool = TransportPool()
    try:
        t1 = pool.http("ns/fw1", session_settings(device, pki))
        assert pool.http("ns/fw1", session_settings(device, pki)) is t1  # equal settings: same transport
        assert (await t1.send(ITEMS, operation="list")).status == 200
        assert isinstance(t1, HttpTransport) and t1.settings.appliance == "ns/fw1"

        # Changed settings (rotated credentials, a new header...): a new transport
        changed = dataclasses.replace(session_settings(device, pki), headers={"X-Rotated": "1"})
        t2 = pool.http("ns/fw1", changed)
        assert t2 is not t1
        assert await pool.close_idle(max_idle=3600) == 1  # only the retired one
        assert device.logouts == 1

        await t2.send(ITEMS, operation="list")
        t3 = pool.http("ns/fw2", session_settings(device, pki))
        await t3.send(ITEMS, operation="list")
        assert pool.appliances() == {"ns/fw1", "ns/fw2"}
        assert await pool.close_appliance("ns/fw1") == 1
        assert device.logouts == 2
        assert pool.appliances() == {"ns/fw2"}
        assert await pool.close_idle(max_idle=0) == 1
        assert device.logouts == 3
        assert len(pool) == 0
    finally:
        await pool.aclose()


async def test_limits_are_shared_per_appliance(device: Device, pki: Pki) -> None:
    pool = TransportPool()
    try:
        limits = LimitSettings(requests_per_second=50, max_concurrency=3)
        a = pool.http("fw", HttpSettings(name="a", base_url=device.url), limits=limits)
        b = pool.http("fw", HttpSettings(name="b", base_url=device.url), limits=limits)
        c = pool.http("other", HttpSettings(name="a", base_url=device.url), limits=limits)
        assert a.limiter is b.limiter is pool.limiter("fw", limits)
        assert c.limiter is not a.limiter
        tighter = LimitSettings(requests_per_second=5, max_concurrency=1)
        lim = pool.limiter("fw", tighter)
        assert a.limiter is lim and b.limiter is lim
    finally:
        await pool.aclose()


async def test_one_jump_host_connection_for_many_appliances(
    jump_sshd: Sshd, target_sshd: Sshd, ssh_user: SshUser
) -> None:
    jump = JumpHostSettings(
        host=jump_sshd.address,
        port=jump_sshd.port,
        username=USER,
        private_key=ssh_user.private_key,
        host_key=jump_sshd.host_key_line,
    )
    reach = ReachSettings(mode="jumpHost", jump_host=jump)
    pool = TransportPool()
    show = CliCommands(connection="cli", commands=("show version",))
    try:
        for name in ("rtr-a", "rtr-b"):
            s = SshSettings(
                name="cli",
                host=target_sshd.address,
                port=target_sshd.port,
                username=USER,
                password=PASSWORD,
                host_key=target_sshd.host_key_line,
            )
            t = pool.ssh(name, s, reach=reach)
            assert (await t.run(show, operation="show")).outputs[0].startswith("EmuOS")
        (jh,) = pool._jumps.values()
        assert jh.connects == 1
        await pool.close_appliance("rtr-a")
        assert not jh.closed  # still used by rtr-b
        await pool.close_appliance("rtr-b")
        assert jh.closed
    finally:
        await pool.aclose()


async def test_broker_mode_gives_a_broker_transport(device: Device) -> None:
    pool = TransportPool()
    try:
        reach = ReachSettings(
            mode="broker", broker_url="https://broker.invalid:8800", broker_token="tok-abcdef"
        )
        t = pool.http("fw", HttpSettings(name="api", base_url=device.url), reach=reach)
        assert isinstance(t, BrokerTransport)
    finally:
        await pool.aclose()
