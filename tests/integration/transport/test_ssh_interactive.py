"""Interactive CLI sessions against a real sshd whose shell is a small device CLI emulator."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from transport_servers import PASSWORD, USER, Sshd

from vnf_operator.core.errors import DeviceError, TransportError
from vnf_operator.core.rendered import CliCommands
from vnf_operator.transport.settings import SshSettings
from vnf_operator.transport.ssh import SshTransport

pytestmark = pytest.mark.integration


def cli_settings(sshd: Sshd, **kw: object) -> SshSettings:
    base: dict[str, object] = {
        "name": "cli",
        "appliance": "rtr1",
        "host": sshd.address,
        "port": sshd.port,
        "username": USER,
        "password": PASSWORD,
        "host_key": sshd.host_key_line,
        "on_connect": ("terminal length 0",),
        "config_enter": ("configure terminal",),
        "config_exit": ("end",),
        "command_timeout": 10.0,
    }
    base.update(kw)
    return SshSettings(**base)  # type: ignore[arg-type]


def history(state: Path) -> list[str]:
    path = state / "history"
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()] if path.exists() else []


async def test_show_commands_and_on_connect(cli_sshd: Sshd) -> None:
    t = SshTransport(cli_settings(cli_sshd))
    try:
        resp = await t.run(
            CliCommands(connection="cli", commands=("show version", "show paging")), operation="show"
        )
    finally:
        await t.aclose()
    assert resp.outputs == ("EmuOS version 1.0\nuptime is 1 day", "paging: off")
    assert resp.text == "EmuOS version 1.0\nuptime is 1 day\npaging: off"
    assert resp.exit_status is None


async def test_config_mode_lines(cli_sshd: Sshd, cli_state: Path) -> None:
    t = SshTransport(cli_settings(cli_sshd))
    try:
        await t.run(
            CliCommands(
                connection="cli",
                commands=("set interface eth0 address 10.0.0.1/24", "set interface eth0 mtu 9000"),
                config_mode=True,
            ),
            operation="update",
        )
        resp = await t.run(CliCommands(connection="cli", commands=("show config",)), operation="list")
        assert t.connects == 1  # both sessions on one connection
    finally:
        await t.aclose()
    assert "interface eth0 address 10.0.0.1/24\ninterface eth0 mtu 9000" in resp.outputs[0]
    seen = history(cli_state)
    i = seen.index("set interface eth0 address 10.0.0.1/24")
    assert seen[i - 1] == "configure terminal"
    assert seen[i + 2] == "end"


async def test_error_pattern_raises_with_the_device_line_and_leaves_config(
    cli_sshd: Sshd, cli_state: Path
) -> None:
    t = SshTransport(cli_settings(cli_sshd))
    try:
        with pytest.raises(DeviceError) as info:
            await t.run(
                CliCommands(
                    connection="cli",
                    commands=("set hostname a", "frobnicate now", "set hostname never"),
                    config_mode=True,
                ),
                operation="update",
            )
    finally:
        await t.aclose()
    assert info.value.device_message == "% Invalid input detected at '^' marker."
    assert "line 2/3 (`frobnicate now`) failed" in str(info.value)
    seen = history(cli_state)
    i = len(seen) - 1 - seen[::-1].index("frobnicate now")
    assert seen[i + 1] == "end"  # configuration mode left, the third line never sent
    assert "set hostname never" not in seen


async def test_secret_in_a_failing_line_is_masked(cli_sshd: Sshd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "N3w-Admin-Secret-88"
    settings = cli_settings(cli_sshd)
    settings.masker.add(secret)  # the engine's masker knows every credential
    t = SshTransport(settings)
    try:
        with pytest.raises(DeviceError) as info:
            await t.run(
                CliCommands(
                    connection="cli", commands=(f"username admin secret {secret}",), config_mode=True
                ),
                operation="bootstrap",
            )
    finally:
        await t.aclose()
    assert "weak secret ****** rejected" in info.value.device_message
    for text in (str(info.value), info.value.device_message, caplog.text):
        assert secret not in text
        assert PASSWORD not in text


async def test_no_prompt_is_a_transient_timeout(cli_sshd: Sshd) -> None:
    t = SshTransport(cli_settings(cli_sshd, prompt=r"never-matches-\d+> $"))
    try:
        with pytest.raises(TransportError) as info:
            await t.run(
                CliCommands(connection="cli", commands=("show version",), timeout=0.5), operation="show"
            )
    finally:
        await t.aclose()
    assert info.value.transient
    assert "no prompt" in str(info.value)
    assert "Welcome to EmuOS" in info.value.device_message


async def test_exec_mode_on_the_cli(cli_sshd: Sshd) -> None:
    t = SshTransport(cli_settings(cli_sshd))
    try:
        resp = await t.run(
            CliCommands(connection="cli", commands=("show version",), mode="exec"), operation="show"
        )
        assert resp.outputs == ("EmuOS version 1.0\nuptime is 1 day",)
        with pytest.raises(DeviceError, match="exit status 1"):
            await t.run(CliCommands(connection="cli", commands=("bogus",), mode="exec"), operation="show")
    finally:
        await t.aclose()
