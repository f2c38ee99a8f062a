"""Revisions of an appliance's desired state: hashing, history pruning, choosing what to apply.

A *desired state* is what an appliance asks of its device: `spec.providerRef` and `spec.services`.
Every desired state the operator applied in sync is kept as a ControllerRevision owned by the
appliance (numbered 1, 2, 3... in order of first application; applying the same state again reuses
its revision). Pure: the engine does the Kubernetes calls (`engine/revisions.py`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

PREFIX: Final = "vnf.operators.dev/"
ROLLBACK_TO: Final = PREFIX + "rollback-to"
"""Appliance annotation: pin the appliance to this revision number (manual rollback)."""
RECONCILE_REQUESTED: Final = PREFIX + "reconcile-requested"
"""Appliance annotation: a new value retries a spec the health gate rolled back."""
RESTORE_BACKUP: Final = PREFIX + "restore-backup"
"""Appliance annotation: restore the named backup Secret onto the device (once per value)."""

# On ControllerRevisions and backup Secrets.
APPLIANCE_UID_LABEL: Final = PREFIX + "appliance-uid"
APPLIANCE_LABEL: Final = PREFIX + "appliance"
KIND_LABEL: Final = PREFIX + "kind"
HASH_ANNOTATION: Final = PREFIX + "spec-hash"
GENERATION_ANNOTATION: Final = PREFIX + "generation"
FAILED_ANNOTATION: Final = PREFIX + "failed"
FAILED_GENERATION_ANNOTATION: Final = PREFIX + "failed-generation"
FAILED_REQUEST_ANNOTATION: Final = PREFIX + "failed-request"

DEFAULT_HISTORY: Final = 10
DEFAULT_BACKUPS: Final = 5
SHORT_HASH: Final = 10

Mode = Literal["spec", "pinned", "rolledBack"]


def desired_state(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a spec that a revision records: the provider and the desired services."""
    return {
        "providerRef": dict(spec.get("providerRef") or {}),
        "services": dict(spec.get("services") or {}),
    }


def state_hash(state: Mapping[str, Any]) -> str:
    """A stable hash of a desired state (key order and whitespace do not matter)."""
    text = json.dumps(state, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def label_value(text: str) -> str:
    """`text` when it is a valid label value, else a hash of it (label values are at most 63 chars)."""
    ok = len(text) <= 63 and all(c.isalnum() or c in "-_." for c in text)
    if ok and (not text or (text[0].isalnum() and text[-1].isalnum())):
        return text
    return "h-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def revision_name(appliance: str, digest: str) -> str:
    """ControllerRevision name: `<appliance>-<short hash>` (within the 253-character limit)."""
    return f"{appliance[: 253 - SHORT_HASH - 1]}-{digest[:SHORT_HASH]}"


@dataclass(frozen=True)
class RevisionInfo:
    """What the engine needs to know about one stored revision (its data is read on demand)."""

    name: str
    number: int
    hash: str
    generation: int = 0
    failed: str = ""
    """Why the health gate rolled this revision back ("" when it did not)."""
    failed_generation: int = 0
    failed_request: str = ""
    """The appliance's reconcile-requested annotation when it failed (a new value retries it)."""

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> RevisionInfo | None:
        meta = obj.get("metadata") or {}
        ann = meta.get("annotations") or {}
        number = obj.get("revision")
        name = meta.get("name")
        digest = ann.get(HASH_ANNOTATION)
        if not isinstance(number, int) or not isinstance(name, str) or not isinstance(digest, str):
            return None
        return cls(
            name=name,
            number=number,
            hash=digest,
            generation=_int(ann.get(GENERATION_ANNOTATION)),
            failed=str(ann.get(FAILED_ANNOTATION) or ""),
            failed_generation=_int(ann.get(FAILED_GENERATION_ANNOTATION)),
            failed_request=str(ann.get(FAILED_REQUEST_ANNOTATION) or ""),
        )


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def controller_revision(
    appliance: Mapping[str, Any], state: Mapping[str, Any], digest: str, number: int
) -> dict[str, Any]:
    """The ControllerRevision recording `state`, owned (and garbage collected) by the appliance."""
    meta = appliance["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": revision_name(meta["name"], digest),
            "namespace": meta["namespace"],
            "labels": {
                APPLIANCE_UID_LABEL: meta["uid"],
                APPLIANCE_LABEL: label_value(meta["name"]),
                "app.kubernetes.io/managed-by": "vnf-operator",
            },
            "annotations": {
                HASH_ANNOTATION: digest,
                GENERATION_ANNOTATION: str(int(meta.get("generation") or 0)),
            },
            "ownerReferences": [owner_reference(appliance)],
        },
        "data": dict(state),
        "revision": number,
    }


def owner_reference(appliance: Mapping[str, Any]) -> dict[str, Any]:
    meta = appliance["metadata"]
    return {
        "apiVersion": appliance.get("apiVersion", "vnf.operators.dev/v1alpha1"),
        "kind": appliance.get("kind", "VnfAppliance"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": False,
    }


def next_number(revisions: Iterable[RevisionInfo]) -> int:
    return max((r.number for r in revisions), default=0) + 1


def by_number(revisions: Iterable[RevisionInfo], number: int) -> RevisionInfo | None:
    return next((r for r in revisions if r.number == number), None)


def by_hash(revisions: Iterable[RevisionInfo], digest: str) -> RevisionInfo | None:
    return next((r for r in revisions if r.hash == digest), None)


def resolve_ref(revisions: Sequence[RevisionInfo], ref: Any) -> RevisionInfo | None:
    """A `status.revision` value (a number, or a ControllerRevision name) → the revision."""
    if ref is None or ref == "" or isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return by_number(revisions, ref)
    text = str(ref).strip()
    if text.isdigit():
        return by_number(revisions, int(text))
    return next((r for r in revisions if r.name == text), None)


def prune(revisions: Sequence[RevisionInfo], limit: int, keep: Iterable[int] = ()) -> list[RevisionInfo]:
    """The revisions to delete so that at most `limit` remain: oldest (lowest number) first,
    never one whose number is in `keep` (the current and the last good revision)."""
    limit = max(limit, 1)
    protected = set(keep)
    excess = len(revisions) - limit
    doomed: list[RevisionInfo] = []
    for rev in sorted(revisions, key=lambda r: r.number):
        if excess <= 0:
            break
        if rev.number in protected:
            continue
        doomed.append(rev)
        excess -= 1
    return doomed


@dataclass(frozen=True)
class Choice:
    """What one reconcile applies.

    - `spec`: the spec (`revision` is its stored revision, if it was applied before);
    - `pinned`: revision `revision`, named by the rollback-to annotation (manual rollback);
    - `rolledBack`: the spec's revision (`failed`) failed the health gate; the last good revision
      (`revision`) stays applied until the spec changes (or reconcile-requested changes).
    `problem`: nothing can be applied (a bad annotation, no good revision); terminal until fixed.
    """

    mode: Mode
    revision: RevisionInfo | None = None
    failed: RevisionInfo | None = None
    problem: str = ""
    reason: str = ""


def parse_rollback_to(value: str) -> int | None:
    text = value.strip()
    if text.lower().startswith("revision-"):
        text = text[len("revision-") :]
    return int(text) if text.isdigit() and int(text) > 0 else None


def choose(
    *,
    spec_hash: str,
    annotations: Mapping[str, str],
    revisions: Sequence[RevisionInfo],
    last_good: Any,
) -> Choice:
    """Decide what to apply: a pinned revision, the last good one after a failed spec, or the spec."""
    pin = str(annotations.get(ROLLBACK_TO) or "").strip()
    if pin:
        number = parse_rollback_to(pin)
        if number is None:
            return Choice(
                "pinned",
                problem=f"annotation {ROLLBACK_TO}: {pin!r} is not a revision number",
                reason="InvalidRollbackTarget",
            )
        rev = by_number(revisions, number)
        if rev is None:
            have = ", ".join(str(r.number) for r in sorted(revisions, key=lambda r: r.number)) or "none"
            return Choice(
                "pinned",
                problem=f"annotation {ROLLBACK_TO}: revision {number} does not exist (revisions: {have})",
                reason="RollbackTargetNotFound",
            )
        return Choice("pinned", revision=rev)
    current = by_hash(revisions, spec_hash)
    request = str(annotations.get(RECONCILE_REQUESTED) or "")
    if current is not None and current.failed and current.failed_request == request:
        good = resolve_ref(revisions, last_good)
        if good is None or good.hash == spec_hash:
            return Choice(
                "rolledBack",
                failed=current,
                problem=failure_message(current, None),
                reason="UnhealthyAfterApply",
            )
        return Choice("rolledBack", revision=good, failed=current)
    return Choice("spec", revision=current)


def failure_message(failed: RevisionInfo, good: RevisionInfo | None) -> str:
    """The Ready message while a failed spec is rolled back."""
    where = f"revision {failed.number}" + (
        f" (generation {failed.failed_generation})" if failed.failed_generation else ""
    )
    to = (
        f"rolled back to revision {good.number}"
        if good is not None
        else "there was no earlier good revision to roll back to"
    )
    return (
        f"{failed.failed} after applying {where}; {to}. The spec is not applied again until it changes "
        f"(or annotation {RECONCILE_REQUESTED} changes)"
    )


# --------------------------------------------------------------------------- backups


SCHEDULED: Final = "scheduled"
"""The reason of a backup taken by `spec.backup.schedule` starts with this word."""


@dataclass(frozen=True)
class BackupInfo:
    name: str
    created: str
    """RFC 3339 creation time (sorts chronologically)."""
    reason: str = ""
    """Why it was taken (`scheduled`, `before an overridden apply of ...`, `before upgrading to ...`)."""

    @property
    def scheduled(self) -> bool:
        return self.reason.startswith(SCHEDULED)

    def status(self) -> dict[str, str]:
        return {"name": self.name, "created": self.created, "reason": self.reason[:200]}


def newest_first(backups: Iterable[BackupInfo]) -> list[BackupInfo]:
    return sorted(backups, key=lambda b: (b.created, b.name), reverse=True)


def backups_to_prune(backups: Sequence[BackupInfo], keep: int) -> list[BackupInfo]:
    """The backups beyond the newest `keep` (at least one is always kept), oldest last."""
    return newest_first(backups)[max(keep, 1) :]


def last_scheduled(backups: Iterable[BackupInfo]) -> str:
    """Creation time of the newest scheduled backup ("" when there is none)."""
    return max((b.created for b in backups if b.scheduled), default="")


def backup_slot(appliance: str, backups: Sequence[BackupInfo], limit: int) -> str:
    """Secret name for the next backup: a free slot `<appliance>-backup-<i>` (i < limit), else the
    oldest one is overwritten. Slots keep the number of backups bounded without deleting Secrets."""
    limit = max(limit, 1)
    base = appliance[: 253 - len("-backup-") - len(str(limit))]
    names = [f"{base}-backup-{i}" for i in range(limit)]
    taken = {b.name for b in backups}
    free = next((n for n in names if n not in taken), None)
    if free is not None:
        return free
    ours = [b for b in backups if b.name in names]
    return min(ours, key=lambda b: (b.created, b.name)).name if ours else names[0]
