"""Make one service's collection on a device match the desired items: list, diff, apply, commit, verify."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vnf_operator.core import diff
from vnf_operator.core.model import Policy, Service
from vnf_operator.core.normalize import FieldRule
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


def comparison_rules(service: Service) -> diff.ComparisonRules:
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
    )


def _marker(session: Session, service: Service) -> str:
    if service.ownership is None:
        return ""
    return str(service.ownership.marker)


def strip_marker(items: Sequence[Mapping[str, Any]], service: Service, marker: str) -> tuple[list[dict], set]:
    """Remove our ownership marker from device items; return them and the keys of those we own."""
    out: list[dict[str, Any]] = []
    owned: set[tuple[Any, ...]] = set()
    own = service.ownership
    keys = service.identity.key if service.identity else []
    for item in items:
        item = dict(item)
        if own is not None and marker:
            value = item.get(own.field)
            if isinstance(value, str):
                tagged = f"{marker} " if own.placement == "prefix" else f" {marker}"
                if own.placement == "prefix" and value.startswith(marker):
                    item[own.field] = value[len(marker) :].lstrip()
                    owned.add(tuple(str(item.get(k)) for k in keys))
                elif own.placement == "suffix" and value.endswith(marker):
                    item[own.field] = value[: -len(marker)].rstrip()
                    owned.add(tuple(str(item.get(k)) for k in keys))
                del tagged
        out.append(item)
    return out, owned


def add_marker(item: Mapping[str, Any], service: Service, marker: str) -> dict[str, Any]:
    out = dict(item)
    own = service.ownership
    if own is not None and marker:
        value = str(out.get(own.field) or "")
        out[own.field] = f"{marker} {value}".strip() if own.placement == "prefix" else f"{value} {marker}".strip()
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
) -> ServiceResult:
    service = session.dictionary.services[service_name]
    rules = comparison_rules(service)
    marker = _marker(session, service)
    result = ServiceResult(service_name, desired=len(desired))
    start_requests = session.requests

    desired_items = with_positions(desired, service)
    actual_raw = await list_items(session, service_name)
    actual, owned = strip_marker(actual_raw, service, marker)
    result.actual = len(actual)
    managed = {tuple(str(v) for v in k) for k in managed_keys} | owned
    plan = diff.plan(desired_items, actual, rules, diff.Policy(policy.value), managed_keys=managed, protected=protected)
    result.plan = plan

    if dry_run or report_only or plan.is_empty:
        result.remaining = plan.summary() if report_only else []
        _record_managed(result, actual, desired_items, rules, managed)
        result.device_requests = session.requests - start_requests
        return result

    applied = {"create": 0, "update": 0, "delete": 0, "move": 0}
    for d in plan.deletes:
        await session.run(service_name, "delete", id=d.device_id, actual=d.actual, item=d.actual)
        applied["delete"] += 1
        result.changes.append(f"deleted {service_name}[{_key(d.key)}]")
    for u in plan.updates:
        await session.run(
            service_name, "update", id=u.device_id, item=add_marker(u.desired, service, marker), actual=u.actual
        )
        applied["update"] += 1
        fields = ", ".join(c.field for c in u.changed_fields)
        result.changes.append(f"updated {service_name}[{_key(u.key)}] ({fields})")
    for c in plan.creates:
        item = add_marker(c.desired, service, marker)

        async def landed(key: tuple[Any, ...] = c.key) -> bool:
            items, _ = strip_marker(await list_items(session, service_name), service, marker)
            return any(tuple(str(i.get(k)) for k in rules.key_fields) == tuple(map(str, key)) for i in items)

        await session.run(service_name, "create", item=item, landed=landed)
        applied["create"] += 1
        result.changes.append(f"created {service_name}[{_key(c.key)}]")
    if plan.moves and service.ordering is not None and service.ordering.move:
        for m in plan.moves:
            await session.run(
                service_name,
                service.ordering.move,
                id=m.device_id,
                before_id=getattr(m, "before_id", None),
                after_id=getattr(m, "after_id", None),
            )
            applied["move"] += 1
            result.changes.append(f"moved {service_name}[{_key(m.key)}]")
    if service.commit is not None and any(applied.values()):
        await session.run(service_name, "commit")
        result.changes.append(f"committed {service_name}")
    result.applied = applied

    # Verify: list again; anything still different is reported, not hidden.
    after_raw = await list_items(session, service_name)
    after, owned_after = strip_marker(after_raw, service, marker)
    managed_after = managed | owned_after | {tuple(map(str, c.key)) for c in plan.creates}
    check = diff.plan(
        desired_items, after, rules, diff.Policy(policy.value), managed_keys=managed_after, protected=protected
    )
    result.remaining = check.summary()
    result.actual = len(after)
    _record_managed(result, after, desired_items, rules, managed_after)
    result.device_requests = session.requests - start_requests
    return result


def _key(key: Sequence[Any]) -> str:
    return ",".join(str(k) for k in key)


def _record_managed(
    result: ServiceResult,
    actual: Sequence[Mapping[str, Any]],
    desired: Sequence[Mapping[str, Any]],
    rules: diff.ComparisonRules,
    managed: set[tuple[str, ...]],
) -> None:
    desired_keys = {tuple(str(d.get(k)) for k in rules.key_fields) for d in desired}
    keys = sorted(managed | desired_keys)
    result.managed_keys = [list(k) for k in keys]
    if rules.id_field:
        ids = []
        for a in actual:
            if tuple(str(a.get(k)) for k in rules.key_fields) in keys and a.get(rules.id_field) is not None:
                ids.append(str(a[rules.id_field]))
        result.managed_ids = ids
