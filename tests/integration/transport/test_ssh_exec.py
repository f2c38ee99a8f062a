"""SshTransport in exec mode against a real OpenSSH sshd: password and key login, exit status."""

from __future__ import annotations

import logging

import pytest
from transport_servers import PASSWORD, USER, Sshd, SshUser

from vnf_operator.core.errors import AuthenticationError, DeviceError
from vnf_operator.core.rendered import CliCommands
from vnf_operator.core.secrets import SecretMasker
from vnf_operator.transport.settings import SshSettings
from vnf_operator.transport.ssh import SshTransport

pytestmark = pytest.mark.integration


def exec_cmds(*lines: str) -> CliCommands:
    return CliCommands(connection="cli", commands=lines, mode="exec")


def password_settings(sshd: Sshd, **kw: object) -> SshSettings:
    base: dict[str, object] = {
        "name": "cli",
        "appliance": "sw1",
        "host": sshd.address,
        "port": sshd.port,
        "username": USER,
        "password": PASSWORD,
        "host_key": sshd.host_key_line,
        "mode": "exec",
    }
    base.update(kw)
    return SshSettings(**base)  # type: ignore[arg-type]


async def test_exec_with_password(plain_sshd: Sshd) -> None:
    t = SshTransport(password_settings(plain_sshd))
    try:
        resp = await t.run(exec_cmds("echo hello", "printf 'a\\nb\\n'"), operation="show")
        assert resp.outputs == ("hello", "a\nb")
        assert resp.text == "hello\na\nb"
        assert resp.exit_status == 0
        # the connection is reused
        await t.run(exec_cmds("true"), operation="show")
        assert t.connects == 1
        assert t.host_key_fingerprint == plain_sshd.fingerprint
    finally:
        await t.aclose()


async def test_exec_with_key(plain_sshd: Sshd, ssh_user: SshUser) -> None:
    t = SshTransport(password_settings(plain_sshd, password=None, private_key=ssh_user.private_key))
    try:
        resp = await t.run(exec_cmds("echo $((6*7))"), operation="show")
        assert resp.outputs == ("42",)
    finally:
        await t.aclose()


async def test_nonzero_exit_is_a_device_error_and_stops(plain_sshd: Sshd, tmp_path: object) -> None:
    t = SshTransport(password_settings(plain_sshd))
    try:
        with pytest.raises(DeviceError) as info:
            await t.run(
                exec_cmds("echo one", "echo 'no such interface' >&2; exit 3", "echo never > /tmp/vnf-never"),
                operation="apply",
            )
        assert "line 2/3" in str(info.value)
        assert "exit status 3" in str(info.value)
        assert info.value.device_message == "no such interface"
        assert not info.value.transient
    finally:
        await t.aclose()


async def test_error_pattern_in_exec_output(plain_sshd: Sshd) -> None:
    t = SshTransport(password_settings(plain_sshd))
    try:
        with pytest.raises(DeviceError) as info:
            await t.run(exec_cmds("echo ok", "printf 'x\\n%% Invalid input detected\\n'"), operation="apply")
        assert info.value.device_message == "% Invalid input detected"
    finally:
        await t.aclose()


async def test_wrong_password_and_secrets_stay_out(
    plain_sshd: Sshd, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Wr0ng-Ssh-Secret-42"
    s = password_settings(plain_sshd, password=wrong)
    t = SshTransport(s)
    with pytest.raises(AuthenticationError) as info:
        await t.run(exec_cmds("echo hi"), operation="show")
    await t.aclose()
    assert f"refused the credentials of user '{USER}'" in str(info.value)
    assert wrong not in str(info.value)
    assert wrong not in caplog.text
    assert wrong not in repr(s)

    # A device error whose line and output carry the real password: masked everywhere.
    t2 = SshTransport(password_settings(plain_sshd, masker=SecretMasker([PASSWORD])))
    with pytest.raises(DeviceError) as info2:
        await t2.run(exec_cmds(f"echo 'bad secret {PASSWORD}' >&2; exit 1"), operation="set-password")
    await t2.aclose()
    for text in (str(info2.value), info2.value.device_message, caplog.text):
        assert PASSWORD not in text
    assert "******" in info2.value.device_message
