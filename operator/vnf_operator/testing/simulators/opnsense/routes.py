"""Static routes (RoutesController) and the read side of gateways (routing/settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .api import Action, ApiCall, Controller
from .mvc import Collection, GridRequest, is_uuid, search_grid

if TYPE_CHECKING:
    from .simulator import OpnsenseSimulator

V26_7 = (26, 7)


class RoutesController:
    def __init__(self, sim: OpnsenseSimulator) -> None:
        self.sim = sim

    @property
    def routes(self) -> Collection:
        return self.sim.config_xml.routes

    def controller(self) -> Controller:
        return Controller.build(
            "routes",
            "routes",
            [
                Action("searchroute", self.search_route),
                Action("getroute", self.get_route, ("uuid",)),
                Action("addroute", self.add_route),
                Action("setroute", self.set_route, ("uuid",)),
                Action("delroute", self.del_route, ("uuid",)),
                Action("toggleroute", self.toggle_route, ("uuid", "enabled")),
                Action("reconfigure", self.reconfigure),
            ],
        )

    def _save(self, call: ApiCall, action: str) -> None:
        self.sim.save_config(call, f"/api/routes/routes/{action} made changes", "routes")

    async def search_route(self, call: ApiCall) -> Any:
        ctx = self.sim.config_xml.context
        rows = [self.routes.row(key, record, ctx) for key, record in self.routes.records.items()]
        return search_grid(rows, GridRequest.from_params({**call.query, **call.post}), "description")

    async def get_route(self, call: ApiCall) -> Any:
        ctx = self.sim.config_xml.context
        record_uuid = call.param(0)
        if record_uuid is None:
            return {"route": self.routes.view(self.routes.new_record(), ctx)}
        record = self.routes.records.get(record_uuid)
        return {"route": self.routes.view(record, ctx)} if record is not None else []

    async def add_route(self, call: ApiCall) -> Any:
        posted = call.post.get("route") if call.has_post("route") else None
        if not isinstance(posted, dict):
            return {"result": "failed"}
        record = self.routes.new_record()
        self.routes.apply_post(record, posted)
        validations = self.routes.validate(record, self.sim.config_xml.context)
        if validations:
            return {"result": "failed", "validations": validations}
        record_uuid = self.sim.new_uuid()
        self.routes.records[record_uuid] = record
        self._save(call, "addroute")
        return {"result": "saved", "uuid": record_uuid}

    async def set_route(self, call: ApiCall) -> Any:
        record_uuid = call.param(0)
        posted = call.post.get("route") if call.has_post("route") else None
        if not record_uuid or not isinstance(posted, dict):
            return {"result": "failed"}
        existing = self.routes.records.get(record_uuid)
        if existing is None and not is_uuid(record_uuid):
            return {"result": "failed"}
        record = dict(existing) if existing is not None else self.routes.new_record()
        self.routes.apply_post(record, posted)
        validations = self.routes.validate(record, self.sim.config_xml.context)
        if validations:
            return {"result": "failed", "validations": validations}
        if existing is not None and existing["network"] != record["network"]:
            # The first changed network wins: reconfigure removes the kernel route it names.
            self.sim.route_deletions.setdefault(record_uuid, existing["network"])
        self.routes.records[record_uuid] = record
        self._save(call, "setroute")
        return {"result": "saved"}

    async def del_route(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"result": "failed"}
        result = "failed"
        changed = False
        for record_uuid in (call.param(0) or "").split(","):
            record = self.routes.records.pop(record_uuid, None) if record_uuid else None
            if record is not None:
                self.sim.route_deletions[record_uuid] = record["network"]
                changed = True
                result = "deleted"
            elif record_uuid:
                result = "not found"
        if changed:
            self._save(call, "delroute")
        return {"result": result}

    async def toggle_route(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"result": "failed"}
        record = self.routes.records.get(call.param(0) or "")
        if record is None:
            return {"result": "failed"}
        wanted = call.param(1)
        if self.sim.version >= V26_7:
            # toggleBase() on the ``enabled`` field.
            if wanted in ("0", "1"):
                changed = record["enabled"] != wanted
                record["enabled"] = wanted
            elif wanted is not None:
                return {"result": "failed", "changed": False}
            else:
                record["enabled"] = "0" if record["enabled"] == "1" else "1"
                changed = True
            if changed:
                self._save(call, "toggleroute")
            return {"result": "Enabled" if record["enabled"] == "1" else "Disabled", "changed": changed}
        # Up to 25.7 the optional parameter is the *disabled* value.
        if wanted in ("0", "1"):
            record["disabled"] = wanted
        else:
            record["disabled"] = "0" if record["disabled"] == "1" else "1"
        self._save(call, "toggleroute")
        return {"result": "Disabled" if record["disabled"] == "1" else "Enabled"}

    async def reconfigure(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "failed"}
        self.sim.apply_routes()
        return {"status": "ok"}


class GatewaySettingsController:
    """``/api/routing/settings/searchGateway``: read-only view of the configured gateways."""

    def __init__(self, sim: OpnsenseSimulator) -> None:
        self.sim = sim

    def controller(self) -> Controller:
        return Controller.build("routing", "settings", [Action("searchGateway", self.search_gateway)])

    async def search_gateway(self, call: ApiCall) -> Any:
        rows = [
            {
                "uuid": name,
                "name": name,
                "interface": "wan" if name.startswith("WAN") else "lan",
                "ipprotocol": "inet6" if ":" in address else "inet",
                "gateway": address,
                "disabled": "0",
                "defaultgw": "1" if name.startswith("WAN") else "0",
            }
            for name, address in self.sim.config_xml.gateways.items()
        ]
        return search_grid(rows, GridRequest.from_params({**call.query, **call.post}), "name")
