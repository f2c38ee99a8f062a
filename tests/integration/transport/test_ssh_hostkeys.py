"""SSH host-key verification against real sshd host keys: pin, known_hosts, TOFU, changed key."""

from __future__ import annotations

import asyncssh
import pytest
from transport_servers import PASSWORD, USER, Sshd, SshdFactory

from vnf_operator.core.errors import VerificationError
from vnf_operator.core.rendered import CliCommands
from vnf_operator.transport.settings import SshSettings
from vnf_operator.transport.ssh import SshTransport

pytestmark = pytest.mark.integration

ECHO = CliCommands(connection="cli", commands=("echo ok",), mode="exec")


def settings(sshd: Sshd, **kw: object) -> SshSettings:
    base: dict[str, object] = {
        "name": "cli",
        "appliance": "sw1",
        "host": sshd.address,
        "port": sshd.port,
        "username": USER,
        "password": PASSWORD,
    }
    base.update(kw)
    return SshSettings(**base)  # type: ignore[arg-type]


async def run_once(s: SshSettings) -> SshTransport:
    t = SshTransport(s)
    try:
        assert (await t.run(ECHO, operation="probe")).outputs == ("ok",)
    finally:
        await t.aclose()
    return t


async def test_pinned_key(plain_sshd: Sshd) -> None:
    t = await run_once(settings(plain_sshd, host_key=plain_sshd.host_key_line))
    assert t.host_key_fingerprint == plain_sshd.fingerprint
    assert t.host_key_line == plain_sshd.host_key_line


async def test_known_hosts_text(plain_sshd: Sshd) -> None:
    known = f"[{plain_sshd.address}]:{plain_sshd.port} {plain_sshd.host_key_line}\n"
    await run_once(settings(plain_sshd, known_hosts=known))


async def test_known_hosts_for_another_host_is_refused(plain_sshd: Sshd) -> None:
    known = f"[10.9.9.9]:{plain_sshd.port} {plain_sshd.host_key_line}\n"
    with pytest.raises(VerificationError):
        await run_once(settings(plain_sshd, known_hosts=known))


async def test_mismatched_pin_is_refused_with_the_offered_fingerprint(plain_sshd: Sshd) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    pin = other.export_public_key("openssh").decode().strip()
    with pytest.raises(VerificationError) as info:
        await run_once(settings(plain_sshd, host_key=pin))
    message = str(info.value)
    assert f"SSH host key verification failed for {plain_sshd.address}:{plain_sshd.port}" in message
    assert plain_sshd.fingerprint in message
    assert "sw1/cli/probe" in message
    assert not info.value.transient
    assert PASSWORD not in message


async def test_no_pin_and_no_tofu_is_refused(plain_sshd: Sshd) -> None:
    with pytest.raises(VerificationError, match="no host key to verify"):
        await run_once(settings(plain_sshd))


async def test_tofu_pins_and_a_changed_key_is_refused(sshd_factory: SshdFactory) -> None:
    server = sshd_factory("tofu")
    t = SshTransport(settings(server, trust_on_first_use=True))
    try:
        assert t.host_key_fingerprint is None
        await t.run(ECHO, operation="probe")
        assert t.host_key_fingerprint == server.fingerprint
        assert t.host_key_line == server.host_key_line
        first = server.fingerprint

        server.restart(new_host_key=True)  # the device now shows another key
        await t.disconnect()  # as after a dropped connection: the next run reconnects
        assert server.fingerprint != first
        with pytest.raises(VerificationError) as info:
            await t.run(ECHO, operation="probe")
        assert server.fingerprint in str(info.value)
        assert t.host_key_fingerprint == first  # still the pinned one
    finally:
        await t.aclose()
        server.stop()
