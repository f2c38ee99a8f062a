"""FortiGate (FortiOS 7.x) REST API: cmdb tables with live changes and the JSON envelope."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web
from multidict import MultiMapping

from ..base import BaseSimulator, Credentials, SimulatorConfig, json_response, set_template
from .tables import (
    BGP_ATTRS,
    BGP_NEIGHBOR,
    DUPLICATE,
    INTERFACE,
    NOT_FOUND,
    TABLES,
    Attr,
    CmdbError,
    Row,
    TableSpec,
    coerce,
    invalid,
    new_uuid,
)

SERIAL = "FGVM02TM24000001"
BUILDS = {"7.0": 1575, "7.2": 1688, "7.4": 2662, "7.6": 3401}


class FortigateSimulator(BaseSimulator):
    """FortiOS REST API (cmdb + a monitor health endpoint), token auth, VDOM root."""

    vendor: ClassVar[str] = "fortigate"
    default_firmware: ClassVar[str] = "7.4.4"
    default_hostname: ClassVar[str] = "FGVM01"
    default_credentials: ClassVar[Credentials] = Credentials(
        username="api-admin", api_key="sim-fortigate-token"
    )

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self.version_tuple = tuple(int(part) for part in re.findall(r"\d+", self.firmware_version)[:3])
        self.tables: dict[str, list[Row]] = {spec.path: [] for spec in TABLES}
        self.bgp: Row = {name: copy.deepcopy(attr.default) for name, attr in BGP_ATTRS.items()}
        self.revision_counter = 0
        self._seed()

    @property
    def specs(self) -> dict[str, TableSpec]:
        return {spec.path: spec for spec in TABLES}

    def _seed(self) -> None:
        for index, name in enumerate(("port1", "port2", "port3", "port4"), start=1):
            row = INTERFACE.new_row()
            row.update(name=name, ip=f"10.0.{index}.1 255.255.255.0" if index < 3 else "0.0.0.0 0.0.0.0")
            self.tables["system/interface"].append(row)
        self.tables["firewall/address"] += [
            {"name": "all", "uuid": new_uuid(), "type": "ipmask", "subnet": "0.0.0.0 0.0.0.0", "comment": ""},
            {
                "name": "none",
                "uuid": new_uuid(),
                "type": "ipmask",
                "subnet": "0.0.0.0 255.255.255.255",
                "comment": "",
            },
        ]
        services = {"HTTP": "80", "HTTPS": "443", "SSH": "22", "DNS": "53", "PING": "", "ALL_TCP": "1-65535"}
        self.tables["firewall.service/custom"] += [
            {"name": name, "protocol": "TCP/UDP/SCTP", "tcp-portrange": ports}
            for name, ports in services.items()
        ]
        self.tables["firewall.schedule/recurring"].append({"name": "always", "day": "sunday monday tuesday"})

    # ------------------------------------------------------------------ lifecycle
    def setup_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v2/cmdb/{tail:.*}", self.handle_cmdb)
        app.router.add_get("/api/v2/monitor/system/status", self.handle_status)

    def on_reboot(self) -> None:
        """FortiOS saves every change at once: nothing is lost."""

    @property
    def revision(self) -> str:
        return hashlib.sha256(f"rev-{self.revision_counter}".encode()).hexdigest()[:32]

    def _bump(self) -> str:
        old = self.revision
        self.revision_counter += 1
        return old

    def _meta(self, method: str, path: str, name: str) -> dict[str, Any]:
        major_minor = ".".join(str(p) for p in self.version_tuple[:2])
        return {
            "http_method": method,
            "revision": self.revision,
            "vdom": "root",
            "path": path,
            "name": name,
            "serial": SERIAL,
            "version": f"v{self.firmware_version}",
            "build": BUILDS.get(major_minor, 2662),
        }

    def fault_error_response(self, status: int) -> web.StreamResponse:
        return json_response({"http_method": "GET", "status": "error", "http_status": status}, status)

    # ------------------------------------------------------------------ auth
    def authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return hmac.compare_digest(token, self.credentials.api_key)
        query_token = request.query.get("access_token")
        # The URL parameter is disabled by default from 7.4.5.
        if query_token is not None and self.version_tuple < (7, 4, 5):
            return hmac.compare_digest(query_token, self.credentials.api_key)
        return False

    async def handle_status(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            return json_response({"http_method": "GET", "status": "error", "http_status": 401}, 401)
        meta = self._meta("GET", "system", "status")
        results = {
            "model_name": "FortiGate",
            "model_number": "VM64",
            "model": "FGVM64",
            "hostname": self.hostname,
        }
        return json_response(
            {**meta, "action": "", "results": results, "status": "success", "http_status": 200}
        )

    # ------------------------------------------------------------------ cmdb dispatch
    def _parse(self, tail: str) -> tuple[str, str | None, str, str]:
        """-> (table path, mkey, path, name) from ``firewall/policy/3``."""
        parts = [urllib.parse.unquote(part) for part in tail.split("/") if part]
        if len(parts) >= 3 and "/".join(parts[:3]) == "router/bgp/neighbor":
            return "router/bgp/neighbor", parts[3] if len(parts) > 3 else None, "router", "bgp"
        if parts == ["router", "bgp"]:
            return "router/bgp", None, "router", "bgp"
        if len(parts) < 2 or "/".join(parts[:2]) not in self.specs:
            raise CmdbError(404, NOT_FOUND, "unknown path")
        return "/".join(parts[:2]), parts[2] if len(parts) > 2 else None, parts[0], parts[1]

    async def handle_cmdb(self, request: web.Request) -> web.StreamResponse:
        method = request.method
        if not self.authorized(request):
            set_template(request, "/api/v2/cmdb/{unauthorized}")
            return json_response({"http_method": method, "status": "error", "http_status": 401}, 401)
        try:
            table, mkey, path, name = self._parse(request.match_info["tail"])
        except CmdbError:
            set_template(request, "/api/v2/cmdb/{unknown}")
            return json_response({"http_method": method, "status": "error", "http_status": 404}, 404)
        set_template(request, f"/api/v2/cmdb/{table}" + ("/{mkey}" if mkey is not None else ""))
        meta = self._meta(method, path, name)
        try:
            vdom = request.query.get("vdom", "root")
            if vdom != "root":
                raise CmdbError(404, NOT_FOUND, f"vdom {vdom} does not exist")
            body = await self._body(request)
            result = self._dispatch(method, table, mkey, request.query, body)
        except CmdbError as exc:
            error: dict[str, Any] = {
                **meta,
                "status": "error",
                "http_status": exc.http_status,
                "error": exc.error,
            }
            if mkey is not None:
                error["mkey"] = mkey
            if exc.detail:
                error["cli_error"] = exc.detail
            return json_response(error, exc.http_status)
        return json_response(
            {**meta, **result, "revision": self.revision, "status": "success", "http_status": 200}
        )

    @staticmethod
    async def _body(request: web.Request) -> Any:
        if request.method not in ("POST", "PUT") or not request.can_read_body:
            return None
        text = await request.text()
        if not text.strip():
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise invalid("request body is not valid JSON") from None

    def _dispatch(
        self, method: str, table: str, mkey: str | None, query: MultiMapping[str], body: Any
    ) -> dict[str, Any]:
        if table == "router/bgp":
            return self._bgp(method, body)
        if table == "router/bgp/neighbor":
            return self._rows_op(method, BGP_NEIGHBOR, self.bgp["neighbor"], mkey, query, body)
        spec = self.specs[table]
        if method == "GET" and query.get("action") == "schema":
            return {
                "results": {
                    "name": spec.path,
                    "attributes": {k: {"type": v.kind} for k, v in spec.attrs.items()},
                }
            }
        if spec.read_only and method != "GET":
            raise CmdbError(405, -1, "read-only table")
        return self._rows_op(method, spec, self.tables[table], mkey, query, body)

    # ------------------------------------------------------------------ table operations
    def _lookup(self, table: str) -> set[str]:
        spec = self.specs.get(table)
        return {str(row[spec.mkey]) for row in self.tables[table]} if spec else set()

    def _find(self, spec: TableSpec, rows: list[Row], mkey: str) -> int:
        for index, row in enumerate(rows):
            if str(row[spec.mkey]) == mkey:
                return index
        raise CmdbError(404, NOT_FOUND)

    def _apply_values(self, spec: TableSpec, row: Row, values: Mapping[str, Any]) -> None:
        for name, raw in values.items():
            attr = spec.attrs.get(name)
            if attr is None:
                raise invalid(f"unknown attribute {name}")
            if attr.kind == "table" and attr.children is not None:
                row[name] = [self._child_row(attr.children, item) for item in raw]
            else:
                row[name] = coerce(name, attr, raw, self._lookup)

    def _child_row(self, attrs: Mapping[str, Attr], raw: Any) -> Row:
        if not isinstance(raw, dict):
            raise invalid("sub-table entries must be objects")
        row = {name: copy.deepcopy(attr.default) for name, attr in attrs.items()}
        for name, value in raw.items():
            if name == "q_origin_key":
                continue
            attr = attrs.get(name)
            if attr is None:
                raise invalid(f"unknown attribute {name}")
            row[name] = coerce(name, attr, value, self._lookup)
        return row

    @staticmethod
    def _check_required(spec: TableSpec, row: Row) -> None:
        for name, attr in spec.attrs.items():
            if attr.required and row.get(name) in ("", [], None):
                raise CmdbError(424, -651, f"{name} must be set")

    @staticmethod
    def _render(spec: TableSpec, row: Row) -> Row:
        return {**row, "q_origin_key": row[spec.mkey]}

    def _rows_op(
        self,
        method: str,
        spec: TableSpec,
        rows: list[Row],
        mkey: str | None,
        query: MultiMapping[str],
        body: Any,
    ) -> dict[str, Any]:
        if method == "GET":
            selected = rows if mkey is None else [rows[self._find(spec, rows, mkey)]]
            filters = list(query.getall("filter", []))
            rendered = [self._render(spec, row) for row in _filter(selected, filters)]
            rendered = _page(rendered, query)
            if query.get("format"):
                keys = query["format"].split("|")
                rendered = [{key: row[key] for key in keys if key in row} for row in rendered]
            return {"results": rendered, "matched_count": len(rendered), "size": len(rows)}
        if method == "POST":
            if mkey is not None:
                raise CmdbError(405, -1, "POST takes the table path")
            values = _object(body)
            row = spec.new_row()
            if "uuid" in spec.attrs:
                row["uuid"] = new_uuid()
            self._apply_values(spec, row, values)
            if spec.auto_mkey and not row.get(spec.mkey):
                row[spec.mkey] = max((int(r[spec.mkey]) for r in rows), default=0) + 1
            if not row.get(spec.mkey) and row.get(spec.mkey) != 0:
                raise CmdbError(424, -651, f"{spec.mkey} must be set")
            if any(str(r[spec.mkey]) == str(row[spec.mkey]) for r in rows):
                raise CmdbError(500, DUPLICATE, "duplicate entry")
            self._check_required(spec, row)
            rows.append(row)
            old = self._bump()
            return {"mkey": row[spec.mkey], "revision_changed": True, "old_revision": old}
        if mkey is None:
            raise CmdbError(405, -1, f"{method} needs an mkey")
        index = self._find(spec, rows, mkey)
        if method == "PUT" and query.get("action") == "move":
            self._move(spec, rows, index, query)
            old = self._bump()
            return {
                "mkey": rows[self._find(spec, rows, mkey)][spec.mkey],
                "revision_changed": True,
                "old_revision": old,
            }
        if method == "PUT":
            row = copy.deepcopy(rows[index])
            values = {k: v for k, v in _object(body).items() if k != "q_origin_key"}
            self._apply_values(spec, row, values)
            self._check_required(spec, row)
            if str(row[spec.mkey]) != mkey and any(str(r[spec.mkey]) == str(row[spec.mkey]) for r in rows):
                raise CmdbError(500, DUPLICATE, "duplicate entry")
            rows[index] = row
            old = self._bump()
            return {"mkey": row[spec.mkey], "revision_changed": True, "old_revision": old}
        if method == "DELETE":
            removed = rows.pop(index)
            old = self._bump()
            return {"mkey": removed[spec.mkey], "revision_changed": True, "old_revision": old}
        raise CmdbError(405, -1, f"method {method} not allowed")

    def _move(self, spec: TableSpec, rows: list[Row], index: int, query: Mapping[str, str]) -> None:
        target_key = query.get("before") or query.get("after")
        if target_key is None:
            raise CmdbError(424, -651, "move needs before= or after=")
        row = rows.pop(index)
        try:
            target = self._find(spec, rows, target_key)
        except CmdbError:
            rows.insert(index, row)
            raise
        rows.insert(target if "before" in query else target + 1, row)

    def _bgp(self, method: str, body: Any) -> dict[str, Any]:
        if method == "GET":
            rendered = copy.deepcopy(self.bgp)
            rendered["neighbor"] = [{**n, "q_origin_key": n["ip"]} for n in rendered["neighbor"]]
            return {"results": rendered}
        if method != "PUT":
            raise CmdbError(405, -1, "router bgp is a singleton: use PUT")
        values = _object(body)
        updated = copy.deepcopy(self.bgp)
        for name, raw in values.items():
            attr = BGP_ATTRS.get(name)
            if attr is None:
                raise invalid(f"unknown attribute {name}")
            if attr.kind == "table" and attr.children is not None:
                updated[name] = [self._child_row(attr.children, item) for item in raw]
            else:
                updated[name] = coerce(name, attr, raw, self._lookup)
        self.bgp = updated
        old = self._bump()
        return {"revision_changed": True, "old_revision": old}

    # ------------------------------------------------------------------ state dump
    def dump_state(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "tables": copy.deepcopy(self.tables),
            "router_bgp": copy.deepcopy(self.bgp),
        }


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object")
    return body


_FILTER_RE = re.compile(r"^(?P<key>[^=!<>@*]+)(?P<op>==|=\*|!=|!\*|=@|!@|<=|>=|<|>)(?P<value>.*)$")


def _condition(row: Row, text: str) -> bool:
    match = _FILTER_RE.match(text)
    if match is None:
        return False
    key, op, wanted = match.group("key"), match.group("op"), match.group("value")
    value = row.get(key)
    if isinstance(value, list):
        value = " ".join(
            str(item.get("name", item)) if isinstance(item, dict) else str(item) for item in value
        )
    current = "" if value is None else str(value)
    if op == "==":
        return current == wanted
    if op == "!=":
        return current != wanted
    if op == "=@":
        return wanted in current
    if op == "!@":
        return wanted not in current
    if op == "=*":
        return current.lower() == wanted.lower()
    if op == "!*":
        return current.lower() != wanted.lower()
    try:
        left, right = float(current), float(wanted)
    except ValueError:
        return False
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _filter(rows: list[Row], filters: list[str]) -> list[Row]:
    """Repeated ``filter=`` parameters AND together; commas inside one OR together."""
    result = []
    for row in rows:
        if all(any(_condition(row, part) for part in group.split(",")) for group in filters):
            result.append(row)
    return result


def _page(rows: list[Row], query: Mapping[str, str]) -> list[Row]:
    start = int(query.get("start", 0) or 0)
    count = query.get("count")
    return rows[start : start + int(count)] if count else rows[start:]
