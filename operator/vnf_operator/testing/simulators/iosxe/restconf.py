"""RESTCONF (RFC 8040) over the shared IOS-XE running configuration."""

from __future__ import annotations

import copy
import json
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..base import set_template
from . import yang
from .state import Bgp, IosConfig, IosError, canonical_interface

if TYPE_CHECKING:
    from .simulator import IosXeSimulator

JSON_TYPE = "application/yang-data+json"
NATIVE = "Cisco-IOS-XE-native"
OPER_INTERFACES = "Cisco-IOS-XE-interfaces-oper:interfaces"


class RestconfError(Exception):
    def __init__(self, status: int, tag: str, message: str, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.tag = tag
        self.message = message
        self.path = path


def errors_body(exc: RestconfError) -> dict[str, Any]:
    error: dict[str, Any] = {"error-type": "application", "error-tag": exc.tag}
    if exc.path:
        error["error-path"] = exc.path
    error["error-message"] = exc.message
    return {"ietf-restconf:errors": {"error": [error]}}


def _to_xml(parent: ET.Element, key: str, value: Any) -> None:
    module, _, name = key.rpartition(":")
    items = value if isinstance(value, list) and value != yang.EMPTY else [value]
    for item in items:
        element = ET.SubElement(parent, name)
        if module:
            element.set("xmlns", f"http://cisco.com/ns/yang/{module}")
        if isinstance(item, dict):
            for child_key, child in item.items():
                _to_xml(element, child_key, child)
        elif item == yang.EMPTY or item is None:
            continue
        else:
            element.text = str(item).lower() if isinstance(item, bool) else str(item)


def to_xml(data: dict[str, Any]) -> str:
    holder = ET.Element("holder")
    for key, value in data.items():
        _to_xml(holder, key, value)
    return "".join(ET.tostring(child, encoding="unicode") for child in holder)


@dataclass
class Target:
    """What a data URL names: a kind plus its keys."""

    kind: str  # native | hostname | interfaces | interface | routes | route | acls | acl | router | bgp
    keys: tuple[str, ...] = ()
    path: str = ""


def parse_target(raw_tail: str) -> Target:
    segments = [urllib.parse.unquote(part) for part in raw_tail.split("/") if part]
    path = "/" + "/".join(segments)
    if not segments or yang.strip_module(segments[0]) != "native":
        raise RestconfError(404, "invalid-value", "uri keypath not found", path)
    rest = [yang.strip_module(segment) for segment in segments[1:]]
    names = [segment.split("=", 1)[0] for segment in rest]
    keys = tuple(segment.split("=", 1)[1] for segment in rest if "=" in segment)
    shapes = {
        (): "native",
        ("hostname",): "hostname",
        ("interface",): "interfaces",
        ("ip", "route"): "routes",
        ("ip", "access-list"): "acls",
        ("router",): "router",
    }
    kind = shapes.get(tuple(names))
    if kind is not None and not keys:
        return Target(kind, (), path)
    if len(names) == 2 and names[0] == "interface" and len(keys) == 1:
        return Target("interface", (f"{names[1]}{keys[0]}",), path)
    if names == ["ip", "route", "ip-route-interface-forwarding-list"] and len(keys) == 1:
        return Target("route", tuple(keys[0].split(",")), path)
    if names == ["ip", "access-list", "extended"] and len(keys) == 1:
        return Target("acl", keys, path)
    if names == ["router", "bgp"]:
        return Target("bgp", keys, path)
    raise RestconfError(404, "invalid-value", "uri keypath not found", path)


class Restconf:
    def __init__(self, sim: IosXeSimulator) -> None:
        self.sim = sim
        self._working: IosConfig | None = None

    @property
    def config(self) -> IosConfig:
        """A scratch copy during a request, so a refused edit changes nothing."""
        return self._working if self._working is not None else self.sim.running

    def setup(self, app: web.Application) -> None:
        app.router.add_route("*", "/restconf/data/{tail:.*}", self.handle_data)
        app.router.add_post("/restconf/operations/cisco-ia:save-config", self.handle_save)
        app.router.add_get("/restconf", self.handle_root)
        app.router.add_get("/.well-known/host-meta", self.handle_host_meta)

    # ------------------------------------------------------------------ plumbing
    def _respond(self, request: web.Request, status: int, data: dict[str, Any] | None) -> web.Response:
        if data is None:
            return web.Response(status=status)
        accept = request.headers.get("Accept", "")
        if "json" in accept:
            return web.Response(status=status, text=json.dumps(data), content_type=JSON_TYPE)
        # Without a JSON Accept header IOS-XE answers in XML.
        return web.Response(status=status, text=to_xml(data), content_type="application/yang-data+xml")

    def _error(self, request: web.Request, exc: RestconfError) -> web.Response:
        return self._respond(request, exc.status, errors_body(exc))

    async def handle_host_meta(self, request: web.Request) -> web.StreamResponse:
        body = "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n    <Link rel='restconf' href='/restconf'/>\n</XRD>\n"
        return web.Response(text=body, content_type="application/xrd+xml")

    async def handle_root(self, request: web.Request) -> web.StreamResponse:
        if not self.sim.check_basic_auth(request.headers.get("Authorization", "")):
            return self._error(request, RestconfError(401, "access-denied", "access denied"))
        data = {
            "ietf-restconf:restconf": {"data": {}, "operations": {}, "yang-library-version": "2016-06-21"}
        }
        return self._respond(request, 200, data)

    async def handle_save(self, request: web.Request) -> web.StreamResponse:
        set_template(request, "/restconf/operations/cisco-ia:save-config")
        if not self.sim.check_basic_auth(request.headers.get("Authorization", "")):
            return self._error(request, RestconfError(401, "access-denied", "access denied"))
        self.sim.save()
        return self._respond(
            request, 200, {"cisco-ia:output": {"result": "Save running config is successful"}}
        )

    async def handle_data(self, request: web.Request) -> web.StreamResponse:
        if not self.sim.check_basic_auth(request.headers.get("Authorization", "")):
            set_template(request, "/restconf/data/{unauthorized}")
            return self._error(request, RestconfError(401, "access-denied", "access denied"))
        raw_tail = request.raw_path.split("/restconf/data/", 1)[1].split("?", 1)[0]
        set_template(request, "/restconf/data/{unknown}")
        if urllib.parse.unquote(raw_tail).startswith(OPER_INTERFACES):
            set_template(request, f"/restconf/data/{OPER_INTERFACES}")
            try:
                return self._respond(request, 200, self._oper_interfaces(request.method, raw_tail))
            except RestconfError as exc:
                return self._error(request, exc)
        try:
            target = parse_target(raw_tail)
            set_template(request, f"/restconf/data/{target.kind}")
            body = await self._body(request)
            self._working = copy.deepcopy(self.sim.running)
            status, data, location = self._dispatch(request.method, target, body)
            if request.method != "GET":
                self.sim.running = self._working
        except RestconfError as exc:
            return self._error(request, exc)
        except IosError as exc:
            return self._error(request, RestconfError(400, "invalid-value", str(exc), "/" + raw_tail))
        finally:
            self._working = None
        response = self._respond(request, status, data)
        if location:
            response.headers["Location"] = location
        return response

    @staticmethod
    async def _body(request: web.Request) -> Any:
        if request.method not in ("PUT", "PATCH", "POST"):
            return None
        if "json" not in request.content_type:
            raise RestconfError(415, "malformed-message", f"unsupported content type {request.content_type}")
        try:
            return json.loads(await request.text())
        except ValueError:
            raise RestconfError(400, "malformed-message", "malformed JSON body") from None

    def _oper_interfaces(self, method: str, raw_tail: str) -> dict[str, Any]:
        """Cisco-IOS-XE-interfaces-oper: read-only operational state derived from the config."""
        segments = [urllib.parse.unquote(part) for part in raw_tail.split("/") if part]
        if method != "GET":
            raise RestconfError(405, "operation-not-supported", "operational data is read-only")
        rows = [yang.oper_interface_json(interface) for interface in self.config.interfaces.values()]
        if len(segments) == 1:
            return {f"{OPER_INTERFACES}": {"interface": rows}}
        if len(segments) == 2 and segments[1].startswith("interface="):
            wanted = segments[1].split("=", 1)[1]
            match = [row for row in rows if row["name"] == wanted]
            if not match:
                raise RestconfError(404, "data-missing", "data missing", "/" + "/".join(segments))
            return {"Cisco-IOS-XE-interfaces-oper:interface": match}
        raise RestconfError(404, "invalid-value", "uri keypath not found", "/" + "/".join(segments))

    # ------------------------------------------------------------------ resources
    def _dispatch(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        handler = getattr(self, f"_{target.kind}")
        result: tuple[int, dict[str, Any] | None, str] = handler(method, target, body)
        return result

    @staticmethod
    def _method_not_allowed(target: Target) -> RestconfError:
        return RestconfError(405, "operation-not-supported", "method not allowed", target.path)

    @staticmethod
    def _missing(target: Target) -> RestconfError:
        return RestconfError(404, "data-missing", "data missing", target.path)

    @staticmethod
    def _exists(target: Target, what: str) -> RestconfError:
        return RestconfError(409, "data-exists", f"object already exists: {what}", target.path)

    def _native(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        if method != "GET":
            raise self._method_not_allowed(target)
        return 200, {f"{NATIVE}:native": yang.native_json(self.config)}, ""

    def _hostname(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        if method == "GET":
            return 200, {f"{NATIVE}:hostname": self.config.hostname}, ""
        if method in ("PUT", "PATCH"):
            self.config.hostname = str(yang.unwrap(body, "hostname"))
            return 204, None, ""
        raise self._method_not_allowed(target)

    def _interfaces(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        if method == "GET":
            return 200, {f"{NATIVE}:interface": yang.interfaces_json(self.config)}, ""
        if method == "POST":
            if not isinstance(body, dict) or len(body) != 1:
                raise IosError("expected one interface type")
            key, value = next(iter(body.items()))
            kind = yang.strip_module(key)
            created = ""
            for entry in yang.as_entries(value):
                name = canonical_interface(f"{kind}{entry.get('name', '')}")
                if name is None:
                    raise IosError(f"unknown interface {kind}{entry.get('name')}")
                if name in self.config.interfaces:
                    raise self._exists(target, name)
                yang.apply_interface(self.config.interface(name), entry, replace=True)
                created = f"/restconf/data/{NATIVE}:native/interface/{kind}={entry.get('name')}"
            return 201, None, created
        raise self._method_not_allowed(target)

    def _interface(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        name = canonical_interface(target.keys[0])
        if name is None:
            raise RestconfError(404, "invalid-value", "uri keypath not found", target.path)
        kind, _ = yang.split_interface(name)
        existing = self.config.interfaces.get(name)
        if method == "GET":
            if existing is None:
                raise self._missing(target)
            return 200, {f"{NATIVE}:{kind}": [yang.interface_json(existing)]}, ""
        if method in ("PUT", "PATCH"):
            entries = yang.as_entries(yang.unwrap(body, kind))
            interface = self.config.interface(name)
            yang.apply_interface(interface, entries[0], replace=method == "PUT")
            return (201 if existing is None else 204), None, ""
        if method == "DELETE":
            if existing is None:
                raise self._missing(target)
            if not name.startswith("Loopback"):
                raise IosError("inconsistent value: Device refused one or more commands")
            del self.config.interfaces[name]
            return 204, None, ""
        raise self._method_not_allowed(target)

    def _routes(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        if method == "GET":
            if not self.config.routes:
                raise self._missing(target)
            return 200, {f"{NATIVE}:route": yang.routes_json(self.config)}, ""
        if method == "DELETE":
            if not self.config.routes:
                raise self._missing(target)
            self.config.routes.clear()
            return 204, None, ""
        if method in ("PUT", "PATCH", "POST"):
            container = yang.unwrap(body, "route") if method != "POST" else body
            entries = (
                container.get("ip-route-interface-forwarding-list", []) if isinstance(container, dict) else []
            )
            parsed = [yang.parse_route_entry(entry) for entry in yang.as_entries(entries)]
            if method == "POST":
                for prefix, mask, _ in parsed:
                    if (prefix, mask) in self.config.routes:
                        raise self._exists(target, f"{prefix} {mask}")
            if method == "PUT":
                self.config.routes.clear()
            for prefix, mask, hops in parsed:
                current = self.config.routes.setdefault((prefix, mask), [])
                current.extend(hop for hop in hops if hop not in current)
            return (201 if method == "POST" else 204), None, ""
        raise self._method_not_allowed(target)

    def _route(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        if len(target.keys) != 2:
            raise RestconfError(400, "invalid-value", "route keys are prefix,mask", target.path)
        key = (target.keys[0], target.keys[1])
        hops = self.config.routes.get(key)
        if method == "GET":
            if hops is None:
                raise self._missing(target)
            return (
                200,
                {f"{NATIVE}:ip-route-interface-forwarding-list": [yang.route_entry_json(self.config, *key)]},
                "",
            )
        if method in ("PUT", "PATCH"):
            entries = yang.as_entries(yang.unwrap(body, "ip-route-interface-forwarding-list"))
            prefix, mask, new_hops = yang.parse_route_entry(entries[0])
            if (prefix, mask) != key:
                raise IosError("key in body does not match the URI")
            if method == "PUT" or hops is None:
                self.config.routes[key] = new_hops
            else:
                hops.extend(hop for hop in new_hops if hop not in hops)
            return (201 if hops is None else 204), None, ""
        if method == "DELETE":
            if hops is None:
                raise self._missing(target)
            del self.config.routes[key]
            return 204, None, ""
        raise self._method_not_allowed(target)

    def _acls(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        if method == "GET":
            acls = [yang.acl_json(name, rules) for name, rules in self.config.acls.items()]
            return 200, {f"{NATIVE}:access-list": {"Cisco-IOS-XE-acl:extended": acls}}, ""
        if method == "POST":
            entries = yang.as_entries(yang.unwrap(body, "extended"))
            parsed = [yang.parse_acl(entry) for entry in entries]
            for name, _ in parsed:
                if name in self.config.acls:
                    raise self._exists(target, name)
            for name, rules in parsed:
                self.config.acls[name] = rules
            location = (
                f"/restconf/data/{NATIVE}:native/ip/access-list/extended={parsed[-1][0]}" if parsed else ""
            )
            return 201, None, location
        raise self._method_not_allowed(target)

    def _acl(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        name = target.keys[0]
        rules = self.config.acls.get(name)
        if method == "GET":
            if rules is None:
                raise self._missing(target)
            return 200, {"Cisco-IOS-XE-acl:extended": [yang.acl_json(name, rules)]}, ""
        if method in ("PUT", "PATCH"):
            body_name, new_rules = yang.parse_acl(yang.as_entries(yang.unwrap(body, "extended"))[0])
            if body_name != name:
                raise IosError("key in body does not match the URI")
            if method == "PUT" or rules is None:
                self.config.acls[name] = new_rules
            else:
                rules.update(new_rules)
            return (201 if rules is None else 204), None, ""
        if method == "DELETE":
            if rules is None:
                raise self._missing(target)
            del self.config.acls[name]
            return 204, None, ""
        raise self._method_not_allowed(target)

    def _router(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        if method == "GET":
            data = {"Cisco-IOS-XE-bgp:bgp": [yang.bgp_json(self.config.bgp)]} if self.config.bgp else {}
            return 200, {f"{NATIVE}:router": data}, ""
        if method == "POST":
            entries = yang.as_entries(yang.unwrap(body, "bgp"))
            entry = entries[0]
            if self.config.bgp is not None:
                raise self._exists(target, f"bgp {self.config.bgp.asn}")
            bgp = Bgp(int(entry.get("id", 0)))
            yang.apply_bgp(bgp, entry, replace=False)
            self.config.bgp = bgp
            return 201, None, f"/restconf/data/{NATIVE}:native/router/Cisco-IOS-XE-bgp:bgp={bgp.asn}"
        raise self._method_not_allowed(target)

    def _bgp(self, method: str, target: Target, body: Any) -> tuple[int, dict[str, Any] | None, str]:
        bgp = self.config.bgp
        asn = int(target.keys[0]) if target.keys else (bgp.asn if bgp else None)
        matches = bgp is not None and bgp.asn == asn
        if method == "GET":
            if not matches or bgp is None:
                raise self._missing(target)
            return 200, {"Cisco-IOS-XE-bgp:bgp": [yang.bgp_json(bgp)]}, ""
        if method in ("PUT", "PATCH"):
            entry = yang.as_entries(yang.unwrap(body, "bgp"))[0]
            wanted = int(entry.get("id", asn or 0))
            if asn is not None and wanted != asn:
                raise IosError("key in body does not match the URI")
            created = bgp is None
            bgp = self.config.start_bgp(wanted)
            yang.apply_bgp(bgp, entry, replace=method == "PUT")
            return (201 if created else 204), None, ""
        if method == "DELETE":
            if not matches:
                raise self._missing(target)
            self.config.bgp = None
            return 204, None, ""
        raise self._method_not_allowed(target)
