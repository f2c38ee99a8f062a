"""Make one service's collection on a device match the desired items: list, diff, apply, commit, verify."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vnf_operator.core import diff
from vnf_operator.core.model import Policy, Service
from vnf_operator.core.normalize import FieldRule
from vnf_operator.core.render import render_marker
from vnf_operator.engine.session import Session

log = logging.getLogger(__name__)


@dataclass
class ServiceResult:
    name: str
    desired: int = 0
    actual: int = 0
    managed_ids: list[str] = field(default_factory=list)
    managed_keys: list[list[Any]] = field(default_factory=list)
    plan: diff.Plan | None = None
    applied: dict[str, int] = field(default_factory=dict)
    remaining: list[str] = field(default_factory=list)
    """Differences left after apply (InSync=False when not empty)."""
    changes: list[str] = field(default_factory=list)
    """One line per device change made (for events)."""
    device_requests: int = 0

    def status(self, *, dry_run: bool) -> dict[str, Any]:
        counts = self.plan.counts() if self.plan else {}
        out: dict[str, Any] = {
            "desired": self.desired,
            "actual": self.actual,
            "managed": len(self.managed_ids) or len(self.managed_keys),
            "lastPlan": {
                "create": counts.get("create", 0),
                "update": counts.get("update", 0),
                "delete": counts.get("delete", 0),
                "move": counts.get("move", 0),
                "summary": (self.plan.summary() if self.plan else [])[:50],
            },
            "managedIds": self.managed_ids[:500],
        }
        if dry_run:
            out["lastPlan"]["dryRun"] = True
        return out


def _field_rules(service: Service) -> dict[str, FieldRule]:
    rules: dict[str, FieldRule] = {}
    for name, spec in service.fields.items():
        rules[name] = FieldRule.from_spec(spec)
    return rules


def comparison_rules(service: Service, name: str = "items") -> diff.ComparisonRules:
    identity = service.identity
    if identity is None:
        raise ValueError("service has no identity")
    ignore = set(service.comparison.ignore)
    ignore.update(n for n, s in service.fields.items() if not s.compare)
    if identity.id:
        ignore.add(identity.id)
    return diff.ComparisonRules(
        key_fields=tuple(identity.key),
        id_field=identity.id or None,
        field_rules=_field_rules(service),
        ignore_fields=frozenset(ignore),
        mode=service.comparison.mode,
        ordered=service.ordering is not None,
        collection=name,
    )


def service_marker(session: Session, service_name: str) -> str:
    """The service's ownership marker, rendered for this appliance (empty without ownership)."""
    return render_marker(session.provider, service_name, session.context()) or ""


def strip_marker(
    items: Sequence[Mapping[str, Any]], service: Service, marker: str, rules: diff.ComparisonRules
) -> tuple[list[dict[str, Any]], set[diff.Key]]:
    """Remove our ownership marker from device items; return them and the keys of those we own.

    Stripped before diffing because the marked field is often part of the natural key
    (an OPNsense rule's description).
    """
    out: list[dict[str, Any]] = []
    owned: set[diff.Key] = set()
    own = service.ownership
    for raw in items:
        item = dict(raw)
        value = item.get(own.field) if own is not None and marker else None
        if own is not None and isinstance(value, str):
            # The marker must stand alone: appliance `fw` must not claim `vnf:ns/fw2 ...`.
            if own.placement == "prefix" and (value == marker or value.startswith(marker + " ")):
                item[own.field] = value[len(marker) :].lstrip()
            elif own.placement == "suffix" and (value == marker or value.endswith(" " + marker)):
                item[own.field] = value[: -len(marker)].rstrip()
            else:
                out.append(item)
                continue
            key = diff.item_key(item, rules)
            if key is not None:
                owned.add(key)
        out.append(item)
    return out, owned


def add_marker(item: Mapping[str, Any], service: Service, marker: str) -> dict[str, Any]:
    out = dict(item)
    own = service.ownership
    if own is not None and marker:
        value = str(out.get(own.field) or "")
        out[own.field] = (
            f"{marker} {value}".strip() if own.placement == "prefix" else f"{value} {marker}".strip()
        )
    return out


def with_positions(desired: Sequence[Mapping[str, Any]], service: Service) -> list[dict[str, Any]]:
    """Write the position field for ordered collections: the device sorts by it."""
    ordering = service.ordering
    if ordering is None or ordering.position_field is None:
        return [dict(d) for d in desired]
    return [{**d, ordering.position_field: (i + 1) * ordering.step} for i, d in enumerate(desired)]


async def list_items(session: Session, service_name: str) -> list[dict[str, Any]]:
    parsed = await session.run(service_name, "list")
    return [dict(i) for i in parsed.items]


async def sync_service(
    session: Session,
    service_name: str,
    desired: Sequence[Mapping[str, Any]],
    *,
    policy: Policy,
    protected: Sequence[Mapping[str, Any]] = (),
    managed_keys: Sequence[Sequence[Any]] = (),
    dry_run: bool = False,
    report_only: bool = False,
    commit_pending: bool = False,
    before_apply: Callable[[diff.Plan], Awaitable[None]] | None = None,
) -> ServiceResult:
    """`commit_pending`: an earlier run may have changed the device without committing (it failed
    in between); commit even when nothing is left to change, so staged changes are not stranded.
    `before_apply`: awaited once the plan is known and changes are about to be made (a backup)."""
    service = session.dictionary.services[service_name]
    rules = comparison_rules(service, service_name)
    marker = service_marker(session, service_name)
    result = ServiceResult(service_name, desired=len(desired))
    start_requests = session.requests

    desired_items = with_positions(desired, service)
    actual_raw = await list_items(session, service_name)
    actual, owned = strip_marker(actual_raw, service, marker, rules)
    result.actual = len(actual)
    managed: set[diff.Key] = {tuple(k) for k in managed_keys} | owned
    plan = diff.plan(desired_items, actual, rules, policy, managed_keys=managed, protected=protected)
    result.plan = plan

    if dry_run or report_only or (plan.is_empty and not (commit_pending and service.commit)):
        result.remaining = plan.summary() if report_only else []
        _record_managed(result, actual, desired_items, rules, managed)
        result.device_requests = session.requests - start_requests
        return result

    if before_apply is not None and not plan.is_empty:
        await before_apply(plan)
    applied = {"create": 0, "update": 0, "delete": 0, "move": 0}
    move_op = service.ordering.move if service.ordering is not None else None
    # Updates before deletes: with positional ids (pfSense) a delete renumbers the items after it,
    # and the update's id, read before the delete, would then name a different item.
    steps = plan.steps()
    ordered = [s for s in steps if isinstance(s, diff.Update)] + [
        s for s in steps if not isinstance(s, diff.Update)
    ]
    for step in ordered:
        key = diff.format_key(step.key, rules)
        if isinstance(step, diff.Delete):
            await session.run(
                service_name, "delete", id=_id(step.device_id), actual=step.actual, item=step.actual
            )
            applied["delete"] += 1
            result.changes.append(f"deleted {key}")
        elif isinstance(step, diff.Update):
            await session.run(
                service_name,
                "update",
                id=_id(step.device_id),
                item=add_marker(step.desired, service, marker),
                actual=step.actual,
            )
            applied["update"] += 1
            fields = ", ".join(c.field for c in step.changed_fields) or "adopted"
            result.changes.append(f"updated {key} ({fields})")
        elif isinstance(step, diff.Create):
            item = add_marker(step.desired, service, marker)

            async def landed(k: diff.Key | None = step.key) -> bool:
                items, _ = strip_marker(await list_items(session, service_name), service, marker, rules)
                return any(diff.item_key(i, rules) == k for i in items)

            await session.run(
                service_name,
                "create",
                item=item,
                landed=landed,
                before_id=_id(step.before_id),
                after_id=_id(step.after_id),
            )
            applied["create"] += 1
            result.changes.append(f"created {key}")
        elif isinstance(step, diff.Move) and move_op is not None:
            await session.run(
                service_name,
                move_op,
                id=_id(step.device_id),
                before_id=_id(step.before_id),
                after_id=_id(step.after_id),
            )
            applied["move"] += 1
            result.changes.append(f"moved {key}")
    if service.commit is not None and (any(applied.values()) or commit_pending):
        await session.run(service_name, "commit")
        result.changes.append(f"committed {service_name}")
    result.applied = applied

    # Verify: list again; anything still different is reported, not hidden.
    after_raw = await list_items(session, service_name)
    after, owned_after = strip_marker(after_raw, service, marker, rules)
    managed_after = managed | owned_after | set(plan.managed)
    check = diff.plan(desired_items, after, rules, policy, managed_keys=managed_after, protected=protected)
    result.remaining = changes_left(check)
    result.actual = len(after)
    _record_managed(result, after, desired_items, rules, managed_after)
    result.device_requests = session.requests - start_requests
    return result


def changes_left(plan: diff.Plan) -> list[str]:
    """Summary lines of the changes a plan would still make (not its reports: unmanaged, adopted...)."""
    if plan.is_empty:
        return []
    return [
        line for line in plan.summary() if line.split(" ", 1)[0] in ("create", "update", "delete", "move")
    ]


def _id(device_id: diff.DeviceId) -> str | None:
    return None if device_id is None else str(device_id)


def _record_managed(
    result: ServiceResult,
    actual: Sequence[Mapping[str, Any]],
    desired: Sequence[Mapping[str, Any]],
    rules: diff.ComparisonRules,
    managed: set[diff.Key],
) -> None:
    keys = set(managed)
    for d in desired:
        k = diff.item_key(d, rules)
        if k is not None:
            keys.add(k)
    result.managed_keys = sorted((list(k) for k in keys), key=str)
    if rules.id_field:
        result.managed_ids = [
            str(a[rules.id_field])
            for a in actual
            if diff.item_key(a, rules) in keys and a.get(rules.id_field) is not None
        ]
