"""Provider versions and progressive rollout: pure decisions (docs/lifecycle.md, "Provider versions").

A VnfProvider's *revision* is a hash of its dictionary (its spec without `rollout`); its *version* is
`spec.info.version`. When the dictionary changes, the operator moves the appliances that use it to
the new revision a batch at a time: at most `spec.rollout.maxUnavailable` of the moved appliances
may be not Ready at once, and the first moved appliance that ends not Ready pauses the rollout.
Appliances not moved yet keep the dictionary they are on (kept in a bounded history). Appliances may
pin a version (`spec.providerRef.version`, exact or a range). The engine does the I/O
(`engine/rollout.py`); this module only decides.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from vnf_operator.core.revisions import PREFIX, SHORT_HASH  # one prefix, one hash length

ROLLOUT_FIELD: Final = "rollout"
"""The VnfProvider spec field that is not part of the dictionary."""
RESUME_ANNOTATION: Final = PREFIX + "rollout-resume"
"""VnfProvider annotation: a new value acknowledges the failures that paused the rollout."""
PROVIDER_LABEL: Final = PREFIX + "provider"
REVISION_ANNOTATION: Final = PREFIX + "provider-revision"
VERSION_ANNOTATION: Final = PREFIX + "provider-version"
DEFAULT_MAX_UNAVAILABLE: Final = 1
DEFAULT_HISTORY: Final = 5
MAX_NAMED: Final = 10
"""At most this many failing appliances are named in status and messages."""


class RolloutSpecError(ValueError):
    """`spec.rollout` of a VnfProvider is malformed."""


# --------------------------------------------------------------------------- revisions


def dictionary_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The dictionary part of a VnfProvider spec (everything but `rollout`)."""
    return {k: v for k, v in spec.items() if k != ROLLOUT_FIELD}


def revision_of(spec: Mapping[str, Any]) -> str:
    """Short stable hash of the dictionary (key order does not matter; `rollout` is not part of it)."""
    text = json.dumps(dictionary_of(spec), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:SHORT_HASH]


def history_name(provider: str, revision: str) -> str:
    """ControllerRevision name of one dictionary revision (within the 253-character limit)."""
    return f"{provider[: 253 - len(revision) - 1]}-{revision}"


def max_unavailable(spec: Mapping[str, Any], total: int) -> int:
    """`spec.rollout.maxUnavailable` as a count: an integer, or a percentage of `total` rounded down;
    never below 1 (a rollout that may move nothing would never finish)."""
    rollout = spec.get(ROLLOUT_FIELD) or {}
    if not isinstance(rollout, Mapping):
        raise RolloutSpecError("must be an object")
    value = rollout.get("maxUnavailable", DEFAULT_MAX_UNAVAILABLE)
    if isinstance(value, bool):
        raise RolloutSpecError("maxUnavailable must be an integer or a percentage")
    if isinstance(value, int):
        count = value
    elif isinstance(value, str) and re.fullmatch(r"[0-9]{1,3}%", value):
        count = math.floor(total * int(value[:-1]) / 100)
    elif isinstance(value, str) and value.isdigit():
        count = int(value)
    else:
        raise RolloutSpecError(
            f"maxUnavailable: {value!r} is neither an integer nor a percentage such as 25%"
        )
    return max(count, 1)


# --------------------------------------------------------------------------- versions

_VERSION = re.compile(r"^v?(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?(?:[-+][0-9A-Za-z.-]+)?$")
_COMPARATOR = re.compile(r"^(>=|<=|>|<|=|\^|~)?\s*(.+)$")

Version = tuple[int, int, int]


def parse_version(text: str) -> Version | None:
    """`1.2.3` (pre-release and build suffixes ignored) → (1, 2, 3); None when not a version."""
    m = _VERSION.match(text.strip())
    if m is None or any(p is not None and not p.isdigit() for p in m.groups()):
        return None
    major, minor, patch = (int(p) if p is not None else 0 for p in m.groups())
    return major, minor, patch


def _partial(text: str) -> tuple[int, ...]:
    """The numeric parts written, wildcards and what follows them dropped: `1.2.x` → (1, 2)."""
    m = _VERSION.match(text.strip())
    if m is None:
        raise RolloutSpecError(f"{text!r} is not a version")
    parts: list[int] = []
    for p in m.groups():
        if p is None or not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


def _pad(parts: tuple[int, ...]) -> Version:
    padded = [*parts, 0, 0, 0]
    return padded[0], padded[1], padded[2]


def _bump(parts: tuple[int, ...]) -> Version:
    """The first version above every version starting with `parts`: (1, 2) → (1, 3, 0)."""
    padded = [*parts, 0, 0, 0][:3]
    i = len(parts) - 1
    padded[i] += 1
    for j in range(i + 1, 3):
        padded[j] = 0
    return padded[0], padded[1], padded[2]


def _term(term: str, version: Version) -> bool:
    m = _COMPARATOR.match(term)
    if m is None:
        raise RolloutSpecError(f"{term!r} is not a version constraint")
    op, text = m.group(1) or "=", m.group(2)
    parts = _partial(text)
    if not parts:
        return True  # `x` or `*`: any version
    low = _pad(parts)
    if op in ("=", "") and len(parts) < 3:  # `1.2` or `1.2.x`: that minor line
        return low <= version < _bump(parts)
    if op == "^":  # same left-most non-zero part
        nonzero = next((i for i, p in enumerate(parts) if p != 0), len(parts) - 1)
        return low <= version < _bump(parts[: nonzero + 1])
    if op == "~":  # same minor when a minor was given, else same major
        return low <= version < _bump(parts[:2] if len(parts) >= 2 else parts[:1])
    return {
        "=": version == low,
        ">=": version >= low,
        ">": version > low,
        "<=": version <= low,
        "<": version < low,
    }[op]


def version_matches(constraint: str, version: str) -> bool:
    """Whether `version` satisfies `constraint`: an exact version (`1.2.0`), a line (`1.2`, `1.x`),
    comparisons joined by spaces or commas (`>=1.2.0 <2.0.0`), `^1.2.0` or `~1.2`; `||` separates
    alternatives. A version that does not parse matches nothing."""
    parsed = parse_version(version)
    if parsed is None:
        return False
    try:
        for alternative in constraint.split("||"):
            terms = [t for t in re.split(r"[\s,]+", _join_operators(alternative)) if t]
            if terms and all(_term(t, parsed) for t in terms):
                return True
    except RolloutSpecError:  # a malformed constraint matches nothing
        return False
    return False


def _join_operators(text: str) -> str:
    """`>= 1.2` → `>=1.2`, so terms can be split on spaces."""
    return re.sub(r"(>=|<=|>|<|=|\^|~)\s+", r"\1", text.strip())


def check_constraint(constraint: str) -> None:
    """Raise RolloutSpecError naming the part of `constraint` that is not a version constraint."""
    for alternative in constraint.split("||"):
        terms = [t for t in re.split(r"[\s,]+", _join_operators(alternative)) if t]
        if not terms:
            raise RolloutSpecError(f"{constraint!r}: an empty alternative")
        for t in terms:
            _term(t, (0, 0, 0))


def newest_matching(constraint: str, versions: Iterable[str]) -> str | None:
    """The highest of `versions` that satisfies `constraint` (None when none does)."""
    fitting = [(parse_version(v), v) for v in versions if version_matches(constraint, v)]
    ranked = sorted((p, v) for p, v in fitting if p is not None)
    return ranked[-1][1] if ranked else None


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Member:
    """One appliance taking part in a provider's rollout, as its status shows it."""

    key: str
    """`namespace/name`."""
    revision: str
    """The provider revision its last reconcile used ("" when it has not reconciled yet)."""
    ready: bool
    """Ready=True for its current generation."""
    settled: bool = True
    """Its status reflects its current generation (a reconcile finished since the last change)."""


@dataclass(frozen=True)
class RolloutPlan:
    target: str
    total: int
    updated: tuple[str, ...]
    ready: tuple[str, ...]
    failed: tuple[str, ...]
    """Moved, reconciled, and not Ready (and not acknowledged): these pause the rollout."""
    unavailable: int
    """Moved (or admitted) and not Ready yet, acknowledged failures excepted."""
    admit: tuple[str, ...] = ()
    """Appliances to move to the target now."""
    budget: int = DEFAULT_MAX_UNAVAILABLE

    @property
    def paused(self) -> bool:
        return bool(self.failed)

    @property
    def complete(self) -> bool:
        return len(self.updated) == self.total and not self.failed

    def status(self) -> dict[str, Any]:
        return {
            "revision": self.target,
            "total": self.total,
            "updated": len(self.updated),
            "ready": len(self.ready),
            "failed": len(self.failed),
            "maxUnavailable": self.budget,
            "failing": list(self.failed[:MAX_NAMED]),
        }


def plan(
    target: str,
    members: Sequence[Member],
    *,
    admitted: Iterable[str] = (),
    budget: int = DEFAULT_MAX_UNAVAILABLE,
    acknowledged: Iterable[str] = (),
) -> RolloutPlan:
    """Which appliances move to `target` next.

    Moved = on the target revision, or admitted and not reconciled with it yet. Unavailable = moved
    and not Ready (an admitted appliance is unavailable until its reconcile says otherwise). A moved
    appliance that finished a reconcile and is not Ready has *failed*: the rollout pauses (nothing
    more is admitted) until the dictionary changes again or the failure is acknowledged. Otherwise up
    to `budget - unavailable` more are admitted, not-Ready ones first (moving them costs no
    availability), then by key.
    """
    acked = set(acknowledged)
    by_key = {m.key: m for m in members}
    updated = tuple(sorted(k for k, m in by_key.items() if m.revision == target))
    in_flight = tuple(sorted(k for k in set(admitted) if k in by_key and k not in updated))
    ready = tuple(k for k in updated if by_key[k].ready)
    failed = tuple(k for k in updated if not by_key[k].ready and by_key[k].settled and k not in acked)
    unavailable = len(in_flight) + sum(1 for k in updated if not by_key[k].ready and k not in acked)
    budget = max(budget, 1)
    admit: tuple[str, ...] = ()
    if not failed:
        waiting = sorted(
            (m for k, m in by_key.items() if k not in updated and k not in in_flight),
            key=lambda m: (m.ready, m.key),
        )
        admit = tuple(m.key for m in waiting[: max(budget - unavailable, 0)])
    return RolloutPlan(
        target=target,
        total=len(by_key),
        updated=updated,
        ready=ready,
        failed=failed,
        unavailable=unavailable,
        admit=admit,
        budget=budget,
    )


def paused_message(result: RolloutPlan, version: str) -> str:
    named = ", ".join(result.failed[:MAX_NAMED])
    more = f" (+{len(result.failed) - MAX_NAMED} more)" if len(result.failed) > MAX_NAMED else ""
    return (
        f"rollout of version {version} (revision {result.target}) paused: {len(result.failed)} appliance(s) "
        f"not Ready after moving to it: {named}{more}; {len(result.updated)}/{result.total} updated. Fix the "
        f"provider (a new revision resumes the rollout) or annotate {RESUME_ANNOTATION}=<new value>"
    )


# --------------------------------------------------------------------------- history


@dataclass(frozen=True)
class HistoryItem:
    """One stored dictionary revision of a provider."""

    name: str
    revision: str
    version: str
    number: int
    generation: int = 0


@dataclass(frozen=True)
class Resolution:
    """Which stored revision an appliance uses, or why none fits."""

    revision: str
    problem: str = ""


def choose_revision(
    *,
    current: HistoryItem,
    history: Sequence[HistoryItem],
    on: str,
    admitted: bool,
    pin: str = "",
) -> Resolution:
    """The revision one appliance uses.

    - A pin (`spec.providerRef.version`) the current version satisfies: as without a pin. Else the
      newest stored revision satisfying it; none: a problem (the appliance stalls).
    - An appliance on the current revision, admitted by the rollout, or new (on nothing): current.
    - An appliance on an older stored revision: that one, until the rollout admits it.
    - On a revision no longer stored: current (nothing else to use).
    """
    stored = {h.revision: h for h in history}
    if pin and not version_matches(pin, current.version):
        fitting = sorted(
            (h for h in history if version_matches(pin, h.version)),
            key=lambda h: (parse_version(h.version) or (0, 0, 0), h.number),
        )
        if not fitting:
            known = sorted(
                {h.version for h in (*history, current)}, key=lambda v: parse_version(v) or (0, 0, 0)
            )
            return Resolution(
                current.revision,
                f"spec.providerRef.version {pin!r} matches none of the known versions ({', '.join(known)})",
            )
        return Resolution(fitting[-1].revision)
    if not on or on == current.revision or admitted or on not in stored:
        return Resolution(current.revision)
    return Resolution(on)


def prune(history: Sequence[HistoryItem], keep: int, in_use: Iterable[str]) -> list[HistoryItem]:
    """Stored revisions to delete: the oldest beyond `keep`, never one in use."""
    used = set(in_use)
    doomed: list[HistoryItem] = []
    surplus = len(history) - max(keep, 1)
    for item in sorted(history, key=lambda h: h.number):
        if surplus <= 0:
            break
        if item.revision in used:
            continue
        doomed.append(item)
        surplus -= 1
    return doomed


@dataclass
class Acknowledgement:
    """Failures acknowledged with the resume annotation, for one target revision."""

    token: str = ""
    """The annotation value that made it."""
    revision: str = ""
    appliances: list[str] = field(default_factory=list)

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> Acknowledgement:
        raw = (status.get("rollout") or {}).get("acknowledged") or {}
        return cls(
            str(raw.get("token") or ""),
            str(raw.get("revision") or ""),
            [str(a) for a in raw.get("appliances") or []],
        )

    def update(self, token: str, target: str, failing: Iterable[str]) -> Acknowledgement:
        """A new annotation value acknowledges what fails now; a new target forgets older ones."""
        base = self if self.revision == target else Acknowledgement(self.token, target)
        if not token or token == base.token:
            return base
        return Acknowledgement(token, target, sorted({*base.appliances, *failing}))

    def as_status(self) -> dict[str, Any]:
        return {"token": self.token, "revision": self.revision, "appliances": self.appliances[:100]}
