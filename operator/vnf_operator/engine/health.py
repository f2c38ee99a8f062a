"""Health checks by phase (network → api → service); the first failing phase is reported."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from vnf_operator.core.errors import TransportError, VerificationError, VnfError
from vnf_operator.core.model import HealthCheck
from vnf_operator.core.parse import check_expect
from vnf_operator.engine.session import Session

PHASES = ("network", "api", "service")


@dataclass
class CheckResult:
    name: str
    phase: str
    ok: bool
    latency_ms: int
    message: str
    inconclusive: bool = False
    """The device did not really answer (TLS verification, network, timeout): the check says
    nothing about the device's state, only that it could not be reached."""

    def status(self) -> dict[str, object]:
        return {
            "name": self.name,
            "phase": self.phase,
            "status": "Passed" if self.ok else "Failed",
            "latencyMs": self.latency_ms,
            "message": self.message[:300],
        }


@dataclass
class HealthResult:
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> CheckResult | None:
        return next((c for c in self.checks if not c.ok), None)

    @property
    def message(self) -> str:
        bad = self.failed
        if bad is None:
            return f"{len(self.checks)} health check(s) passed"
        return f"health check {bad.name!r} (phase {bad.phase}) failed: {bad.message}"


async def run_check(session: Session, check: HealthCheck) -> CheckResult:
    started = time.monotonic()
    where = f"healthChecks.{check.name}"
    inconclusive = False
    try:
        async with asyncio.timeout(check.timeout):
            if check.tcp is not None:
                await session.connections.probe_tcp(check.tcp.connection)
                ok, message = True, "TCP connection accepted"
            else:
                call = check.http if check.http is not None else check.cli
                assert call is not None
                parsed, raw = await session.run_call(call, check.response, where=where)
                ok, message = check_expect(check.expect, raw, parsed.data)
    except TimeoutError:
        ok, message, inconclusive = False, f"timed out after {check.timeout:g}s", True
    except VnfError as exc:
        ok, message = False, session.masker(str(exc))
        # Unreachable, timed out or not verifiable: no answer. A refused login, a device error or a
        # connection without its credentials yet is an answer (and may well mean "bootstrap me").
        inconclusive = isinstance(exc, VerificationError) or (
            isinstance(exc, TransportError) and exc.transient
        )
    latency = int((time.monotonic() - started) * 1000)
    return CheckResult(
        check.name, check.phase, ok, latency, message or ("ok" if ok else "failed"), inconclusive
    )


async def run_checks(session: Session, checks: Sequence[HealthCheck]) -> HealthResult:
    """Run phase by phase; checks of one phase run concurrently; stop after a failing phase."""
    result = HealthResult()
    for phase in PHASES:
        batch = [c for c in checks if c.phase == phase]
        if not batch:
            continue
        done = await asyncio.gather(*(run_check(session, c) for c in batch))
        result.checks.extend(done)
        if not all(c.ok for c in done):
            break
    return result


async def run_health_checks(session: Session) -> HealthResult:
    return await run_checks(session, session.dictionary.health_checks)
