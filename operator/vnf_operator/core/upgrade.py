"""Device software upgrades (`spec.upgrade`): the pieces that need no I/O.

The engine (`engine/upgrade.py`) runs the flow across reconciles and keeps its progress in
`status.upgrade`; this module decides the poll backoff, when a failed target may be tried again,
and how the `Upgraded` condition (and, while an upgrade runs or after it failed, `Ready`) reads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

UPGRADED: Final = "Upgraded"
"""Condition type: the device runs `spec.upgrade.version`."""
UPGRADE_OPERATION: Final = "upgrade"
VERSION_OPERATION: Final = "version"
VERSION_CAPTURE: Final = "version"

IN_PROGRESS: Final = "InProgress"
SUCCEEDED: Final = "Succeeded"
FAILED: Final = "Failed"

DEFAULT_TIMEOUT: Final = 900.0
POLL_BASE: Final = 2.0
POLL_MAX: Final = 30.0

Effect = Literal["none", "progressing", "stalled"]


def request_key(upgrade_spec: Mapping[str, Any], retry_request: str) -> str:
    """Identifies one upgrade request: `spec.upgrade` plus the reconcile-requested annotation. A
    failed request is not tried again until this changes."""
    text = json.dumps({"spec": dict(upgrade_spec), "retry": retry_request}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def poll_delay(polls: int, base: float = POLL_BASE, cap: float = POLL_MAX) -> float:
    """Seconds until the next look at a rebooting device: base, 2*base, 4*base... up to `cap`."""
    return float(min(cap, base * 2 ** min(max(polls, 0), 16)))


def timeout_seconds(upgrade_spec: Mapping[str, Any]) -> float:
    value = upgrade_spec.get("timeoutSeconds")
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return DEFAULT_TIMEOUT


@dataclass(frozen=True)
class UpgradeCondition:
    """The `Upgraded` condition and what it does to the summary conditions.

    `effect`: `progressing` (an upgrade is running: Ready=Unknown, Reconciling=True), `stalled`
    (it failed: Ready=False, Stalled=True until `spec.upgrade` changes) or `none`.
    """

    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str
    effect: Effect = "none"


def apply_condition(
    conditions: Sequence[Mapping[str, Any]],
    cond: UpgradeCondition | None,
    *,
    previous: Sequence[Mapping[str, Any]],
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """`conditions` with `Upgraded` set (or removed when `cond` is None) and, when the upgrade
    dominates, Ready/Reconciling/Stalled overridden. While an upgrade runs the device is expected
    to fail its checks (it reboots), so the upgrade explains Ready; after a failed upgrade a Ready
    that is already False (another failure) is left alone: that failure is the more urgent one."""
    before = {str(c.get("type")): c for c in previous if isinstance(c, Mapping)}
    out = [dict(c) for c in conditions if c.get("type") != UPGRADED]
    if cond is None:
        return out

    def make(ctype: str, status: str, reason: str, message: str) -> dict[str, Any]:
        old = before.get(ctype)
        since = now
        if old is not None and old.get("status") == status:
            since = str(old.get("lastTransitionTime") or now)
        return {
            "type": ctype,
            "status": status,
            "observedGeneration": generation,
            "lastTransitionTime": since,
            "reason": reason,
            "message": message[:4096],
        }

    out.append(make(UPGRADED, cond.status, cond.reason, cond.message))
    by_type = {c["type"]: i for i, c in enumerate(out)}
    ready = out[by_type["Ready"]] if "Ready" in by_type else None
    if cond.effect == "none" or ready is None:
        return out
    if cond.effect == "stalled" and ready.get("status") == "False":
        return out
    if cond.effect == "progressing":
        trio = {
            "Ready": ("Unknown", cond.reason, cond.message),
            "Reconciling": ("True", cond.reason, cond.message),
            "Stalled": ("False", cond.reason, ""),
        }
    else:
        trio = {
            "Ready": ("False", cond.reason, cond.message),
            "Reconciling": ("False", cond.reason, ""),
            "Stalled": ("True", cond.reason, cond.message),
        }
    for ctype, (status, reason, message) in trio.items():
        if ctype in by_type:
            out[by_type[ctype]] = make(ctype, status, reason, message)
    return out
