"""Run one simulator in the foreground until SIGINT/SIGTERM (``vnfctl simulate`` uses this)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .base import BaseSimulator, Credentials, SimulatorConfig
from .faults import FaultConfig
from .registry import resolve_vendor


def build_simulator(
    vendor: str,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    tls: bool = False,
    latency_ms: float = 0.0,
    credentials_file: str | Path | None = None,
    ssh_port: int = 0,
    firmware_version: str | None = None,
    factory_defaults: bool = False,
    error_rate: float = 0.0,
    seed: int | None = None,
    time_scale: float = 1.0,
) -> BaseSimulator:
    """Instantiate (but do not start) a simulator from CLI-style options."""
    cls = resolve_vendor(vendor)
    credentials = (
        Credentials.from_file(credentials_file, cls.default_credentials) if credentials_file else None
    )
    config = SimulatorConfig(
        host=host,
        port=port,
        tls=tls,
        ssh_port=ssh_port,
        credentials=credentials,
        faults=FaultConfig(latency_ms=latency_ms, error_rate=error_rate, seed=seed),
        firmware_version=firmware_version,
        factory_defaults=factory_defaults,
        time_scale=time_scale,
    )
    return cls(config)


def describe(sim: BaseSimulator, tls_dir: Path | None) -> list[str]:
    """Human-readable startup lines; never includes credentials."""
    lines = [f"{sim.vendor} simulator (firmware {sim.firmware_version})"]
    if sim.has_http:
        lines.append(f"  api:   {sim.base_url}")
    if sim.ssh_port is not None:
        lines.append(f"  ssh:   {sim.config.host}:{sim.ssh_port}")
    if sim.tls_ca_pem is not None and tls_dir is not None:
        ca_file = tls_dir / f"{sim.vendor}-ca.pem"
        ca_file.write_text(sim.tls_ca_pem)
        lines.append(f"  tls CA: {ca_file}")
    if sim.has_http:
        lines.append(f"  admin: {sim.base_url}/_sim/state, /_sim/faults, /_sim/stats")
    origin = "file" if sim.config.credentials else "vendor defaults (see docs/simulators.md)"
    lines.append(f"  credentials: {origin}")
    return lines


async def serve(sim: BaseSimulator, announce: Callable[[str], None], tls_dir: Path | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    await sim.start()
    try:
        for line in describe(sim, tls_dir):
            announce(line)
        await stop.wait()
    finally:
        await sim.stop()


def run_simulator(
    vendor: str,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    tls: bool = False,
    latency_ms: float = 0.0,
    credentials_file: str | Path | None = None,
    ssh_port: int = 0,
    firmware_version: str | None = None,
    factory_defaults: bool = False,
    error_rate: float = 0.0,
    seed: int | None = None,
    time_scale: float = 1.0,
    tls_dir: str | Path | None = None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Run ``vendor``'s simulator in the foreground until interrupted."""
    sim = build_simulator(
        vendor,
        port,
        host=host,
        tls=tls,
        latency_ms=latency_ms,
        credentials_file=credentials_file,
        ssh_port=ssh_port,
        firmware_version=firmware_version,
        factory_defaults=factory_defaults,
        error_rate=error_rate,
        seed=seed,
        time_scale=time_scale,
    )
    directory = Path(tls_dir) if tls_dir else (Path(tempfile.mkdtemp(prefix="vnf-sim-")) if tls else None)

    def _print(line: str) -> None:
        print(line, file=sys.stdout, flush=True)

    asyncio.run(serve(sim, announce or _print, directory))
