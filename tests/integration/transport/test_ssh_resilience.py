"""Dropped connections, reconnects and the per-device session cap, against a real sshd."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest
from transport_servers import HERE, PASSWORD, SYSTEM_PYTHON, USER, Sshd, wait_until

from vnf_operator.core.errors import TransportError
from vnf_operator.core.rendered import CliCommands
from vnf_operator.transport.limits import Limiter
from vnf_operator.transport.retry import call_with_retry
from vnf_operator.transport.settings import LimitSettings, SshSettings
from vnf_operator.transport.ssh import SshTransport

pytestmark = pytest.mark.integration


def settings(sshd: Sshd, **kw: object) -> SshSettings:
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


def sshd_ancestor(pid: int) -> int:
    """The sshd process serving the connection that runs `pid`."""
    while pid > 1:
        if Path(f"/proc/{pid}/comm").read_text().strip().startswith("sshd"):
            return pid
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    raise AssertionError("no sshd ancestor")


async def wait_for_file(path: Path) -> str:
    await asyncio.to_thread(wait_until, lambda: path.exists() and bool(path.read_text().strip()), str(path))
    return await asyncio.to_thread(lambda: path.read_text().strip())


def new_sessions(sessions: Path, before: set[str]) -> set[str]:
    return set(os.listdir(sessions)) - before if sessions.exists() else set()


async def test_session_killed_mid_command_then_reconnect(plain_sshd: Sshd, tmp_path: Path) -> None:
    marker = tmp_path / "ppid"
    t = SshTransport(settings(plain_sshd))
    try:
        await t.run(CliCommands(connection="cli", commands=("true",), mode="exec"), operation="warmup")
        long = CliCommands(connection="cli", commands=(f"echo $$ > {marker}; sleep 20",), mode="exec")
        task = asyncio.create_task(t.run(long, operation="apply"))
        shell_pid = int(await wait_for_file(marker))
        os.kill(sshd_ancestor(shell_pid), signal.SIGKILL)  # the sshd process serving the connection
        with contextlib.suppress(ProcessLookupError):
            os.killpg(os.getpgid(shell_pid), signal.SIGKILL)  # and the orphaned command
        with pytest.raises(TransportError) as info:
            await task
        assert info.value.transient
        assert "sw1/cli/apply" in str(info.value)

        resp = await t.run(
            CliCommands(connection="cli", commands=("echo back",), mode="exec"), operation="show"
        )
        assert resp.outputs == ("back",)
        assert t.connects == 2
    finally:
        await t.aclose()


async def test_interactive_session_killed_then_retry_succeeds(cli_sshd: Sshd, cli_state: Path) -> None:
    t = SshTransport(settings(cli_sshd, mode="interactive", command_timeout=20.0))
    sessions = cli_state / "sessions"
    before = set(os.listdir(sessions)) if sessions.exists() else set()
    try:
        hang = CliCommands(connection="cli", commands=("hang",))
        task = asyncio.create_task(t.run(hang, operation="show"))
        await asyncio.to_thread(wait_until, lambda: bool(new_sessions(sessions, before)), "a CLI session")
        (new,) = new_sessions(sessions, before)
        sshd_pid = sshd_ancestor(int(new))
        os.kill(sshd_pid, signal.SIGKILL)  # the connection dies under the running command
        with pytest.raises(TransportError) as info:
            await task
        assert info.value.transient

        show = CliCommands(connection="cli", commands=("show version",))
        resp = await call_with_retry(
            lambda: t.run(show, operation="show"), idempotent=True, limits=LimitSettings(backoff_base=0.01)
        )
        assert resp.outputs[0].startswith("EmuOS version 1.0")
        assert t.connects == 2
    finally:
        await t.aclose()


@pytest.mark.parametrize("cap_from", ["settings", "limits"])
async def test_concurrent_sessions_never_exceed_the_cap(
    plain_sshd: Sshd, tmp_path: Path, cap_from: str
) -> None:
    cap = 2
    state = tmp_path / "count"
    if cap_from == "settings":
        t = SshTransport(settings(plain_sshd, max_sessions=cap))
    else:
        t = SshTransport(settings(plain_sshd), limiter=Limiter(LimitSettings(max_concurrency=cap)))
    assert t.max_sessions == cap
    # Each session waits (bounded, 1 s) for cap+1 sessions at once: reached only if the cap leaks.
    line = f"{SYSTEM_PYTHON} {HERE / 'session_counter.py'} {state} {cap + 1} 1.0"
    try:
        results = await asyncio.gather(
            *(
                t.run(CliCommands(connection="cli", commands=(line,), mode="exec"), operation="x")
                for _ in range(6)
            )
        )
    finally:
        await t.aclose()
    assert all(r.outputs == ("counted",) for r in results)
    assert int((state / "peak").read_text()) == cap
    assert t.connects == 1
