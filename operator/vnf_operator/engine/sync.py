"""Make one service's collection on a device match the desired items: list, diff, apply, commit, verify."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vnf_operator.core import diff
from vnf_operator.core.errors import DeviceError
from vnf_operator.core.model import Policy, Service
from vnf_operator.core.normalize import FieldRule
from vnf_operator.core.render import BatchChange, chunked, operation_references, render_marker
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


def _positions(
    plan: diff.Plan,
    desired: Sequence[Mapping[str, Any]],
    actual: Sequence[Mapping[str, Any]],
    service: Service,
    rules: diff.ComparisonRules,
) -> dict[diff.Key, int | None]:
    ordering = service.ordering
    if ordering is None or ordering.position_field is None:
        return {}
    return diff.plan_positions(plan, desired, actual, rules, ordering.position_field, ordering.step)


@dataclass
class _Applier:
    """Executes a plan's steps against the device, one request each or as batches."""

    session: Session
    name: str
    service: Service
    rules: diff.ComparisonRules
    marker: str
    result: ServiceResult
    positions: dict[diff.Key, int | None] = field(default_factory=dict)
    """Position values to write (ordered collections with a position field)."""
    anchored: set[diff.Key] = field(default_factory=set)
    """Keys of created items that later placements are anchored to (their ids are needed)."""
    created_ids: dict[diff.Key, str] = field(default_factory=dict)
    applied: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(("create", "update", "delete", "move"), 0)
    )
    _create_places: bool | None = None

    # ----------------------------------------------------------------- items and anchors
    def item(self, desired: Mapping[str, Any], key: diff.Key) -> dict[str, Any]:
        """What the device is sent: the position value (when known) and the ownership marker."""
        out = dict(desired)
        ordering = self.service.ordering
        value = self.positions.get(key)
        if ordering is not None and ordering.position_field is not None and value is not None:
            out[ordering.position_field] = value
        return add_marker(out, self.service, self.marker)

    def anchor_id(self, anchor: diff.Anchor | None) -> str | None:
        if anchor is None:
            return None
        if anchor.device_id is not None:
            return str(anchor.device_id)
        return self.created_ids.get(anchor.key)

    def needs_placing(self, step: diff.Step) -> bool:
        """A create the device appends although a later item must follow it: move it right after
        creating it (one move), unless its create places it (uses `before_id`/`after_id`) or its
        position value does."""
        ordering = self.service.ordering
        if not isinstance(step, diff.Create) or ordering is None or ordering.move is None:
            return False
        if step.before is None:
            return False  # appended at the end is its place
        if ordering.position_field is not None and self.positions.get(step.key) is not None:
            return False
        if self._create_places is None:
            names = operation_references(self.session.provider, self.name, "create")
            self._create_places = bool(names & {"before_id", "after_id"})
        return not self._create_places

    async def created_id(self, key: diff.Key, given: str | None) -> str | None:
        """The device id of an item just created: from the answer, else read from the list."""
        if given is not None:
            self.created_ids[key] = given
            return given
        if key in self.created_ids:
            return self.created_ids[key]
        if self.rules.id_field is None:
            return None
        items, _ = strip_marker(
            await list_items(self.session, self.name), self.service, self.marker, self.rules
        )
        for found in items:
            k = diff.item_key(found, self.rules)
            value = found.get(self.rules.id_field)
            if k is not None and value is not None:
                self.created_ids.setdefault(k, str(value))
        return self.created_ids.get(key)

    # ----------------------------------------------------------------- one request per change
    async def single(self, step: diff.Step) -> None:
        if isinstance(step, diff.Delete):
            await self.session.run(
                self.name, "delete", id=_id(step.device_id), actual=step.actual, item=step.actual
            )
        elif isinstance(step, diff.Update):
            await self.session.run(
                self.name,
                "update",
                id=_id(step.device_id),
                item=self.item(step.desired, step.key),
                actual=step.actual,
            )
        elif isinstance(step, diff.Create):
            await self.create(step)
            return
        else:
            await self.move(step)
            return
        self.record(step)

    async def create(self, step: diff.Create) -> None:
        session, name, rules = self.session, self.name, self.rules

        async def landed(k: diff.Key | None = step.key) -> bool:
            items, _ = strip_marker(await list_items(session, name), self.service, self.marker, rules)
            return any(diff.item_key(i, rules) == k for i in items)

        parsed = await session.run(
            name,
            "create",
            item=self.item(step.desired, step.key),
            landed=landed,
            before_id=self.anchor_id(step.before),
            after_id=self.anchor_id(step.after),
        )
        self.record(step)
        placing = self.needs_placing(step)
        if parsed.id is not None or placing or step.key in self.anchored:
            new_id = await self.created_id(step.key, parsed.id)
            if placing:
                await self.place(step, new_id)

    async def place(self, step: diff.Create, new_id: str | None) -> None:
        """Move a just-created (appended) item before its anchor."""
        ordering = self.service.ordering
        assert ordering is not None and ordering.move is not None
        if new_id is None:
            return  # no id to move it by: the verify step reports the order, the next sync moves it
        await self.session.run(self.name, ordering.move, id=new_id, before_id=self.anchor_id(step.before))
        self.applied["move"] += 1
        self.result.changes.append(f"moved {diff.format_key(step.key, self.rules)}")

    async def move(self, step: diff.Move) -> None:
        ordering = self.service.ordering
        if ordering is None or ordering.move is None:
            return
        await self.session.run(
            self.name,
            ordering.move,
            id=_id(step.device_id),
            before_id=self.anchor_id(step.before),
            after_id=self.anchor_id(step.after),
        )
        self.record(step)

    def record(self, step: diff.Step) -> None:
        key = diff.format_key(step.key, self.rules)
        if isinstance(step, diff.Delete):
            self.applied["delete"] += 1
            self.result.changes.append(f"deleted {key}")
        elif isinstance(step, diff.Update):
            self.applied["update"] += 1
            fields = ", ".join(c.field for c in step.changed_fields) or "adopted"
            self.result.changes.append(f"updated {key} ({fields})")
        elif isinstance(step, diff.Create):
            self.applied["create"] += 1
            self.result.changes.append(f"created {key}")
        else:
            self.applied["move"] += 1
            self.result.changes.append(f"moved {key}")

    # ----------------------------------------------------------------- batches
    def change(self, step: diff.Create | diff.Update | diff.Delete) -> BatchChange:
        if isinstance(step, diff.Create):
            return BatchChange("create", step.key, item=self.item(step.desired, step.key))
        if isinstance(step, diff.Update):
            return BatchChange(
                "update",
                step.key,
                item=self.item(step.desired, step.key),
                actual=step.actual,
                id=_id(step.device_id),
            )
        return BatchChange("delete", step.key or (), actual=step.actual, id=_id(step.device_id))

    async def batch(self, operation: str, steps: Sequence[diff.Step]) -> None:
        """Send the creates, updates and deletes through the batch operation: one request per
        `batchSize` changes. Changes are recorded only once their request succeeded; a failed
        request raises (naming the changes the device's message names), and the next sync lists
        the device again, so nothing is taken for done that is not."""
        work = [s for s in steps if isinstance(s, diff.Create | diff.Update | diff.Delete)]
        pairs = [(s, self.change(s)) for s in work]
        done = 0
        for chunk in chunked(pairs, self.service.batch_size):
            try:
                parsed = await self.session.run_batch(self.name, operation, [c for _, c in chunk])
            except DeviceError as exc:
                raise batch_failure(exc, [c for _, c in chunk], self.rules, done=done) from exc
            done += len(chunk)
            rows = parsed.items if len(parsed.items) == len(chunk) else []
            for n, (step, change) in enumerate(chunk):
                self.record(step)
                row_id = rows[n].get(self.rules.id_field) if rows and self.rules.id_field else None
                if change.op == "create" and row_id is not None:
                    self.created_ids[change.key] = str(row_id)


def batch_failure(
    exc: DeviceError, changes: Sequence[BatchChange], rules: diff.ComparisonRules, *, done: int = 0
) -> DeviceError:
    """A failed batch request as an error naming the changes the device's message names (every
    key value of the item appears in it as a word), and how many earlier changes went in."""
    message = exc.device_message
    named = [
        diff.format_key(c.key, rules)
        for c in changes
        if c.key and all(_names(message, part) for part in c.key)
    ]
    reason = f"a batch of {len(changes)} change(s) failed"
    if named:
        reason += f"; the device names {', '.join(named[:10])}"
    if done:
        reason += f" ({done} change(s) of earlier batch requests went in)"
    return DeviceError(
        reason,
        appliance=exc.appliance,
        connection=exc.connection,
        operation=exc.operation,
        device_message=exc.device_message,
        status=exc.status,
    )


def _names(message: str, part: Any) -> bool:
    if not isinstance(part, str) or not part:
        return False
    # A whole word: `20` is not named by `200` or `10.0.0.20`, but is by `rule 20:` or `rule 20.`
    return re.search(rf"(?<![\w.:/-]){re.escape(part)}(?![\w/-]|[.:]\w)", message) is not None


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

    # A transactional service (`begin`) leaves nothing staged between syncs: no pending commit.
    commit_pending = commit_pending and not service.begin
    if dry_run or report_only or (plan.is_empty and not (commit_pending and service.commit)):
        result.remaining = plan.summary() if report_only else []
        _record_managed(result, actual, desired_items, rules, managed)
        result.device_requests = session.requests - start_requests
        return result

    if before_apply is not None and not plan.is_empty:
        await before_apply(plan)
    applier = _Applier(session, service_name, service, rules, marker, result)
    applier.positions = _positions(plan, desired_items, actual, service, rules)
    # Updates before deletes: with positional ids (pfSense) a delete renumbers the items after it,
    # and the update's id, read before the delete, would then name a different item.
    steps = plan.steps()
    ordered = [s for s in steps if isinstance(s, diff.Update)] + [
        s for s in steps if not isinstance(s, diff.Update)
    ]
    applier.anchored = {
        p.after.key
        for p in ordered
        if isinstance(p, diff.Create | diff.Move) and p.after is not None and p.after.index is None
    }
    if service.begin:
        await _in_transaction(session, service_name, applier, ordered)
    else:
        await _apply(applier, ordered)
        if service.commit is not None and (any(applier.applied.values()) or commit_pending):
            await session.run(service_name, "commit")
            result.changes.append(f"committed {service_name}")
    result.applied = applier.applied

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


async def _apply(applier: _Applier, ordered: Sequence[diff.Step]) -> None:
    """Make the plan's changes: one request each, or through the batch operation."""
    if applier.service.batch is not None:
        await applier.batch(applier.service.batch, [s for s in ordered if not isinstance(s, diff.Move)])
        placements = [s for s in ordered if isinstance(s, diff.Move) or applier.needs_placing(s)]
        for step in placements:
            if isinstance(step, diff.Move):
                await applier.move(step)
            elif isinstance(step, diff.Create):
                await applier.place(step, await applier.created_id(step.key, None))
    else:
        for step in ordered:
            await applier.single(step)


async def _in_transaction(
    session: Session, service_name: str, applier: _Applier, ordered: Sequence[diff.Step]
) -> None:
    """`begin`, the changes, then `commit` (or `abort` when nothing was made). A failing change or
    commit runs `abort`, so the device keeps nothing of this sync, and the error is raised."""
    service = applier.service
    opened = False
    try:
        await session.begin(service_name)
        opened = True
        await _apply(applier, ordered)
        if not any(applier.applied.values()):
            await session.abort(service_name)  # an empty transaction: nothing to commit
        elif service.commit is not None:
            await session.run(service_name, "commit")
            applier.result.changes.append(f"committed {service_name}")
    except Exception as exc:
        if opened and await session.abort(service_name):
            log.info("aborted the transaction of %s: %s", service_name, session.masker(str(exc)))
        raise
    finally:
        session.close(service_name)


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
