"""The os-frr plugin's BGP neighbors (``/api/quagga/bgp``) and its service reconfigure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .api import Action, ApiCall, Controller
from .fields import BooleanField, IntegerField, InterfaceField, NetworkField, TextField
from .mvc import Collection, GridRequest, ModelSpec, is_uuid, search_grid

if TYPE_CHECKING:
    from .simulator import OpnsenseSimulator

NEIGHBOR = ModelSpec(
    key="neighbor",
    fields={
        "enabled": BooleanField(required=True, default="1"),
        "description": TextField(),
        "address": NetworkField(required=True),
        "remoteas": IntegerField(
            required=True, minimum=1, maximum=4294967295, message="Please enter a valid AS number."
        ),
        "password": TextField(),
        "updatesource": InterfaceField(),
        "nexthopself": BooleanField(required=True, default="0"),
        "multihop": BooleanField(required=True, default="0"),
        "defaultoriginate": BooleanField(required=True, default="0"),
    },
)


class BgpNeighborController:
    """ApiMutableModelControllerBase CRUD for ``neighbor`` items."""

    def __init__(self, sim: OpnsenseSimulator) -> None:
        self.sim = sim
        self.running: dict[str, dict[str, str]] = {}
        self.dirty = False

    def controllers(self) -> list[Controller]:
        return [
            Controller.build(
                "quagga",
                "bgp",
                [
                    Action("searchNeighbor", self.search),
                    Action("getNeighbor", self.get, ("uuid",)),
                    Action("addNeighbor", self.add),
                    Action("setNeighbor", self.set, ("uuid",)),
                    Action("delNeighbor", self.delete, ("uuid",)),
                    Action("toggleNeighbor", self.toggle, ("uuid", "enabled")),
                ],
            ),
            Controller.build("quagga", "service", [Action("reconfigure", self.reconfigure)]),
        ]

    @property
    def neighbors(self) -> Collection:
        return self.sim.config_xml.bgp_neighbors

    def _save(self, call: ApiCall, action: str) -> None:
        self.sim.save_config(call, f"/api/quagga/bgp/{action} made changes", None)
        self.dirty = True

    async def search(self, call: ApiCall) -> Any:
        ctx = self.sim.config_xml.context
        rows = [self.neighbors.row(key, record, ctx) for key, record in self.neighbors.records.items()]
        return search_grid(rows, GridRequest.from_params({**call.query, **call.post}), "address")

    async def get(self, call: ApiCall) -> Any:
        ctx = self.sim.config_xml.context
        key = call.param(0)
        if key is None:
            return {"neighbor": self.neighbors.view(self.neighbors.new_record(), ctx)}
        record = self.neighbors.records.get(key)
        return {"neighbor": self.neighbors.view(record, ctx)} if record is not None else []

    async def add(self, call: ApiCall) -> Any:
        posted = call.post.get("neighbor") if call.has_post("neighbor") else None
        if not isinstance(posted, dict):
            return {"result": "failed"}
        record = self.neighbors.new_record()
        self.neighbors.apply_post(record, posted)
        validations = self.neighbors.validate(record, self.sim.config_xml.context)
        if validations:
            return {"result": "failed", "validations": validations}
        key = self.sim.new_uuid()
        self.neighbors.records[key] = record
        self._save(call, "addNeighbor")
        return {"result": "saved", "uuid": key}

    async def set(self, call: ApiCall) -> Any:
        key = call.param(0)
        posted = call.post.get("neighbor") if call.has_post("neighbor") else None
        if not key or not isinstance(posted, dict):
            return {"result": "failed"}
        existing = self.neighbors.records.get(key)
        if existing is None and not is_uuid(key):
            return {"result": "failed"}
        record = dict(existing) if existing is not None else self.neighbors.new_record()
        self.neighbors.apply_post(record, posted)
        validations = self.neighbors.validate(record, self.sim.config_xml.context)
        if validations:
            return {"result": "failed", "validations": validations}
        self.neighbors.records[key] = record
        self._save(call, "setNeighbor")
        return {"result": "saved"}

    async def delete(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"result": "failed"}
        if self.neighbors.records.pop(call.param(0) or "", None) is None:
            return {"result": "not found"}
        self._save(call, "delNeighbor")
        return {"result": "deleted"}

    async def toggle(self, call: ApiCall) -> Any:
        record = self.neighbors.records.get(call.param(0) or "")
        if not call.is_post or record is None:
            return {"result": "failed"}
        wanted = call.param(1)
        new = wanted if wanted in ("0", "1") else ("0" if record["enabled"] == "1" else "1")
        changed = new != record["enabled"]
        record["enabled"] = new
        if changed:
            self._save(call, "toggleNeighbor")
        return {"result": "Enabled" if new == "1" else "Disabled", "changed": changed}

    async def reconfigure(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "failed"}
        self.apply()
        return {"status": "ok"}

    def apply(self) -> None:
        self.running = {
            key: dict(value) for key, value in self.neighbors.records.items() if value["enabled"] == "1"
        }
        self.dirty = False
