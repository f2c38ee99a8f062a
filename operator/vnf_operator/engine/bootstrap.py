"""Day-0 bootstrap: run the provider's initial steps in dependency order, keep their outputs.

Safe to re-run after a crash at any step: outputs are stored in the appliance's outputs Secret
after every step that produces any, and a step whose `skipIf` holds is not run again. Needed again
after it once completed (a factory reset), it starts afresh: the old outputs describe nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vnf_operator.core.errors import VnfError
from vnf_operator.core.model import BootstrapStep, HealthCheck, ProviderDictionary
from vnf_operator.core.render import render_step_parameters, should_skip_step
from vnf_operator.core.status import Step
from vnf_operator.engine.health import run_checks
from vnf_operator.engine.secrets import Credentials, SecretResolver
from vnf_operator.engine.session import Session

if TYPE_CHECKING:
    from vnf_operator.engine.connections import Connections


@dataclass
class BootstrapOutcome:
    step: Step
    outputs: dict[str, str] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)


def step_order(steps: list[BootstrapStep]) -> list[BootstrapStep]:
    by_name = {s.name: s for s in steps}
    ordered: list[BootstrapStep] = []
    seen: set[str] = set()

    def visit(s: BootstrapStep) -> None:
        if s.name in seen:
            return
        seen.add(s.name)
        for dep in s.depends_on:
            if dep in by_name:
                visit(by_name[dep])
        ordered.append(s)

    for s in steps:
        visit(s)
    return ordered


NOT_EVALUATED = "not evaluated, the device did not answer: "
PROBE_SKIPPED = "bootstrap completed and the device healthy; neededWhen probed recently"
PROBE_HEALTHY = "not needed: the health checks, which include every neededWhen check, passed"
DEFAULT_PROBE_INTERVAL = 600.0


def probe_due(status: Mapping[str, Any], last_probe: float | None, now: float, interval: float) -> bool:
    """Whether this reconcile runs the `neededWhen` probe (a device request each time).

    Always until bootstrap completed, on the first reconcile in this process, and while the last one
    did not end Ready (a factory-reset device refuses our credentials, so health fails first and the
    next reconcile probes); otherwise at most every `interval` seconds.
    """
    if last_probe is None or not (status.get("bootstrap") or {}).get("completed"):
        return True
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        return True
    return now - last_probe >= interval


async def bootstrap_needed(session: Session, status: Mapping[str, Any]) -> tuple[bool, str]:
    """Bootstrap runs when a `neededWhen` check fails, or (without any) until it once completed."""
    boot = session.dictionary.bootstrap
    assert boot is not None
    if boot.needed_when:
        checks = await run_checks(session, boot.needed_when)
        if checks.ok:
            return False, "not needed: " + checks.message
        if any(c.inconclusive for c in checks.checks if not c.ok):
            # The device did not answer (TLS verification, network, timeout): that is no reason to
            # re-run bootstrap (it may reset passwords and keys). The health checks report it.
            return False, NOT_EVALUATED + checks.message
        return True, checks.message
    if (status.get("bootstrap") or {}).get("completed"):
        return False, "bootstrap completed earlier"
    return True, "never bootstrapped"


async def run_bootstrap(
    session: Session,
    secrets: SecretResolver,
    body: Mapping[str, Any],
    creds: Credentials,
    *,
    reconnect: Callable[[Mapping[str, str]], Awaitable[Connections]] | None = None,
) -> BootstrapOutcome:
    """`reconnect` rebuilds the appliance's connections once outputs exist (a connection whose
    auth uses a generated key is unavailable until then)."""
    boot = session.dictionary.bootstrap
    assert boot is not None
    # Needed again after it once completed: the device lost what bootstrap did (a factory reset, a
    # replaced unit), so the outputs of that earlier run describe nothing on it and must not make
    # steps skip (`skipIf: bootstrap.api_key is defined`). A run that did not complete resumes.
    completed_before = bool(((body.get("status") or {}).get("bootstrap") or {}).get("completed"))
    outputs: dict[str, str] = {} if completed_before else dict(session.bootstrap_outputs)
    steps_ctx: dict[str, Any] = {}
    done: list[str] = []
    try:
        for step in step_order(list(boot.steps)):
            where = f"bootstrap.steps.{step.name}"
            ctx: dict[str, Any] = {"steps": steps_ctx, "bootstrap": outputs}
            if should_skip_step(session.provider, step.name, session.context(**ctx)):
                steps_ctx[step.name] = {"skipped": True, "captured": {}}
                continue
            if step.operation is not None:
                assert step.service is not None
                params = render_step_parameters(session.provider, step.name, session.context(**ctx))
                parsed = await session.run(step.service, step.operation, params=params, **ctx)
            else:
                call = step.http if step.http is not None else step.cli
                assert call is not None
                parsed, _ = await session.run_call(call, step.response, where=where, **ctx)
            captured = dict(parsed.captured)
            steps_ctx[step.name] = {"skipped": False, **parsed.as_step()}
            new = {k: str(captured[k]) for k in step.outputs if k in captured}
            missing = [k for k in step.outputs if k not in captured]
            if missing:
                raise VnfError(f"{where}: response did not contain output(s) {', '.join(missing)}")
            if new:
                outputs.update(new)
                session.masker.add(*new.values())
                session.bootstrap_outputs.update(new)
                session.credentials.update({k: v for k, v in new.items() if k not in creds.values})
                await secrets.store_outputs(body, outputs)
                if reconnect is not None:
                    session.connections = await reconnect(outputs)
            done.append(step.name)
        ready = await run_checks(session, boot.ready)
        if not ready.ok:
            return BootstrapOutcome(
                Step(False, "BootstrapNotReady", f"bootstrap ready test failed: {ready.message}"), outputs
            )
    except VnfError as exc:
        return BootstrapOutcome(Step(False, "BootstrapFailed", session.masker(str(exc))), outputs)
    status: dict[str, Any] = {
        "completed": True,
        "steps": done,
        "completedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if outputs:
        status["outputsSecret"] = body["metadata"]["name"] + "-bootstrap-outputs"
    return BootstrapOutcome(
        Step(True, "Bootstrapped", f"bootstrap completed ({len(done)} step(s) run)"), outputs, status
    )


def _probe(check: HealthCheck) -> dict[str, Any]:
    return check.model_dump(exclude={"name", "phase"})


def probe_is_health(dictionary: ProviderDictionary) -> bool:
    """Every `neededWhen` check is also a health check (same request, same expectations): passing
    health checks answer the probe, so it needs no request of its own (OPNsense: the API key works)."""
    boot = dictionary.bootstrap
    if boot is None or not boot.needed_when:
        return False
    health = [_probe(c) for c in dictionary.health_checks]
    return all(_probe(c) in health for c in boot.needed_when)
