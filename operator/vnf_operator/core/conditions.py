"""Status conditions from the results of one reconcile (Flux's "summarize" pattern).

The reconcile's sub-steps each return a `StepResult`; `summarize()` derives the complete,
ordered condition list in one place, kstatus compatible:

- `Ready`, `Reconciling`, `Stalled`: the standard trio read by kstatus, Flux, Argo CD and
  `kubectl wait`. `Stalled=True` means a terminal failure that will not heal without a spec
  change; `Reconciling=True` means work is in progress or being retried.
- `ProviderResolved`, `Healthy`, `Bootstrapped`, `InSync`: one domain condition per step. A step
  that did not run this time (`None`) keeps its previous condition unchanged, including its
  `observedGeneration`, so readers can tell how fresh it is.

`lastTransitionTime` changes only when a condition's status changes. Everything here is pure:
the caller passes `now` (RFC 3339) and the previous conditions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "CONDITION_TYPES",
    "Condition",
    "ConditionStatus",
    "KStatus",
    "ReconcileResults",
    "StepResult",
    "kstatus_status",
    "reason_text",
    "summarize",
]

ConditionStatus = Literal["True", "False", "Unknown"]
KStatus = Literal["InProgress", "Failed", "Current", "Terminating"]

READY: Final = "Ready"
RECONCILING: Final = "Reconciling"
STALLED: Final = "Stalled"
PROVIDER_RESOLVED: Final = "ProviderResolved"
HEALTHY: Final = "Healthy"
BOOTSTRAPPED: Final = "Bootstrapped"
IN_SYNC: Final = "InSync"
CONDITION_TYPES: Final = (READY, RECONCILING, STALLED, PROVIDER_RESOLVED, HEALTHY, BOOTSTRAPPED, IN_SYNC)

# Reasons set by summarize itself.
RECONCILED: Final = "Reconciled"
PAUSED: Final = "Paused"
DRY_RUN: Final = "DryRun"
DRIFT_DETECTED: Final = "DriftDetected"
PROGRESSING: Final = "Progressing"
RETRYING: Final = "RetryingAfterError"
PENDING: Final = "Pending"

MAX_MESSAGE: Final = 4096
_REASON_RE: Final = re.compile(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
_WORD_RE: Final = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class StepResult:
    """The outcome of one reconcile step.

    `ok`: True succeeded, False failed, None still being determined (counts as in progress).
    `terminal`: the failure will not heal by retrying (invalid spec or provider, missing Secret
    or key, item validation failure); it stalls the object until its spec changes.
    `reason` is CamelCase (anything else is converted); `message` must already be masked.
    """

    ok: bool | None
    reason: str = ""
    message: str = ""
    terminal: bool = False


@dataclass(frozen=True)
class ReconcileResults:
    """Everything one reconcile found; a step left as None did not run this time."""

    provider: StepResult | None = None
    validation: StepResult | None = None
    health: StepResult | None = None
    """Connection and health checks."""
    bootstrap: StepResult | None = None
    sync: StepResult | None = None
    paused: bool = False
    dry_run: bool = False
    in_progress: bool = False
    """Work started but not finished (e.g. waiting for a reboot); requeue soon."""
    drift_detected: bool = False
    """The device differs from the spec and nothing was changed (report-only or dry run)."""

    def steps(self) -> tuple[tuple[str, StepResult | None], ...]:
        return (
            ("provider", self.provider),
            ("validation", self.validation),
            ("health", self.health),
            ("bootstrap", self.bootstrap),
            ("sync", self.sync),
        )


@dataclass(frozen=True)
class Condition:
    """One status condition (the shape of `metav1.Condition`)."""

    type: str
    status: ConditionStatus
    reason: str
    message: str
    observed_generation: int
    last_transition_time: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "status": self.status,
            "observedGeneration": self.observed_generation,
            "lastTransitionTime": self.last_transition_time,
            "reason": self.reason,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, generation: int = 0, now: str = "") -> Condition | None:
        """A condition read back from status; None when `data` is not one."""
        ctype, status = data.get("type"), data.get("status")
        if not isinstance(ctype, str) or status not in ("True", "False", "Unknown"):
            return None
        observed = data.get("observedGeneration")
        return cls(
            type=ctype,
            status=status,
            reason=str(data.get("reason") or ""),
            message=str(data.get("message") or ""),
            observed_generation=observed
            if isinstance(observed, int) and not isinstance(observed, bool)
            else generation,
            last_transition_time=str(data.get("lastTransitionTime") or now),
        )


# --------------------------------------------------------------------------- helpers


def reason_text(text: str, default: str) -> str:
    """A valid condition reason: `text` when it is CamelCase already, else its words joined
    CamelCase (`"device unreachable"` → `DeviceUnreachable`), else `default`."""
    if _REASON_RE.fullmatch(text) and len(text) <= 1024:
        return text
    words = _WORD_RE.findall(text)
    joined = "".join(w[:1].upper() + w[1:] for w in words)[:1024]
    return joined if joined and _REASON_RE.fullmatch(joined) else default


def _message(text: str, mask: Callable[[str], str] | None) -> str:
    if mask is not None:
        text = mask(text)
    if len(text) > MAX_MESSAGE:
        text = text[: MAX_MESSAGE - 1] + "…"
    return text


_FAILED: Final = {
    "provider": "ProviderNotResolved",
    "validation": "InvalidSpec",
    "health": "Unhealthy",
    "bootstrap": "BootstrapFailed",
    "sync": "SyncFailed",
}
_SUCCEEDED: Final = {
    "provider": "Resolved",
    "validation": "Valid",
    "health": "Healthy",
    "bootstrap": "Bootstrapped",
    "sync": "InSync",
}
_DOMAIN: Final = (
    (PROVIDER_RESOLVED, "provider"),
    (HEALTHY, "health"),
    (BOOTSTRAPPED, "bootstrap"),
    (IN_SYNC, "sync"),
)


def _step_reason(name: str, step: StepResult) -> str:
    if step.ok is False:
        return reason_text(step.reason, _FAILED[name])
    if step.ok is None:
        return reason_text(step.reason, PROGRESSING)
    return reason_text(step.reason, _SUCCEEDED[name])


# --------------------------------------------------------------------------- summarize


def summarize(
    results: ReconcileResults,
    *,
    generation: int,
    previous: Sequence[Mapping[str, Any]],
    now: str,
    mask: Callable[[str], str] | None = None,
) -> list[dict[str, Any]]:
    """The full ordered condition list (`CONDITION_TYPES`) as plain dicts for a status patch.

    Precedence for Ready/Reconciling/Stalled: a terminal failure (first in step order) stalls;
    else a transient failure retries; else paused; else in progress (or nothing evaluated, or a
    step still unknown); else ready as `DryRun`, `DriftDetected` (report-only) or `Reconciled`.
    `mask` is applied to every message (secret values must never reach status).
    """
    before: dict[str, Condition] = {}
    for entry in previous:
        if isinstance(entry, Mapping):
            cond = Condition.from_dict(entry, generation=generation, now=now)
            if cond is not None and cond.type not in before:
                before[cond.type] = cond

    def make(ctype: str, status: ConditionStatus, reason: str, message: str) -> Condition:
        old = before.get(ctype)
        return Condition(
            type=ctype,
            status=status,
            reason=reason,
            message=_message(message, mask),
            observed_generation=generation,
            last_transition_time=now if old is None or old.status != status else old.last_transition_time,
        )

    steps = results.steps()
    failures = [(name, s) for name, s in steps if s is not None and s.ok is False]
    terminal = next(((n, s) for n, s in failures if s.terminal), None)
    transient = next(((n, s) for n, s in failures if not s.terminal), None)
    evaluated = [s for _, s in steps if s is not None]
    undetermined = any(s.ok is None for s in evaluated)
    sync_message = results.sync.message if results.sync is not None and results.sync.ok else ""

    trio: list[Condition]
    if terminal is not None:
        name, step = terminal
        reason = _step_reason(name, step)
        message = step.message or f"{name} failed; fix the spec to continue"
        trio = [
            make(READY, "False", reason, message),
            make(RECONCILING, "False", reason, ""),
            make(STALLED, "True", reason, message),
        ]
    elif transient is not None:
        name, step = transient
        reason = _step_reason(name, step)
        message = step.message or f"{name} failed"
        trio = [
            make(READY, "False", reason, message),
            make(RECONCILING, "True", RETRYING, f"{reason}: {message}"),
            make(STALLED, "False", RETRYING, ""),
        ]
    elif results.paused:
        message = "reconciliation is paused: the device is neither checked nor changed"
        trio = [
            make(READY, "True", PAUSED, message),
            make(RECONCILING, "False", PAUSED, ""),
            make(STALLED, "False", PAUSED, ""),
        ]
    elif results.in_progress or undetermined or not evaluated:
        pending = next((s for s in evaluated if s.ok is None), None)
        message = (pending.message if pending is not None else "") or "reconciliation in progress"
        trio = [
            make(READY, "Unknown", PROGRESSING, message),
            make(RECONCILING, "True", PROGRESSING, message),
            make(STALLED, "False", PROGRESSING, ""),
        ]
    else:
        if results.dry_run:
            reason = DRY_RUN
            message = (
                "dry run: the device differs from the spec; changes are planned, not applied"
                if results.drift_detected
                else "dry run: the device matches the spec"
            )
        elif results.drift_detected:
            reason = DRIFT_DETECTED
            message = "report-only: the device differs from the spec; nothing was changed"
        else:
            reason = RECONCILED
            message = sync_message or "the appliance matches its spec"
        trio = [
            make(READY, "True", reason, message),
            make(RECONCILING, "False", reason, ""),
            make(STALLED, "False", reason, ""),
        ]

    domain: list[Condition] = []
    by_name = dict(steps)
    for ctype, name in _DOMAIN:
        result = by_name[name]
        if result is None:
            old = before.get(ctype)
            domain.append(
                old if old is not None else make(ctype, "Unknown", PENDING, f"{name} not checked yet")
            )
            continue
        if name == "sync" and result.ok is True and results.drift_detected:
            domain.append(
                make(ctype, "False", DRIFT_DETECTED, result.message or "the device differs from the spec")
            )
            continue
        status: ConditionStatus = (
            "True" if result.ok is True else "False" if result.ok is False else "Unknown"
        )
        domain.append(make(ctype, status, _step_reason(name, result), result.message))
    return [c.to_dict() for c in (*trio, *domain)]


# --------------------------------------------------------------------------- kstatus


def _conditions_by_type(status: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    conditions = status.get("conditions")
    if isinstance(conditions, Sequence) and not isinstance(conditions, str):
        for entry in conditions:
            if isinstance(entry, Mapping) and isinstance(entry.get("type"), str):
                found.setdefault(entry["type"], entry)
    return found


def kstatus_status(obj: Mapping[str, Any]) -> KStatus:
    """The kstatus status of an object (sigs.k8s.io/cli-utils generic rules, with Flux's Ready).

    Terminating when deletion started; InProgress when `status.observedGeneration` (or the Ready
    condition's) lags `metadata.generation`; InProgress when Reconciling=True; Failed when
    Stalled=True; then Current when Ready=True, InProgress when Ready is False or Unknown;
    Current when there is no Ready condition.
    """
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    if meta.get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status")
    status = status if isinstance(status, Mapping) else {}
    generation = meta.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return "InProgress"
    conditions = _conditions_by_type(status)
    reconciling, stalled, ready = conditions.get(RECONCILING), conditions.get(STALLED), conditions.get(READY)
    if reconciling is not None and reconciling.get("status") == "True":
        return "InProgress"
    if stalled is not None and stalled.get("status") == "True":
        return "Failed"
    if ready is None:
        return "Current"
    ready_generation = ready.get("observedGeneration")
    if generation is not None and ready_generation is not None and ready_generation != generation:
        return "InProgress"
    return "Current" if ready.get("status") == "True" else "InProgress"
