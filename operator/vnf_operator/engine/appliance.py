"""Reconcile one VnfAppliance: every sub-step returns a result; status is assembled once at the end.

resolve provider → validate desired items → resolve Secrets → connect + health checks →
bootstrap if needed → for each service in dependency order: list, diff, apply, commit, verify.
Nothing is sent to a device until every desired item validated against the provider's schema.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from vnf_operator.core.errors import ItemValidationError, TransportError, VnfError
from vnf_operator.core.itemschema import validate_items
from vnf_operator.core.model import Policy
from vnf_operator.core.status import ApplianceResults, Step, assemble_status
from vnf_operator.engine.bootstrap import bootstrap_needed, run_bootstrap
from vnf_operator.engine.connections import ConnectionFactory
from vnf_operator.engine.health import run_health_checks
from vnf_operator.engine.providers import ProviderEntry
from vnf_operator.engine.secrets import SecretResolver, SecretsError
from vnf_operator.engine.session import ApplianceRef, RequestObserver, Session
from vnf_operator.engine.sync import ServiceResult, sync_service
from vnf_operator.metrics import DeviceOutcome, Metrics

log = logging.getLogger(__name__)

DEFAULT_RESYNC = 300.0


@dataclass
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    transient_failure: bool = False


def parse_duration(text: str | None, default: float = DEFAULT_RESYNC) -> float:
    """`30s`, `5m`, `1h`, `1h30m` → seconds."""
    if not text:
        return default
    total, num = 0.0, ""
    units = {"s": 1, "m": 60, "h": 3600}
    for ch in text:
        if ch.isdigit() or ch == ".":
            num += ch
        elif ch in units and num:
            total += float(num) * units[ch]
            num = ""
        else:
            return default
    if num:
        total += float(num)
    return total or default


def service_order(entry: ProviderEntry, names: list[str]) -> list[str]:
    """Services in dependency order (dependsOn first); the loader already rejected cycles."""
    assert entry.loaded is not None
    services = entry.loaded.dictionary.services
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(n: str) -> None:
        if n in seen or n not in services:
            return
        seen.add(n)
        for dep in services[n].depends_on:
            visit(dep)
        ordered.append(n)

    for n in sorted(names):
        visit(n)
    return [n for n in ordered if n in names]


class ApplianceReconciler:
    """Holds what outlives one reconcile (connections, secret resolver)."""

    def __init__(
        self, secrets: SecretResolver, connections: ConnectionFactory, metrics: Metrics | None = None
    ) -> None:
        self.secrets = secrets
        self.connections = connections
        self.metrics = metrics

    def _observer(self, provider: str) -> RequestObserver | None:
        m = self.metrics
        if m is None:
            return None
        outcomes: dict[str, DeviceOutcome] = {"success": "success", "transient": "unreachable"}

        def observe(operation: str, outcome: str, seconds: float) -> None:
            m.device_request(provider, operation, outcomes.get(outcome, "error"), seconds)

        return observe

    def _record(self, provider: str, results: ApplianceResults) -> None:
        m = self.metrics
        if m is None:
            return
        if results.health is not None:
            for c in results.health.checks:
                m.health_check(provider, c.phase, "success" if c.ok else "failure")
        if results.bootstrap is not None and results.bootstrap.reason != "Bootstrapped":
            m.bootstrap(provider, "success" if results.bootstrap.ok else "failure")
        for name, svc in results.services.items():
            if svc.plan is not None:
                for kind, n in svc.plan.counts().items():
                    if kind in ("create", "update", "delete", "move") and n:
                        m.planned_change(provider, name, kind, n)
                        if svc.plan is not None and (results.dry_run or results.report_only) and n:
                            m.drift(provider, name)
            for kind, n in svc.applied.items():
                if n:
                    m.applied_change(provider, name, kind, n)

    async def reconcile(
        self, body: Mapping[str, Any], entry: ProviderEntry | None, *, observe: Any = None
    ) -> Outcome:
        meta, spec = body["metadata"], body.get("spec") or {}
        status = body.get("status") or {}
        results = ApplianceResults(generation=int(meta.get("generation") or 0))
        results.paused = bool(spec.get("paused"))
        results.dry_run = bool(spec.get("dryRun"))
        results.report_only = spec.get("driftPolicy") == "report"
        resync = parse_duration(spec.get("resyncInterval"))
        events: list[Event] = []
        provider_ref = spec.get("providerRef") or {}
        pname: str = provider_ref.get("name", "")

        def finish(requeue: float | None, transient: bool = False) -> Outcome:
            self._record(pname, results)
            new_status = assemble_status(results, previous=status, now=_now())
            return Outcome(new_status, events, requeue, transient)

        if results.paused:
            results.provider = Step(True, "Paused", "reconciliation is paused (spec.paused)")
            return finish(None)

        # 1. provider
        if entry is None:
            results.provider = Step(
                False, "ProviderNotFound", f"VnfProvider {pname!r} does not exist", terminal=False
            )
            events.append(Event("Warning", "ProviderNotFound", results.provider.message))
            return finish(resync)
        if entry.loaded is None:
            msg = f"VnfProvider {pname!r} is invalid: " + "; ".join(str(p) for p in entry.problems[:3])
            results.provider = Step(False, "ProviderInvalid", msg, terminal=True)
            events.append(Event("Warning", "ProviderInvalid", msg))
            return finish(None)
        observe = observe or self._observer(pname)
        pinned = provider_ref.get("version")
        if pinned and pinned != entry.version:
            msg = (
                f"spec.providerRef.version: pinned {pinned!r} but VnfProvider {pname!r} is {entry.version!r}"
            )
            results.provider = Step(False, "ProviderVersionMismatch", msg, terminal=True)
            events.append(Event("Warning", "ProviderVersionMismatch", msg))
            return finish(None)
        results.provider = Step(True, "Resolved", f"VnfProvider {pname} version {entry.version}")
        results.provider_info = {"name": pname, "version": entry.version, "generation": entry.generation}
        dictionary = entry.loaded.dictionary

        # 2. validate every desired item before touching anything
        services_spec: dict[str, Any] = spec.get("services") or {}
        validated: dict[str, list[dict[str, Any]]] = {}
        problems: list[str] = []
        for sname, sspec in services_spec.items():
            if sname not in dictionary.services:
                known = ", ".join(sorted(dictionary.services)) or "none"
                problems.append(
                    f"spec.services.{sname}: provider {pname} has no such service (it has: {known})"
                )
                continue
            try:
                validated[sname] = validate_items(
                    dictionary.services[sname],
                    (sspec or {}).get("items") or [],
                    where=f"spec.services.{sname}.items",
                )
            except ItemValidationError as exc:
                problems.extend(str(p) for p in exc.problems)
            if (
                dictionary.services[sname].identity is None
                or "list" not in dictionary.services[sname].operations
            ):
                problems.append(
                    f"spec.services.{sname}: provider {pname} cannot reconcile this service (no list/identity)"
                )
        if problems:
            msg = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
            results.validation = Step(False, "InvalidSpec", msg, terminal=True)
            events.append(Event("Warning", "InvalidSpec", msg))
            return finish(None)
        results.validation = Step(True, "Valid", f"{sum(map(len, validated.values()))} items valid")

        # 3. Secrets
        namespace, name = meta["namespace"], meta["name"]
        try:
            creds = await self.secrets.credentials(namespace, spec, dictionary)
        except SecretsError as exc:
            results.connection = Step(False, exc.reason, str(exc), terminal=True)
            events.append(Event("Warning", exc.reason, str(exc)))
            return finish(None)

        mgmt = spec.get("management") or {}
        ref = ApplianceRef(
            name=name,
            namespace=namespace,
            host=mgmt.get("host", ""),
            ports=mgmt.get("ports") or {},
            vars=spec.get("vars") or {},
        )
        try:
            conns = await self.connections.get(body, dictionary, creds, ref)
        except VnfError as exc:
            results.connection = Step(False, "ConnectionConfigInvalid", str(exc), terminal=True)
            events.append(Event("Warning", "ConnectionConfigInvalid", str(exc)))
            return finish(None)
        outputs = await self.secrets.bootstrap_outputs(namespace, name)
        session = Session(entry.loaded, ref, creds.values, conns, bootstrap_outputs=outputs, observe=observe)
        results.host_keys = conns.host_keys()

        try:
            # 4. bootstrap when the provider says it is needed, then health
            if dictionary.bootstrap is not None:
                needed, why = await bootstrap_needed(session, status)
                if not needed:
                    results.bootstrap = Step(True, "Bootstrapped", why)
                    results.bootstrap_info = dict(status.get("bootstrap") or {"completed": True})
                else:
                    boot = await run_bootstrap(session, self.secrets, body, creds)
                    results.bootstrap = boot.step
                    results.bootstrap_info = boot.status
                    if not boot.step.ok:
                        events.append(Event("Warning", boot.step.reason, boot.step.message))
                        return finish(_backoff(status), transient=not boot.step.terminal)
                    events.append(Event("Normal", "Bootstrapped", boot.step.message))
                    outputs = {**outputs, **boot.outputs}
                    await self.connections.invalidate(namespace, name)
                    conns = await self.connections.get(body, dictionary, creds, ref)
                    session = Session(
                        entry.loaded, ref, creds.values, conns, bootstrap_outputs=outputs, observe=observe
                    )
            health = await run_health_checks(session)
            results.health = health
            if not health.ok:
                events.append(Event("Warning", "Unhealthy", health.message))
                return finish(_backoff(status), transient=True)

            # 5. services
            prev_services = status.get("services") or {}
            for sname in service_order(entry, list(validated)):
                sspec = services_spec.get(sname) or {}
                policy = Policy(sspec.get("policy") or dictionary.services[sname].default_policy.value)
                managed = [k for k in (prev_services.get(sname) or {}).get("managedKeys", [])]
                res: ServiceResult = await sync_service(
                    session,
                    sname,
                    validated[sname],
                    policy=policy,
                    protected=sspec.get("protected") or [],
                    managed_keys=managed,
                    dry_run=results.dry_run,
                    report_only=results.report_only,
                    commit_pending=_commit_pending(status),
                )
                results.services[sname] = res
                for line in res.changes:
                    events.append(Event("Normal", "Applied", line))
        except TransportError as exc:
            reason = "DeviceUnreachable" if exc.transient else "DeviceError"
            results.sync = Step(False, reason, session.masker(str(exc)), terminal=False)
            events.append(Event("Warning", reason, results.sync.message))
            return finish(_backoff(status), transient=True)
        except VnfError as exc:
            results.sync = Step(False, "OperationFailed", session.masker(str(exc)), terminal=False)
            events.append(Event("Warning", "OperationFailed", results.sync.message))
            return finish(_backoff(status), transient=True)

        if results.dry_run or results.report_only:
            planned = [line for r in results.services.values() if r.plan for line in r.plan.summary()]
            message = "; ".join(planned[:5]) or "the device matches the spec"
            results.sync = Step(True, "DriftDetected" if planned else "InSync", message)
            if planned and results.report_only:
                events.append(Event("Warning", "DriftDetected", message))
            return finish(resync)
        drift = [line for r in results.services.values() for line in r.remaining]
        if drift:
            results.sync = Step(False, "NotInSync", "still different after apply: " + "; ".join(drift[:5]))
            events.append(Event("Warning", "NotInSync", results.sync.message))
            return finish(_backoff(status), transient=True)
        total = sum(sum(r.applied.values()) for r in results.services.values())
        results.sync = Step(
            True, "InSync", f"{len(results.services)} service(s) in sync, {total} change(s) applied"
        )
        return finish(resync)


def _commit_pending(status: Mapping[str, Any]) -> bool:
    """The last reconcile did not end in sync: a commit may be outstanding."""
    insync = next((c for c in status.get("conditions") or [] if c.get("type") == "InSync"), None)
    return insync is None or insync.get("status") != "True"


def _backoff(status: Mapping[str, Any]) -> float:
    failures = int(status.get("failures") or 0) + 1
    return float(min(300, 5 * 2 ** min(failures, 6)))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
