"""Reconcile one VnfAppliance: every sub-step returns a result; status is assembled once at the end.

resolve provider → validate desired items → resolve Secrets → connect + health checks →
bootstrap if needed → for each service in dependency order: list, diff, apply, commit, verify →
health gate (docs/lifecycle.md): after changes the health checks run again; when they fail, the last
good revision is applied again and the spec is not retried until it changes.
Nothing is sent to a device until every desired item validated against the provider's schema.
What is applied is the spec, or a revision (engine/revisions.py): a manual rollback pins one, and
after a failed health gate the last good one stays applied.
"""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vnf_operator.core import diff
from vnf_operator.core import revisions as rv
from vnf_operator.core.errors import ItemValidationError, TransportError, VnfError
from vnf_operator.core.itemschema import apply_defaults, validate_items
from vnf_operator.core.model import Policy, ProviderDictionary
from vnf_operator.core.rollout import version_matches
from vnf_operator.core.status import ApplianceResults, Step, assemble_status
from vnf_operator.engine.backups import run_schedule
from vnf_operator.engine.bootstrap import (
    DEFAULT_PROBE_INTERVAL,
    NOT_EVALUATED,
    PROBE_HEALTHY,
    PROBE_SKIPPED,
    bootstrap_needed,
    probe_due,
    probe_is_health,
    run_bootstrap,
)
from vnf_operator.engine.commitconfirm import armed, open_session, settle_unconfirmed
from vnf_operator.engine.connections import ConnectionFactory, Connections
from vnf_operator.engine.health import HealthResult, run_health_checks
from vnf_operator.engine.lifecycle import LifecycleReport
from vnf_operator.engine.providers import ProviderEntry
from vnf_operator.engine.revisions import (
    BackupApi,
    BackupStore,
    RevisionApi,
    RevisionError,
    RevisionStore,
)
from vnf_operator.engine.secrets import Credentials, SecretResolver, SecretsError
from vnf_operator.engine.session import ApplianceRef, RequestObserver, Session
from vnf_operator.engine.sync import ServiceResult, sync_service
from vnf_operator.engine.upgrade import UpgradeRunner
from vnf_operator.metrics import DeviceOutcome, Metrics, RetryReason
from vnf_operator.transport.retry import RetryEvent

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


@dataclass
class Target:
    """The desired state one reconcile applies (see `core.revisions.Choice`)."""

    mode: rv.Mode
    state: dict[str, Any]
    hash: str
    revision: rv.RevisionInfo | None = None
    failed: rv.RevisionInfo | None = None


def changes_message(service: str, changes: list[str], limit: int = 30) -> str:
    """`firewall_rules: 3 change(s): created ..., updated ...` (bounded; events are capped at 1 KiB)."""
    shown = "; ".join(changes[:limit])
    more = f"; +{len(changes) - limit} more" if len(changes) > limit else ""
    return f"{service}: {len(changes)} change(s): {shown}{more}"


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
        self,
        secrets: SecretResolver,
        connections: ConnectionFactory,
        metrics: Metrics | None = None,
        *,
        revisions: RevisionStore | None = None,
        backups: BackupStore | None = None,
    ) -> None:
        self.secrets = secrets
        self.connections = connections
        self.metrics = metrics
        self.default_resync = DEFAULT_RESYNC
        # Appliances synced by this process. After a restart the first sync of each commits even
        # with nothing to change: the previous process may have died between its writes and its
        # commit, leaving changes staged on the device while the last status said InSync.
        self._synced: set[tuple[str, str]] = set()
        # When each appliance's bootstrap `neededWhen` probe last ran (bootstrap.probe_due).
        self._probed: dict[tuple[str, str], float] = {}
        self._valid_specs = ValidSpecs()
        self.probe_interval = float(os.environ.get("VNF_BOOTSTRAP_PROBE_SECONDS", DEFAULT_PROBE_INTERVAL))
        # Revision history and backups need the Kubernetes client; the resolver's reader is it in the
        # operator (a test double without those calls leaves both features off).
        reader: Any = secrets.reader
        if revisions is None and isinstance(reader, RevisionApi):
            history = int(os.environ.get("VNF_REVISION_HISTORY_LIMIT", str(rv.DEFAULT_HISTORY)))
            revisions = RevisionStore(reader, history=history)
        if backups is None and isinstance(reader, BackupApi):
            keep = int(os.environ.get("VNF_BACKUP_LIMIT", str(rv.DEFAULT_BACKUPS)))
            backups = BackupStore(reader, keep=keep)
        self.revisions = revisions
        self.backups = backups
        # Upgrades (spec.upgrade) and scheduled backups (spec.backup): engine/upgrade.py, engine/backups.py
        poll = float(os.environ.get("VNF_UPGRADE_POLL_SECONDS", "2"))
        self.upgrades = UpgradeRunner(backups, poll_base=poll)

    def _observer(self, provider: str) -> RequestObserver | None:
        m = self.metrics
        if m is None:
            return None
        outcomes: dict[str, DeviceOutcome] = {"success": "success", "transient": "unreachable"}

        def observe(operation: str, outcome: str, seconds: float) -> None:
            m.device_request(provider, operation, outcomes.get(outcome, "error"), seconds)

        return observe

    def _retry_counter(self, provider: str) -> Callable[[RetryEvent], None] | None:
        m = self.metrics
        if m is None:
            return None

        def count(event: RetryEvent) -> None:
            err = event.error
            reason: RetryReason = "other"
            if err.status == 429:
                reason = "rate_limited"
            elif err.status is not None and err.status >= 500:
                reason = "server_error"
            elif "timed out" in str(err).lower() or "timeout" in str(err).lower():
                reason = "timeout"
            elif err.status is None:
                reason = "connection"
            m.device_retry(provider, reason)

        return count

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
        resync = parse_duration(spec.get("resyncInterval"), self.default_resync)
        events: list[Event] = []
        provider_ref = spec.get("providerRef") or {}
        pname: str = provider_ref.get("name", "")

        live_conns: list[Connections] = []
        lifecycle = LifecycleReport()

        def finish(requeue: float | None, transient: bool = False) -> Outcome:
            if live_conns:  # fingerprints are known once the transports connected, not before
                results.host_keys = {**(status.get("hostKeys") or {}), **live_conns[-1].host_keys()}
            self._record(pname, results)
            new_status = assemble_status(results, previous=status, now=_now())
            lifecycle.apply(new_status, status, generation=results.generation, now=_now())
            return Outcome(new_status, events, lifecycle.requeue(requeue), transient)

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
        # the dictionary this appliance is on: an older one until the provider's rollout moves it
        # (also while the new one is invalid), or the one its version pin names (docs/lifecycle.md)
        entry = await entry.for_appliance(body)
        if entry.loaded is None:
            msg = f"VnfProvider {pname!r} is invalid: " + "; ".join(str(p) for p in entry.problems[:3])
            results.provider = Step(False, "ProviderInvalid", msg, terminal=True)
            events.append(Event("Warning", "ProviderInvalid", msg))
            return finish(None)
        observe = observe or self._observer(pname)
        pinned = str(provider_ref.get("version") or "")
        if entry.pin_problem or (pinned and not version_matches(pinned, entry.version)):
            msg = f"VnfProvider {pname!r}: " + (
                entry.pin_problem or f"spec.providerRef.version {pinned!r} does not match {entry.version!r}"
            )
            results.provider = Step(False, "ProviderVersionMismatch", msg, terminal=True)
            events.append(Event("Warning", "ProviderVersionMismatch", msg))
            return finish(None)
        results.provider = Step(True, "Resolved", f"VnfProvider {pname} version {entry.version}")
        results.provider_info = {
            "name": pname,
            "version": entry.version,
            "generation": entry.generation,
            "revision": entry.revision,
        }
        dictionary = entry.loaded.dictionary

        # 1b. what to apply: the spec, a revision pinned by rollback-to, or the last good revision
        # while the spec is one the health gate rolled back
        revs = self.revisions if meta.get("uid") else None
        try:
            target, problem = await self._target(revs, body, status, pname)
        except RevisionError as exc:
            results.validation = Step(False, "RevisionHistoryUnavailable", str(exc))
            events.append(Event("Warning", "RevisionHistoryUnavailable", str(exc)))
            return finish(_backoff(status), transient=True)
        if problem is not None:
            if problem.reason in ("RolledBack", "UnhealthyAfterApply"):
                results.sync = problem
            else:
                results.validation = problem
                events.append(Event("Warning", problem.reason, problem.message))
            return finish(None)

        # 2. validate every desired item before touching anything
        services_spec: dict[str, Any] = target.state["services"]
        # target.hash is the hash of target.state, whose services these are
        validated, problems = _validate(
            dictionary,
            services_spec,
            pname,
            seen=self._valid_specs,
            key=(str(meta.get("uid") or ""), target.hash),
        )
        if problems:
            msg = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
            if target.mode != "spec" and target.revision is not None:
                msg = f"revision {target.revision.number}: {msg}"
            results.validation = Step(False, "InvalidSpec", msg, terminal=True)
            events.append(Event("Warning", "InvalidSpec", msg))
            return finish(None)
        results.validation = Step(True, "Valid", f"{sum(map(len, validated.values()))} items valid")

        # 3. Secrets
        namespace, name = meta["namespace"], meta["name"]
        try:
            creds = await self.secrets.credentials(namespace, spec, dictionary, name)
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
        outputs = await self.secrets.bootstrap_outputs(namespace, name)

        async def connect(extra_outputs: Mapping[str, str]) -> Connections:
            # Bootstrap outputs (a generated API key) stand in for credentials the Secret lacks.
            merged = Credentials({**extra_outputs, **creds.values}, creds.extra, creds.fingerprint)
            conns = await self.connections.get(body, dictionary, merged, ref)
            conns.on_retry = self._retry_counter(pname)
            return conns

        try:
            conns = await connect(outputs)
        except VnfError as exc:
            results.connection = Step(False, "ConnectionConfigInvalid", str(exc), terminal=True)
            events.append(Event("Warning", "ConnectionConfigInvalid", str(exc)))
            return finish(None)
        live = not (results.dry_run or results.report_only)

        def session_on(conns: Connections, outputs: dict[str, str]) -> Session:
            return open_session(
                live, entry.loaded, ref, creds.values, conns, bootstrap_outputs=outputs, observe=observe
            )

        session = session_on(conns, outputs)
        live_conns.append(conns)

        try:
            # 4. bootstrap when the provider says it is needed, then health
            early_health: HealthResult | None = None
            if dictionary.bootstrap is not None:
                now = time.monotonic()
                due = probe_due(status, self._probed.get((namespace, name)), now, self.probe_interval)
                if due and probe_is_health(dictionary):
                    # Its checks are health checks: a healthy device answers it without a request.
                    early_health = await run_health_checks(session)
                    due = not early_health.ok
                if due:
                    needed, why = await bootstrap_needed(session, status)
                else:
                    needed, why = False, PROBE_SKIPPED if early_health is None else PROBE_HEALTHY
                if not why.startswith(NOT_EVALUATED) and (due or early_health is not None):
                    self._probed[(namespace, name)] = now
                if not needed and why.startswith(NOT_EVALUATED):
                    # Unknown: the health checks below report why the device did not answer.
                    results.bootstrap_info = dict(status.get("bootstrap") or {})
                elif not needed:
                    results.bootstrap = Step(True, "Bootstrapped", why)
                    results.bootstrap_info = dict(status.get("bootstrap") or {"completed": True})
                else:
                    boot = await run_bootstrap(session, self.secrets, body, creds, reconnect=connect)
                    results.bootstrap = boot.step
                    results.bootstrap_info = boot.status
                    if not boot.step.ok:
                        events.append(Event("Warning", boot.step.reason, boot.step.message))
                        return finish(_backoff(status), transient=not boot.step.terminal)
                    events.append(Event("Normal", "Bootstrapped", boot.step.message))
                    early_health = None  # bootstrap changed the device: check it again
                    outputs = {**outputs, **boot.outputs}
                    conns = await connect(outputs)
                    live_conns.append(conns)
                    session = session_on(conns, outputs)
            health = early_health or await run_health_checks(session)
            results.health = health
            if live:  # 4a. an upgrade in progress or requested (spec.upgrade): engine/upgrade.py
                lifecycle.upgrade = await self.upgrades.step(session, body, health)
                events.extend(Event(*e) for e in lifecycle.upgrade.events)
                health = results.health = lifecycle.upgrade.health or health
                if not lifecycle.upgrade.proceed:
                    return finish(None, transient=True)
            if not health.ok:
                events.append(Event("Warning", "Unhealthy", health.message))
                return finish(_backoff(status), transient=True)

            # 4b. a requested restore of a backup (one-shot annotation)
            restore = str((meta.get("annotations") or {}).get(rv.RESTORE_BACKUP) or "")
            if restore and live and self.backups is not None:
                await self._restore(session, body, restore, events)
            if live and self.backups is not None and spec.get("backup"):  # 4c. scheduled backups
                lifecycle.backup = await run_schedule(self.backups, session, body)
                events.extend(Event(*e) for e in lifecycle.backup.events)

            # 5. services
            prev_services = status.get("services") or {}
            backed_up: list[str] = []
            for sname in service_order(entry, list(validated)):
                sspec = services_spec.get(sname) or {}
                policy = Policy(sspec.get("policy") or dictionary.services[sname].default_policy.value)
                managed = [k for k in (prev_services.get(sname) or {}).get("managedKeys", [])]
                before_apply = None
                if policy is Policy.OVERRIDDEN and live and self.backups is not None:
                    before_apply = self._backup_once(session, body, sname, backed_up, events)
                res: ServiceResult = await sync_service(
                    session,
                    sname,
                    validated[sname],
                    policy=policy,
                    protected=sspec.get("protected") or [],
                    managed_keys=managed,
                    dry_run=results.dry_run,
                    report_only=results.report_only,
                    commit_pending=_commit_pending(status) or (namespace, name) not in self._synced,
                    before_apply=before_apply,
                )
                results.services[sname] = res
                if res.changes:
                    # One event per service and reconcile, naming every change: an event per rule
                    # was most of the operator's apiserver traffic on large rule sets.
                    events.append(Event("Normal", "Applied", changes_message(sname, res.changes)))

            if not live:
                planned = [line for r in results.services.values() if r.plan for line in r.plan.summary()]
                message = "; ".join(planned[:5]) or "the device matches the spec"
                results.sync = Step(True, "DriftDetected" if planned else "InSync", message)
                if planned and results.report_only:
                    events.append(Event("Warning", "DriftDetected", message))
                return finish(resync)
            drift = [line for r in results.services.values() for line in r.remaining]
            if drift:
                results.sync = Step(
                    False, "NotInSync", "still different after apply: " + "; ".join(drift[:5])
                )
                events.append(Event("Warning", "NotInSync", results.sync.message))
                return finish(_backoff(status), transient=True)
            total = sum(sum(r.applied.values()) for r in results.services.values())

            # 6. health gate: changes were made, so check again before calling this state good.
            # After a confirmed commit (engine/commitconfirm.py) healthy means confirm, unhealthy
            # means let the device revert by itself first.
            native = armed(session)
            if (total and revs is not None) or native is not None:
                after = await run_health_checks(session)
                results.health = after
                if after.ok and native is not None:
                    await native.confirm()
                if not after.ok and native is not None:
                    reverted, note = await settle_unconfirmed(native, run_health_checks)
                    events.append(Event("Normal" if reverted else "Warning", "CommitNotConfirmed", note))
                if not after.ok:
                    if target.mode == "spec" and revs is not None:
                        return finish(
                            await self._roll_back(revs, session, entry, body, target, results, events, after)
                        )
                    results.sync = Step(False, "UnhealthyAfterApply", after.message)
                    events.append(Event("Warning", "UnhealthyAfterApply", after.message))
                    return finish(_backoff(status), transient=True)
        except TransportError as exc:
            reason = "DeviceUnreachable" if exc.transient else "DeviceError"
            results.sync = Step(False, reason, session.masker(str(exc)), terminal=False)
            events.append(Event("Warning", reason, results.sync.message))
            return finish(_backoff(status), transient=True)
        except VnfError as exc:
            results.sync = Step(False, "OperationFailed", session.masker(str(exc)), terminal=False)
            events.append(Event("Warning", "OperationFailed", results.sync.message))
            return finish(_backoff(status), transient=True)

        # 7. record the revision
        message = f"{len(results.services)} service(s) in sync, {total} change(s) applied"
        self._synced.add((namespace, name))
        results.sync = Step(True, "InSync", message)
        if revs is not None:
            await self._record_revision(revs, body, target, status, results, events, total)
        return finish(resync)

    async def _target(
        self, revs: RevisionStore | None, body: Mapping[str, Any], status: Mapping[str, Any], pname: str
    ) -> tuple[Target, Step | None]:
        """What to apply, or a terminal problem (a bad rollback-to annotation, nothing to roll back to)."""
        spec_state = rv.desired_state(body.get("spec") or {})
        spec_target = Target("spec", spec_state, rv.state_hash(spec_state))
        if revs is None:
            return spec_target, None
        meta = body["metadata"]
        annotations = {k: str(v) for k, v in (meta.get("annotations") or {}).items()}
        known = await revs.list(body)
        choice = rv.choose(
            spec_hash=spec_target.hash,
            annotations=annotations,
            revisions=known,
            last_good=(status.get("revision") or {}).get("lastGood"),
        )
        if choice.problem:
            return spec_target, Step(False, choice.reason, choice.problem, terminal=True)
        if choice.mode == "spec" or choice.revision is None:
            spec_target.revision = choice.revision
            return spec_target, None
        state = await revs.load(body, choice.revision)
        target = Target(choice.mode, state, rv.state_hash(state), choice.revision, choice.failed)
        used = (state.get("providerRef") or {}).get("name", "")
        if used and used != pname:
            msg = (
                f"revision {choice.revision.number} was applied with VnfProvider {used!r}; "
                f"the appliance now uses {pname!r}: it cannot be applied again"
            )
            return target, Step(False, "RollbackTargetIncompatible", msg, terminal=True)
        return target, None

    async def _record_revision(
        self,
        revs: RevisionStore,
        body: Mapping[str, Any],
        target: Target,
        status: Mapping[str, Any],
        results: ApplianceResults,
        events: list[Event],
        total: int,
    ) -> None:
        """In sync (and healthy): the applied state becomes current and last good."""
        previous = status.get("revision") or {}
        try:
            if target.mode == "spec":
                keep = [n for n in (_number(previous.get("current")), _number(previous.get("lastGood"))) if n]
                info = await revs.record(body, target.state, target.hash, keep=keep)
            else:
                assert target.revision is not None
                info = target.revision
        except RevisionError as exc:
            events.append(Event("Warning", "RevisionNotRecorded", str(exc)))
            return
        if target.mode == "rolledBack":
            assert target.failed is not None
            message = rv.failure_message(target.failed, info)
            assert results.sync is not None
            results.sync = Step(False, "RolledBack", message, terminal=True)
            results.revision = _revision_status(info.number, info.number, target.failed)
            return
        if target.mode == "pinned":
            message = (
                f"pinned to revision {info.number} by annotation {rv.ROLLBACK_TO}: the spec is not applied "
                f"until the annotation is removed; {total} change(s) applied"
            )
            results.sync = Step(True, "InSync", message)
            if total or _number(previous.get("current")) != info.number:
                events.append(Event("Normal", "RolledBack", f"rolled back to revision {info.number}"))
        elif _number(previous.get("current")) != info.number:
            events.append(Event("Normal", "RevisionApplied", f"revision {info.number} applied"))
        results.revision = _revision_status(info.number, info.number, None)

    async def _roll_back(
        self,
        revs: RevisionStore,
        session: Session,
        entry: ProviderEntry,
        body: Mapping[str, Any],
        target: Target,
        results: ApplianceResults,
        events: list[Event],
        failure: HealthResult,
    ) -> float | None:
        """The spec made the appliance unhealthy: record it as failed, apply the last good revision
        again. Emulated by a re-apply; a device with a native commit-confirm would not need it."""
        assert entry.loaded is not None
        dictionary = entry.loaded.dictionary
        status = body.get("status") or {}
        previous = status.get("revision") or {}
        meta = body["metadata"]
        request = str((meta.get("annotations") or {}).get(rv.RECONCILE_REQUESTED) or "")
        keep = [n for n in (_number(previous.get("current")), _number(previous.get("lastGood"))) if n]
        failed = await revs.record(body, target.state, target.hash, keep=keep)
        failed = await revs.mark_failed(body, failed, failure.message, request)
        good = rv.resolve_ref(await revs.list(body), previous.get("lastGood"))
        if good is None or good.hash == target.hash:
            message = rv.failure_message(failed, None)
            results.sync = Step(False, "UnhealthyAfterApply", message, terminal=True)
            events.append(Event("Warning", "UnhealthyAfterApply", message))
            results.revision = _revision_status(failed.number, previous.get("lastGood"), failed)
            return None
        good_state = await revs.load(body, good)
        good_services: dict[str, Any] = good_state["services"]
        validated, problems = _validate(dictionary, good_services, entry.name)
        if problems:
            message = (
                f"{failure.message} after applying revision {failed.number}; rolling back to revision "
                f"{good.number} is not possible: " + "; ".join(problems[:3])
            )
            results.sync = Step(False, "RollbackFailed", message, terminal=True)
            events.append(Event("Warning", "RollbackFailed", message))
            results.revision = _revision_status(failed.number, good.number, failed)
            return None
        applied = results.services
        rolled: dict[str, ServiceResult] = {}
        for sname in service_order(entry, sorted(set(validated) | set(applied))):
            sspec = good_services.get(sname) or {}
            done = applied.get(sname)
            created = _created_keys(done)
            if sname in validated:
                policy = Policy(sspec.get("policy") or dictionary.services[sname].default_policy.value)
                desired = validated[sname]
                protected = sspec.get("protected") or []
            else:  # a service only the failed spec had: remove what it created
                policy, desired = Policy.MERGED, []
                protected = (target.state["services"].get(sname) or {}).get("protected") or []
            managed = [list(k) for k in (done.managed_keys if done is not None else [])]
            if policy is Policy.MERGED:
                # merged never deletes; what the failed apply created must go all the same
                policy, managed = Policy.REPLACED, [list(k) for k in created]
            res = await sync_service(
                session, sname, desired, policy=policy, protected=protected, managed_keys=managed
            )
            rolled[sname] = res
            if res.changes:
                events.append(Event("Normal", "Applied", "rollback: " + changes_message(sname, res.changes)))
        results.services = {n: r for n, r in rolled.items() if n in validated}
        after = await run_health_checks(session)
        results.health = after
        message = rv.failure_message(failed, good)
        drift = [line for r in rolled.values() for line in r.remaining]
        if drift:
            message += "; still different after the rollback: " + "; ".join(drift[:3])
        if not after.ok:
            message += f"; still unhealthy after the rollback: {after.message}"
        results.sync = Step(False, "RolledBack", message, terminal=True)
        events.append(Event("Warning", "RolledBack", message))
        results.revision = _revision_status(good.number, good.number, failed)
        return parse_duration((body.get("spec") or {}).get("resyncInterval"), self.default_resync)

    def _backup_once(
        self, session: Session, body: Mapping[str, Any], sname: str, taken: list[str], events: list[Event]
    ) -> Any:
        """A `before_apply` hook: one backup per reconcile, before the first overridden change."""
        backups = self.backups
        assert backups is not None

        async def hook(plan: diff.Plan) -> None:
            if taken:
                return
            why = f"before an overridden apply of {sname}: " + "; ".join(plan.summary()[:3])
            name = await backups.take(session, body, why[:500])
            if name is not None:
                taken.append(name)
                events.append(Event("Normal", "BackupTaken", f"device configuration saved in Secret {name}"))

        return hook

    async def _restore(
        self, session: Session, body: Mapping[str, Any], name: str, events: list[Event]
    ) -> None:
        backups = self.backups
        assert backups is not None
        try:
            await backups.restore(session, body, name)
        except RevisionError as exc:
            events.append(Event("Warning", "RestoreFailed", str(exc)))
        else:
            events.append(Event("Normal", "Restored", f"backup {name} restored onto the device"))
        await backups.done(body)


class ValidSpecs:
    """The desired state each appliance last validated clean, with the dictionary it validated
    against: a resync of an unchanged spec skips the schema check (its items only get their
    defaults again, fresh copies each time). Bounded: the least recently used appliance goes first."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._seen: OrderedDict[str, tuple[ProviderDictionary, str, str]] = OrderedDict()

    def known(self, uid: str, dictionary: ProviderDictionary, pname: str, digest: str) -> bool:
        hit = self._seen.get(uid)
        if hit is None or hit[0] is not dictionary or hit[1:] != (pname, digest):
            return False
        self._seen.move_to_end(uid)
        return True

    def add(self, uid: str, dictionary: ProviderDictionary, pname: str, digest: str) -> None:
        self._seen[uid] = (dictionary, pname, digest)
        self._seen.move_to_end(uid)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)


def _validate(
    dictionary: ProviderDictionary,
    services_spec: Mapping[str, Any],
    pname: str,
    *,
    seen: ValidSpecs | None = None,
    key: tuple[str, str] = ("", ""),
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Desired items with defaults applied, or the problems found. With `seen` and `key`
    (appliance uid, hash of the desired state holding `services_spec`), a state that validated
    clean against this dictionary before is not checked again."""
    uid, digest = key
    cache = seen if uid and digest else None
    if cache is not None and cache.known(uid, dictionary, pname, digest):
        return {
            sname: [apply_defaults(dictionary.services[sname].fields, item) for item in _items(sspec)]
            for sname, sspec in services_spec.items()
        }, []
    validated, problems = _check_services(dictionary, services_spec, pname)
    if cache is not None and not problems:
        cache.add(uid, dictionary, pname, digest)
    return validated, problems


def _items(sspec: Any) -> Any:
    return (sspec or {}).get("items") or []


def _check_services(
    dictionary: ProviderDictionary, services_spec: Mapping[str, Any], pname: str
) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    validated: dict[str, list[dict[str, Any]]] = {}
    problems: list[str] = []
    for sname, sspec in services_spec.items():
        if sname not in dictionary.services:
            known = ", ".join(sorted(dictionary.services)) or "none"
            problems.append(f"spec.services.{sname}: provider {pname} has no such service (it has: {known})")
            continue
        try:
            validated[sname] = validate_items(
                dictionary.services[sname],
                _items(sspec),
                where=f"spec.services.{sname}.items",
            )
        except ItemValidationError as exc:
            problems.extend(str(p) for p in exc.problems)
        if dictionary.services[sname].identity is None or "list" not in dictionary.services[sname].operations:
            problems.append(
                f"spec.services.{sname}: provider {pname} cannot reconcile this service (no list/identity)"
            )
    return validated, problems


def _created_keys(result: ServiceResult | None) -> list[diff.Key]:
    if result is None or result.plan is None:
        return []
    return [s.key for s in result.plan.steps() if isinstance(s, diff.Create) and s.key is not None]


def _number(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def _revision_status(current: Any, last_good: Any, failed: rv.RevisionInfo | None) -> dict[str, Any]:
    """status.revision; `failed` names the spec revision the health gate rolled back (null clears it)."""
    out: dict[str, Any] = {"current": current, "lastGood": last_good}
    out["failed"] = (
        {"revision": failed.number, "generation": failed.failed_generation, "hash": failed.hash[:16]}
        if failed is not None
        else None
    )
    return out


def _commit_pending(status: Mapping[str, Any]) -> bool:
    """The last reconcile did not end in sync: a commit may be outstanding."""
    insync = next((c for c in status.get("conditions") or [] if c.get("type") == "InSync"), None)
    return insync is None or insync.get("status") != "True"


def _backoff(status: Mapping[str, Any]) -> float:
    failures = int(status.get("failures") or 0) + 1
    return float(min(300, 5 * 2 ** min(failures, 6)))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
