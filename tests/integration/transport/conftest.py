"""Fixtures for the transport tests: real sshd, tinyproxy and aiohttp devices on loopback.

The servers themselves are in transport_servers.py (imported by the tests too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from transport_servers import (
    HERE,
    SYSTEM_PYTHON,
    Device,
    DeviceFactory,
    Pki,
    Sshd,
    SshdFactory,
    SshUser,
    Tinyproxy,
    device_app,
    free_port,
    make_pki,
    make_ssh_user,
    run_tinyproxy,
    server_ssl,
)


@pytest.fixture(scope="session")
def ssh_user(tmp_path_factory: pytest.TempPathFactory) -> SshUser:
    return make_ssh_user(tmp_path_factory.mktemp("sshuser"))


@pytest.fixture(scope="session")
def tinyproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tinyproxy]:
    with run_tinyproxy(tmp_path_factory.mktemp("tinyproxy")) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def sshd_factory(ssh_user: SshUser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshdFactory]:
    started: list[Sshd] = []

    def make(name: str, *, address: str = "127.0.0.1", extra: str = "") -> Sshd:
        server = Sshd(
            name=name,
            dir=tmp_path_factory.mktemp(f"sshd-{name}"),
            address=address,
            port=free_port(address),
            user=ssh_user,
            extra=extra,
        )
        server.start()
        started.append(server)
        return server

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def plain_sshd(sshd_factory: SshdFactory) -> Sshd:
    """A normal sshd: exec commands run in /bin/sh."""
    return sshd_factory("plain")


@pytest.fixture(scope="session")
def cli_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli-state")


@pytest.fixture(scope="session")
def cli_sshd(sshd_factory: SshdFactory, cli_state: Path) -> Sshd:
    """An sshd whose every session is the CLI emulator (prompt, config mode, errors)."""
    return sshd_factory("cli", extra=f"ForceCommand {SYSTEM_PYTHON} {HERE / 'cli_emulator.py'} {cli_state}")


@pytest.fixture(scope="session")
def jump_sshd(sshd_factory: SshdFactory) -> Sshd:
    """A bastion: forwards TCP (direct-tcpip), logs every forward at DEBUG1."""
    return sshd_factory("jump")


@pytest.fixture(scope="session")
def target_sshd(sshd_factory: SshdFactory, cli_state: Path) -> Sshd:
    """A CLI device listening on 127.0.0.2 only, reached through the jump host."""
    return sshd_factory(
        "target",
        address="127.0.0.2",
        extra=f"ForceCommand {SYSTEM_PYTHON} {HERE / 'cli_emulator.py'} {cli_state}",
    )


@pytest.fixture
async def device_factory(pki: Pki) -> AsyncIterator[DeviceFactory]:
    """Start aiohttp devices: `await device_factory(address="127.0.0.1", tls=True, cert="ip"|"named")`."""
    runners: list[tuple[web.AppRunner, Device]] = []

    async def make(*, address: str = "127.0.0.1", tls: bool = True, cert: str = "ip") -> Device:
        device = Device()
        runner = web.AppRunner(device_app(device), shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        ssl_ctx = None
        if tls:
            ssl_ctx = (
                server_ssl(pki.cert, pki.key) if cert == "ip" else server_ssl(pki.named_cert, pki.named_key)
            )
        port = free_port(address)
        site = web.TCPSite(runner, address, port, ssl_context=ssl_ctx)
        await site.start()
        device.url = f"{'https' if tls else 'http'}://{address}:{port}"
        runners.append((runner, device))
        return device

    yield make
    for runner, device in runners:
        device.release.set()
        await runner.cleanup()


@pytest.fixture
async def device(device_factory: DeviceFactory) -> Device:
    """One HTTPS device on 127.0.0.1 with a certificate from the test CA."""
    return await device_factory()
