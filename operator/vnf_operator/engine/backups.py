"""Scheduled backups (`spec.backup`): take one when the schedule says so, prune, report.

The backups themselves are `BackupStore`'s Secrets (engine/revisions.py), shared with the backups
taken before risky changes; `spec.backup.keep` bounds them all. When the last scheduled backup was
taken is read back from the Secrets, so a restarted operator neither repeats nor skips one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vnf_operator.core import revisions as rv
from vnf_operator.core.errors import VnfError
from vnf_operator.core.schedule import ScheduleError, format_time, parse_schedule, parse_time
from vnf_operator.engine.revisions import BACKUP_OPERATION, BackupStore, backup_service
from vnf_operator.engine.session import Session
from vnf_operator.k8s.client import KubeError

log = logging.getLogger(__name__)

MAX_LISTED = 20


@dataclass
class BackupReport:
    """What the scheduled-backup step did: status.backup, events, and when to come back."""

    status: dict[str, Any] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)
    """(type, reason, message)"""
    requeue_after: float | None = None


def backup_spec(spec: Mapping[str, Any]) -> tuple[str, int | None]:
    """`spec.backup`: (schedule, keep); schedule "" when no schedule is set."""
    block = spec.get("backup") or {}
    keep = block.get("keep")
    return str(block.get("schedule") or "").strip(), int(keep) if isinstance(keep, int) else None


async def run_schedule(
    store: BackupStore, session: Session, appliance: Mapping[str, Any], now: datetime | None = None
) -> BackupReport:
    """Take the scheduled backup when it is due (and prune to `keep`); report the backups."""
    now = now or datetime.now(UTC)
    schedule_text, keep = backup_spec(appliance.get("spec") or {})
    keep = keep or store.keep
    report = BackupReport()
    status: dict[str, Any] = {"schedule": schedule_text or None, "keep": keep, "error": None}
    report.status = status
    backups: Sequence[rv.BackupInfo] = []
    try:
        schedule = parse_schedule(schedule_text) if schedule_text else None
    except ScheduleError as exc:
        status["error"] = f"spec.backup.schedule: {exc}"
        report.events.append(("Warning", "InvalidBackupSchedule", status["error"]))
        schedule = None
    try:
        backups = await store.prune(appliance, keep)
        if schedule is not None and backup_service(session, BACKUP_OPERATION) is None:
            status["error"] = f"provider {session.provider.name} declares no `backup` operation"
            schedule = None
        if schedule is not None:
            created = parse_time((appliance.get("metadata") or {}).get("creationTimestamp") or "")
            last = parse_time(rv.last_scheduled(backups))
            if last is None and schedule.every is not None:
                due = now  # an interval starts with a backup
            else:
                due = schedule.next_after(last or created or now)
            if due <= now:
                name = await store.take(session, appliance, f"{rv.SCHEDULED} ({schedule.text})", keep=keep)
                if name is not None:
                    report.events.append(
                        ("Normal", "BackupTaken", f"scheduled backup saved in Secret {name}")
                    )
                backups = await store.prune(appliance, keep)
                last = parse_time(rv.last_scheduled(backups)) or now
                due = schedule.next_after(last)
            status["lastScheduled"] = format_time(last) if last is not None else None
            status["nextScheduled"] = format_time(due)
            report.requeue_after = max((due - now).total_seconds(), 1.0)
    except (VnfError, KubeError) as exc:
        message = session.masker(f"scheduled backup failed: {exc}")
        status["error"] = message
        report.events.append(("Warning", "BackupFailed", message))
        report.requeue_after = 30.0
        backups = await _listed(store, appliance)
    status["items"] = [b.status() for b in rv.newest_first(backups)[:MAX_LISTED]]
    return report


async def _listed(store: BackupStore, appliance: Mapping[str, Any]) -> Sequence[rv.BackupInfo]:
    try:
        return await store.list(appliance)
    except KubeError as exc:
        log.warning("cannot list the backups of %s: %s", appliance["metadata"]["name"], exc)
        return []
