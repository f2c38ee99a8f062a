"""Firewall controllers: filter, source_nat and d_nat (FilterBaseController and subclasses)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .api import Action, ApiCall, Controller, UserException
from .models import filter_priority
from .mvc import Collection, GridRequest, Record, is_uuid, move_before, natural_key, search_grid

if TYPE_CHECKING:
    from .simulator import OpnsenseSimulator

V26_1 = (26, 1)
V26_7 = (26, 7)
APPLY_OUTPUT = "OK\n\n"


class RuleController:
    """CRUD, toggle and move for one rule collection, plus the shared apply/savepoint actions."""

    def __init__(
        self,
        sim: OpnsenseSimulator,
        url_name: str,
        collection: Callable[[], Collection],
        since: tuple[int, int] | None = None,
    ) -> None:
        self.sim = sim
        self.url_name = url_name
        self._collection = collection
        self.since = since

    @property
    def collection(self) -> Collection:
        return self._collection()

    def controller(self) -> Controller:
        return Controller.build(
            "firewall",
            self.url_name,
            [
                Action("searchRule", self.search_rule),
                Action("getRule", self.get_rule, ("uuid",)),
                Action("addRule", self.add_rule),
                Action("setRule", self.set_rule, ("uuid",)),
                Action("delRule", self.del_rule, ("uuid",)),
                Action("toggleRule", self.toggle_rule, ("uuid", "enabled")),
                Action("toggleRuleLog", self.toggle_rule_log, ("uuid", "log")),
                Action("moveRuleBefore", self.move_rule_before, ("selected_uuid", "target_uuid")),
                Action("apply", self.apply, ("rollback_revision",)),
                Action("savepoint", self.savepoint, until=V26_7),
                Action("revert", self.revert, ("revision",), until=V26_7),
                Action("cancelRollback", self.cancel_rollback, ("revision",), until=V26_7),
            ],
            since=self.since,
        )

    # ------------------------------------------------------------------ read
    def rows(self, call: ApiCall) -> list[dict[str, Any]]:
        ctx = self.sim.config_xml.context
        return [self.collection.row(key, record, ctx) for key, record in self.collection.records.items()]

    async def search_rule(self, call: ApiCall) -> Any:
        return search_grid(self.rows(call), GridRequest.from_params({**call.query, **call.post}), "sequence")

    async def get_rule(self, call: ApiCall) -> Any:
        ctx = self.sim.config_xml.context
        record_uuid = call.param(0)
        if record_uuid is None:
            return {"rule": self.collection.view(self.collection.new_record(), ctx)}
        record = self.collection.records.get(record_uuid)
        if record is None:
            return []
        result = self.collection.view(record, ctx)
        if call.get("fetchmode") == "copy":
            highest = max((int(r["sequence"]) for r in self.collection.records.values()), default=0)
            result["sequence"] = highest + 100
        return {"rule": result}

    # ------------------------------------------------------------------ write
    def _save(self, call: ApiCall, action: str) -> None:
        self.sim.save_config(call, f"/api/firewall/{self.url_name}/{action} made changes", "filter")

    async def add_rule(self, call: ApiCall) -> Any:
        posted = call.post.get("rule") if call.has_post("rule") else None
        if not isinstance(posted, dict):
            return {"result": "failed"}
        record = self.collection.new_record()
        self.collection.apply_post(record, posted)
        validations = self.collection.validate(record, self.sim.config_xml.context)
        if validations:
            return {"result": "failed", "validations": validations}
        record_uuid = self.sim.new_uuid()
        self.collection.records[record_uuid] = record
        self._save(call, "addRule")
        return {"result": "saved", "uuid": record_uuid}

    async def set_rule(self, call: ApiCall) -> Any:
        record_uuid = call.param(0)
        posted = call.post.get("rule") if call.has_post("rule") else None
        if not record_uuid or not isinstance(posted, dict):
            return {"result": "failed"}
        existing = self.collection.records.get(record_uuid)
        if existing is None and not is_uuid(record_uuid):
            return {"result": "failed"}  # invalid uuid: upsert not allowed
        record = dict(existing) if existing is not None else self.collection.new_record()
        self.collection.apply_post(record, posted)
        validations = self.collection.validate(record, self.sim.config_xml.context)
        if validations:
            return {"result": "failed", "validations": validations}
        self.collection.records[record_uuid] = record
        self._save(call, "setRule")
        return {"result": "saved"}

    async def del_rule(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"result": "failed"}
        result = "failed"
        changed = False
        for record_uuid in (call.param(0) or "").split(","):
            if not record_uuid:
                continue
            if self.collection.records.pop(record_uuid, None) is not None:
                changed = True
                result = "deleted"
            else:
                result = "not found"
        if changed:
            self._save(call, "delRule")
        return {"result": result}

    async def toggle_rule(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"result": "failed"}
        enabled = call.param(1)
        uuids = [item for item in (call.param(0) or "").split(",") if item]
        if len(uuids) > 1 and enabled is None:
            raise UserException(
                "Toggle with a list of items in only supported for explicit actions [0,1]", "Toggle"
            )
        result: dict[str, Any] = {"result": "failed"}
        for record_uuid in uuids:
            record = self.collection.records.get(record_uuid)
            if record is None:
                continue
            result["changed"] = True
            if enabled in ("0", "1"):
                result["result"] = "Enabled" if enabled == "1" else "Disabled"
                result["changed"] = record["enabled"] != enabled
                record["enabled"] = enabled
            elif enabled is not None:
                result["changed"] = False
                break
            elif record["enabled"] == "1":
                result["result"] = "Disabled"
                record["enabled"] = "0"
            else:
                result["result"] = "Enabled"
                record["enabled"] = "1"
        if result.get("changed"):
            self._save(call, "toggleRule")
        return result

    async def toggle_rule_log(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "error", "message": "Invalid request method"}
        record = self.collection.records.get(call.param(0) or "")
        if record is None:
            raise UserException("Rule not found")
        record["log"] = call.param(1) or ""
        self._save(call, "toggleRuleLog")
        return {"status": "ok"}

    def move_scope(self, selected: Record, target: Record) -> list[str]:
        """UUIDs the move renumbers, in evaluation order; subclasses may restrict the scope."""
        records = self.collection.records
        return sorted(records, key=lambda key: natural_key(records[key]["sequence"]))

    async def move_rule_before(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "error", "message": "Invalid request method"}
        selected_uuid, target_uuid = call.param(0) or "", call.param(1) or ""
        records = self.collection.records
        if selected_uuid not in records or target_uuid not in records:
            raise UserException("Either source or destination is not a rule managed with this component")
        scope = self.move_scope(records[selected_uuid], records[target_uuid])
        move_before(records, scope, selected_uuid, target_uuid)
        self._save(call, "moveRuleBefore")
        return {"status": "ok"}

    # ------------------------------------------------------------------ apply and rollback
    async def apply(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "error"}
        revision = call.param(0)
        if revision and self.sim.version < V26_7:
            self.sim.arm_rollback(revision)
        self.sim.apply_filter()
        return {"status": APPLY_OUTPUT}

    async def savepoint(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "failed"}
        revision = f"{time.time():.4f}"
        self.sim.savepoints[revision] = self.sim.config_xml.filter_snapshot()
        return {"status": "ok", "retention": "60", "revision": revision}

    async def revert(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "failed"}
        if not self.sim.revert_to_savepoint(call.param(0) or ""):
            return {"status": "unknown (or removed) savepoint"}
        return {"status": "ok"}

    async def cancel_rollback(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "failed"}
        self.sim.cancel_rollback(call.param(0) or "")
        return {"status": "ok"}


class FilterRuleController(RuleController):
    """FilterController: interface-aware search, prio-group-scoped moves."""

    def rows(self, call: ApiCall) -> list[dict[str, Any]]:
        interfaces: list[str] | None = None
        if call.has("interface"):
            interfaces = [item for item in str(call.get("interface") or "").split(",") if item]
        categories = call.get("category")
        rows = []
        for row in super().rows(call):
            if categories:
                continue  # the simulator knows no categories, so no rule belongs to one
            if not self._interface_matches(row, interfaces):
                continue
            row["category_colors"] = []
            for name in ("source_net", "source_port", "destination_net", "destination_port"):
                if row.get(name):
                    row[f"alias_meta_{name}"] = [
                        {"value": item, "%value": item, "isAlias": False, "description": ""}
                        for item in row[name].split(",")
                    ]
            rows.append(row)
        return rows

    async def search_rule(self, call: ApiCall) -> Any:
        return search_grid(
            self.rows(call), GridRequest.from_params({**call.query, **call.post}), "sort_order"
        )

    @staticmethod
    def _interface_matches(row: dict[str, Any], interfaces: list[str] | None) -> bool:
        rule_interfaces = [item for item in row.get("interface", "").split(",") if item]
        if interfaces is None or not row.get("interface"):
            return True
        if row.get("interfacenot") == "1":
            return not set(rule_interfaces) & set(interfaces)
        if not interfaces and len(rule_interfaces) != 1:
            return True
        return bool(set(rule_interfaces) & set(interfaces))

    def move_scope(self, selected: Record, target: Record) -> list[str]:
        group = filter_priority(target)
        records = self.collection.records
        in_group = [key for key, record in records.items() if filter_priority(record) == group]
        return sorted(in_group, key=lambda key: natural_key(records[key]["sequence"]))

    async def move_rule_before(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "error", "message": "Invalid request method"}
        selected_uuid, target_uuid = call.param(0) or "", call.param(1) or ""
        records = self.collection.records
        if selected_uuid not in records or target_uuid not in records:
            raise UserException(
                "Either source or destination is not a rule managed with this component", "Filter"
            )
        names = {200000: "Floating", 300000: "Group", 400000: "Interface"}
        selected_group = filter_priority(records[selected_uuid])
        target_group = filter_priority(records[target_uuid])
        if selected_group != target_group:
            raise UserException(
                f"Cannot move '{names[selected_group]} Rule' before '{names[target_group]} Rule'.", "Filter"
            )
        if selected_uuid == target_uuid:
            raise UserException("Cannot move to the same spot.", "Filter")
        return await super().move_rule_before(call)


class DNatRuleController(RuleController):
    """DNatController: inverted ``disabled`` toggle and the anti-lockout pseudo rows."""

    ANTI_LOCKOUT_PORTS = ("443", "80")

    def rows(self, call: ApiCall) -> list[dict[str, Any]]:
        rows = super().rows(call)
        for row in rows:
            row["category_colors"] = []
        lockout = [
            {
                "uuid": f"lockout_{index}",
                "ipprotocol": "",
                "protocol": "tcp",
                "%protocol": "TCP",
                "disabled": "0",
                "nordr": "1",
                "interface": "lan",
                "%interface": self.sim.config_xml.interfaces.get("lan", "LAN"),
                "destination.network": "lanip",
                "destination.port": port,
                "descr": "Anti-Lockout Rule",
                "is_automatic": True,
                "sort_order": f"100000.0{index:06d}",
                "prio_group": "100000",
            }
            for index, port in enumerate(self.ANTI_LOCKOUT_PORTS)
        ]
        return list(reversed(lockout)) + rows

    async def search_rule(self, call: ApiCall) -> Any:
        grid = GridRequest.from_params({**call.query, **call.post})
        rows = self.rows(call)
        automatic = [row for row in rows if row.get("is_automatic")]
        result = search_grid([row for row in rows if not row.get("is_automatic")], grid, "sequence")
        # The PHP code prepends the automatic rows after paging, so they show on every page.
        result["rows"] = automatic + result["rows"]
        return result

    async def toggle_rule(self, call: ApiCall) -> Any:
        result: dict[str, Any] = {"result": "failed"}
        record = self.collection.records.get(call.param(0) or "")
        if not call.is_post or record is None:
            return result
        disabled = call.param(1)
        if disabled in ("0", "1"):
            record["disabled"] = disabled
        else:
            record["disabled"] = "0" if record.get("disabled") == "1" else "1"
        result["result"] = "Disabled" if record["disabled"] == "1" else "Enabled"
        self._save(call, "toggleRule")
        return result
