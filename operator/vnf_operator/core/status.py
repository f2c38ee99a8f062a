"""Assemble the status of a VnfAppliance / VnfProvider from the results of one reconcile.

The one place that turns sub-step results into the status patch (Flux's "summarize"): the
condition rules themselves live in `conditions.py`; this module adds the domain fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from vnf_operator.core import conditions


@dataclass(frozen=True)
class Step:
    ok: bool | None
    reason: str
    message: str
    terminal: bool = False


class _HealthLike(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def message(self) -> str: ...

    checks: Any


class _ServiceLike(Protocol):
    remaining: list[str]

    def status(self, *, dry_run: bool) -> dict[str, Any]: ...


@dataclass
class ApplianceResults:
    generation: int
    paused: bool = False
    dry_run: bool = False
    report_only: bool = False
    provider: Step | None = None
    provider_info: dict[str, Any] = field(default_factory=dict)
    validation: Step | None = None
    connection: Step | None = None
    health: Any = None
    bootstrap: Step | None = None
    bootstrap_info: dict[str, Any] = field(default_factory=dict)
    sync: Step | None = None
    services: dict[str, Any] = field(default_factory=dict)
    host_keys: dict[str, str] = field(default_factory=dict)
    revision: dict[str, Any] | None = None
    """status.revision (current, lastGood); None leaves the previous value in place."""


def _step(s: Step | None) -> conditions.StepResult | None:
    if s is None:
        return None
    return conditions.StepResult(ok=s.ok, reason=s.reason, message=s.message, terminal=s.terminal)


def _health_step(results: ApplianceResults) -> conditions.StepResult | None:
    if results.connection is not None:
        return _step(results.connection)
    h = results.health
    if h is None:
        return None
    return conditions.StepResult(
        ok=h.ok, reason="Healthy" if h.ok else "HealthCheckFailed", message=h.message, terminal=False
    )


def assemble_status(results: ApplianceResults, *, previous: Mapping[str, Any], now: str) -> dict[str, Any]:
    """The complete status patch: conditions always as the full list."""
    rr = conditions.ReconcileResults(
        provider=_step(results.provider),
        validation=_step(results.validation),
        health=_health_step(results),
        bootstrap=_step(results.bootstrap),
        sync=_step(results.sync),
        paused=results.paused,
        dry_run=results.dry_run,
        drift_detected=bool(results.sync is not None and results.sync.reason == "DriftDetected"),
    )
    conds = conditions.summarize(
        rr, generation=results.generation, previous=previous.get("conditions") or [], now=now
    )
    status: dict[str, Any] = {"observedGeneration": results.generation, "conditions": conds}
    if results.provider_info:
        status["provider"] = results.provider_info
    if results.health is not None:
        status["health"] = {"phases": [c.status() for c in results.health.checks], "checkedAt": now}
    if results.bootstrap_info:
        status["bootstrap"] = results.bootstrap_info
    if results.services:
        status["services"] = {
            name: {
                **svc.status(dry_run=results.dry_run),
                "lastSyncTime": now,
                "managedKeys": svc.managed_keys,
            }
            for name, svc in results.services.items()
        }
        status["lastSyncTime"] = now
        if results.dry_run:
            status["plan"] = [
                line for svc in results.services.values() for line in (svc.plan.summary() if svc.plan else [])
            ][:200]
    if results.host_keys:
        status["hostKeys"] = results.host_keys
    if results.revision is not None:
        status["revision"] = results.revision
    ready = next((c for c in conds if c["type"] == "Ready"), None)
    failed = ready is not None and ready["status"] != "True" and not results.paused
    status["failures"] = (int(previous.get("failures") or 0) + 1) if failed else 0
    return status


def summarize_provider(
    *,
    valid: bool,
    problems: Sequence[str],
    total_problems: int,
    generation: int,
    previous: Sequence[Mapping[str, Any]],
    now: str,
) -> list[dict[str, Any]]:
    """Conditions of a VnfProvider: Ready (valid), Stalled (invalid until its spec changes)."""
    if valid:
        step = conditions.StepResult(
            ok=True, reason="Valid", message="provider dictionary is valid", terminal=False
        )
    else:
        more = (
            f" (+{total_problems - len(problems[:3])} more, see status.errors)" if total_problems > 3 else ""
        )
        step = conditions.StepResult(
            ok=False, reason="InvalidDictionary", message="; ".join(problems[:3]) + more, terminal=True
        )
    rr = conditions.ReconcileResults(provider=step, validation=step)
    conds = conditions.summarize(rr, generation=generation, previous=previous, now=now)
    keep = {"Ready", "Reconciling", "Stalled"}
    return [c for c in conds if c["type"] in keep]


# Fields that change on every reconcile even when nothing else did: when they are all a status patch
# would change, it is not written (see `write_needed`).
_VOLATILE_TOP = ("lastSyncTime",)


def merge_patch(target: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch: what the apiserver makes of `target` with `patch`."""
    out = dict(target)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping):
            base = out.get(key)
            out[key] = merge_patch(base if isinstance(base, Mapping) else {}, value)
        else:
            out[key] = value
    return out


def _stable(status: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in status.items() if k not in _VOLATILE_TOP}
    health = out.get("health")
    if isinstance(health, Mapping):
        out["health"] = {
            "phases": [
                {k: v for k, v in p.items() if k != "latencyMs"} if isinstance(p, Mapping) else p
                for p in health.get("phases") or []
            ],
            **{k: v for k, v in health.items() if k not in ("phases", "checkedAt")},
        }
    services = out.get("services")
    if isinstance(services, Mapping):
        out["services"] = {
            name: {k: v for k, v in svc.items() if k != "lastSyncTime"} if isinstance(svc, Mapping) else svc
            for name, svc in services.items()
        }
    return out


def write_needed(
    current: Mapping[str, Any], patch: Mapping[str, Any], *, now: datetime, heartbeat_seconds: float
) -> bool:
    """Whether a reconcile's status patch has to be written.

    Not when it would change only the times of a check that found everything as before (sync and
    health times, check latencies): a no-op resync then writes nothing, as Flux's controllers do,
    instead of a write, a watch event to every watcher and an etcd revision per appliance per resync.
    `lastSyncTime` is still refreshed at least every `heartbeat_seconds`.
    """
    if _stable(merge_patch(current, patch)) != _stable(current):
        return True
    last = parse_time(current.get("lastSyncTime"))
    if last is None:
        return "lastSyncTime" in patch
    return (now - last).total_seconds() >= heartbeat_seconds


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 time as the status stores it (`...Z`); None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
