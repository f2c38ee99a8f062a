"""Upgrade the device's software to `spec.upgrade.version` (docs/lifecycle.md).

A flow across reconciles, its progress kept in `status.upgrade` so that no worker waits for a
reboot: the device is healthy (pre-check) → a backup is taken → the provider's `upgrade` operation
runs (phase `InProgress`) → later reconciles poll the health checks, with backoff, until the device
answers healthy with the target version (→ `Succeeded`, and the reconcile goes on to re-apply the
desired configuration) or the deadline passes (→ the backup is restored, `Failed`). A failed request
is not tried again until `spec.upgrade` or the reconcile-requested annotation changes.

The running version comes from the provider's `version` operation (`response.capture.version`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vnf_operator.core import revisions as rv
from vnf_operator.core import upgrade as up
from vnf_operator.core.errors import TransportError, VnfError
from vnf_operator.core.schedule import format_time, parse_time
from vnf_operator.engine.backups import backup_spec
from vnf_operator.engine.health import HealthResult, run_health_checks
from vnf_operator.engine.revisions import BACKUP_OPERATION, BackupStore, backup_service
from vnf_operator.engine.session import Session
from vnf_operator.k8s.client import KubeError

log = logging.getLogger(__name__)

DELETE: Any = None
"""`status.upgrade: null` in the merge patch removes the block."""


@dataclass
class UpgradeOutcome:
    proceed: bool = True
    """Go on with the reconcile (sync the services); False while the device is being upgraded."""
    requeue_after: float | None = None
    status: dict[str, Any] | None = DELETE
    """status.upgrade (None removes it)."""
    version: str | None = None
    """The version the device reported (None: not read this time)."""
    condition: up.UpgradeCondition | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    health: HealthResult | None = None
    """Health checks run again (after a restore); replaces the reconcile's earlier result."""


async def device_version(session: Session) -> str | None:
    """What the provider's `version` operation reports; None when it declares none."""
    service = backup_service(session, up.VERSION_OPERATION)
    if service is None:
        return None
    # Often the same status page the health checks just read (OPNsense): no second request then.
    parsed = await session.run(service, up.VERSION_OPERATION, reuse=True)
    value = (parsed.captured or {}).get(up.VERSION_CAPTURE)
    if value is None and isinstance(parsed.data, str):
        value = parsed.data.strip()
    if value is None or str(value).strip() == "":
        raise VnfError(f"services.{service}.operations.version: the answer carries no version")
    return str(value).strip()


class UpgradeRunner:
    def __init__(
        self, backups: BackupStore | None, *, poll_base: float = up.POLL_BASE, poll_max: float = up.POLL_MAX
    ) -> None:
        self.backups = backups
        self.poll_base = poll_base
        self.poll_max = poll_max

    def _delay(self, polls: int) -> float:
        return up.poll_delay(polls, self.poll_base, self.poll_max)

    async def step(
        self, session: Session, body: Mapping[str, Any], health: HealthResult, now: float | None = None
    ) -> UpgradeOutcome:
        now = time.time() if now is None else now
        spec = body.get("spec") or {}
        status = body.get("status") or {}
        previous = dict(status.get("upgrade") or {})
        if previous.get("phase") == up.IN_PROGRESS:
            return await self._wait(session, body, previous, health, now)
        upgrade_spec = spec.get("upgrade") or {}
        target = str(upgrade_spec.get("version") or "")
        out = UpgradeOutcome()
        if not target:
            if health.ok and not status.get("softwareVersion"):
                out.version = await _version_or_none(session)
            return out
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        key = up.request_key(upgrade_spec, str(annotations.get(rv.RECONCILE_REQUESTED) or ""))
        out.status = previous or None
        failed_before = previous.get("phase") == up.FAILED and previous.get("key") == key
        if failed_before:
            message = str(previous.get("message") or f"the upgrade to {target} failed")
            out.condition = up.UpgradeCondition("False", "UpgradeFailed", _not_retried(message), "stalled")
            if health.ok:
                out.version = await _version_or_none(session)
            return out
        if not health.ok:
            out.condition = up.UpgradeCondition(
                "False", "PreCheckFailed", f"not upgrading to {target} until the health checks pass"
            )
            return out
        missing = [
            op for op in (up.UPGRADE_OPERATION, up.VERSION_OPERATION) if backup_service(session, op) is None
        ]
        if missing:
            message = (
                f"spec.upgrade: provider {session.provider.name} declares no "
                + " and no ".join(f"`{m}`" for m in missing)
                + " operation: it cannot upgrade devices"
            )
            out.condition = up.UpgradeCondition("False", "UpgradeNotSupported", message, "stalled")
            return out
        running = await device_version(session)
        out.version = running
        if running == target:
            done = previous.get("phase") == up.SUCCEEDED and previous.get("target") == target
            reason = "Upgraded" if done else "UpToDate"
            out.condition = up.UpgradeCondition("True", reason, f"the device runs version {target}")
            return out
        return await self._start(session, body, out, target, running, key, upgrade_spec, now)

    async def _start(
        self,
        session: Session,
        body: Mapping[str, Any],
        out: UpgradeOutcome,
        target: str,
        running: str | None,
        key: str,
        upgrade_spec: Mapping[str, Any],
        now: float,
    ) -> UpgradeOutcome:
        backup = None
        if self.backups is not None and backup_service(session, BACKUP_OPERATION) is not None:
            why = f"before upgrading from {running} to {target}"
            try:
                backup = await self.backups.take(
                    session, body, why, keep=backup_spec(body.get("spec") or {})[1]
                )
            except (VnfError, KubeError) as exc:
                message = session.masker(f"not upgrading to {target}: the backup before it failed: {exc}")
                out.condition = up.UpgradeCondition("False", "BackupFailed", message)
                out.events.append(("Warning", "BackupFailed", message))
                out.requeue_after = 30.0
                return out
            if backup is not None:
                out.events.append(("Normal", "BackupTaken", f"device configuration saved in Secret {backup}"))
        service = backup_service(session, up.UPGRADE_OPERATION)
        assert service is not None
        record: dict[str, Any] = {
            "target": target,
            "from": running,
            "key": key,
            "backup": backup,
            "startedAt": format_time_epoch(now),
            "deadline": format_time_epoch(now + up.timeout_seconds(upgrade_spec)),
            "polls": 0,
            "finishedAt": None,
        }
        try:
            await session.run(service, up.UPGRADE_OPERATION, params={"version": target})
        except TransportError as exc:
            if not exc.transient:  # refused: nothing changed on the device, nothing to restore
                message = session.masker(f"the device refused the upgrade to {target}: {exc}")
                out.status = {
                    **record,
                    "phase": up.FAILED,
                    "message": message,
                    "finishedAt": record["startedAt"],
                }
                out.condition = up.UpgradeCondition(
                    "False", "UpgradeFailed", _not_retried(message), "stalled"
                )
                out.events.append(("Warning", "UpgradeFailed", message))
                return out
            # The answer was lost (the device may already be rebooting): the version will tell.
        message = f"upgrading from {running} to {target}" + (f" (backup {backup})" if backup else "")
        out.status = {**record, "phase": up.IN_PROGRESS, "message": message}
        out.condition = up.UpgradeCondition("False", "Upgrading", message, "progressing")
        out.events.append(("Normal", "UpgradeStarted", message))
        out.requeue_after = self._delay(0)
        out.proceed = False
        return out

    async def _wait(
        self,
        session: Session,
        body: Mapping[str, Any],
        record: dict[str, Any],
        health: HealthResult,
        now: float,
    ) -> UpgradeOutcome:
        out = UpgradeOutcome()
        target = str(record.get("target") or "")
        deadline = parse_time(str(record.get("deadline") or ""))
        expired = deadline is None or now >= deadline.timestamp()
        running: str | None = None
        why = health.message
        if health.ok:
            try:
                running = await device_version(session)
            except VnfError as exc:
                why = session.masker(f"the version could not be read: {exc}")
            out.version = running
            if running == target:
                message = f"the device runs version {target} (was {record.get('from')})"
                out.status = {**record, "phase": up.SUCCEEDED, "message": message, "finishedAt": _now(now)}
                out.condition = up.UpgradeCondition("True", "Upgraded", message)
                out.events.append(("Normal", "Upgraded", message))
                return out
            if running is not None:
                why = f"the device runs version {running}, not {target}"
        if not expired:
            polls = int(record.get("polls") or 0) + 1
            message = f"upgrading to {target}: waiting for the device ({why})"
            out.status = {**record, "polls": polls, "message": message[:1000]}
            out.condition = up.UpgradeCondition("False", "Upgrading", message, "progressing")
            out.requeue_after = self._delay(polls)
            out.proceed = False
            return out
        return await self._fail(session, body, record, f"upgrade to {target} failed: {why}", out, now)

    async def _fail(
        self,
        session: Session,
        body: Mapping[str, Any],
        record: dict[str, Any],
        message: str,
        out: UpgradeOutcome,
        now: float,
    ) -> UpgradeOutcome:
        backup = record.get("backup")
        if backup and self.backups is not None:
            try:
                await self.backups.restore(session, body, str(backup))
            except (VnfError, KubeError) as exc:
                message += session.masker(f"; restoring backup {backup} failed: {exc}")
            else:
                message += f"; backup {backup} restored"
                out.events.append(("Normal", "Restored", f"backup {backup} restored onto the device"))
        else:
            message += "; no backup to restore"
        message = session.masker(message)
        out.status = {**record, "phase": up.FAILED, "message": message[:1000], "finishedAt": _now(now)}
        out.condition = up.UpgradeCondition("False", "UpgradeFailed", _not_retried(message), "stalled")
        out.events.append(("Warning", "UpgradeFailed", message))
        after = await run_health_checks(session)
        out.health = after
        if after.ok:
            out.version = await _version_or_none(session)
        else:
            out.proceed = False
            out.requeue_after = 60.0
        return out


async def _version_or_none(session: Session) -> str | None:
    """The running version for status; a failure to read it is not worth failing a reconcile."""
    try:
        return await device_version(session)
    except VnfError as exc:
        log.info("could not read the device version: %s", session.masker(str(exc)))
        return None


def _not_retried(message: str) -> str:
    return (
        f"{message}. Not tried again until spec.upgrade changes "
        f"(or annotation {rv.RECONCILE_REQUESTED} changes)"
    )


def format_time_epoch(epoch: float) -> str:
    return format_time(datetime.fromtimestamp(epoch, UTC))


def _now(epoch: float) -> str:
    return format_time_epoch(epoch)
