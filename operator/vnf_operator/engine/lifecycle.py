"""What the upgrade and scheduled-backup steps add to one reconcile's status, events and requeue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vnf_operator.core import upgrade as up
from vnf_operator.engine.backups import BackupReport
from vnf_operator.engine.upgrade import UpgradeOutcome


@dataclass
class LifecycleReport:
    upgrade: UpgradeOutcome | None = None
    backup: BackupReport | None = None

    def events(self) -> list[tuple[str, str, str]]:
        return [*(self.upgrade.events if self.upgrade else []), *(self.backup.events if self.backup else [])]

    def apply(
        self, status: dict[str, Any], previous: Mapping[str, Any], *, generation: int, now: str
    ) -> None:
        """Add status.upgrade, status.softwareVersion, status.backup and the Upgraded condition."""
        u = self.upgrade
        if u is not None:
            status["upgrade"] = u.status
            if u.version is not None:
                status["softwareVersion"] = u.version
        status["conditions"] = up.apply_condition(
            status.get("conditions") or [],
            u.condition if u is not None else _kept(previous, generation),
            previous=previous.get("conditions") or [],
            generation=generation,
            now=now,
        )
        if self.backup is not None:
            status["backup"] = self.backup.status

    def requeue(self, requeue: float | None) -> float | None:
        """The earliest of the reconcile's own requeue and the lifecycle steps' (a due backup)."""
        wanted = [r for r in (requeue, self.backup.requeue_after if self.backup else None) if r is not None]
        if self.upgrade is not None and self.upgrade.requeue_after is not None:
            wanted.append(self.upgrade.requeue_after)
        return min(wanted) if wanted else None


def _kept(previous: Mapping[str, Any], generation: int) -> up.UpgradeCondition | None:
    """A reconcile that did not reach the upgrade step keeps the previous Upgraded condition."""
    for c in previous.get("conditions") or []:
        if isinstance(c, Mapping) and c.get("type") == up.UPGRADED:
            return up.UpgradeCondition(
                c.get("status", "Unknown"), str(c.get("reason") or ""), str(c.get("message") or "")
            )
    return None
