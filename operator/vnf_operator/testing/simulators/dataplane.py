"""HAProxy Data Plane API (3.x) simulator: configuration versions, transactions, reloads.

The real API (dataplaneapi, a Go program beside HAProxy) edits haproxy.cfg and reloads HAProxy.
Modelled here, for ``/v3`` (bare JSON, the version in the ``Configuration-Version`` header) and
``/v2`` (the ``{"_version": N, "data": ...}`` envelope):

- HTTP Basic auth (a dataplaneapi userlist user); errors as ``{"code": N, "message": "..."}``.
- Every configuration write names either ``version`` (must equal the current configuration
  version: 409 otherwise; neither given: 400) or ``transaction_id`` (an open transaction: 202).
- Transactions: ``POST /transactions?version=N`` copies the configuration; changes go to the copy;
  ``PUT /transactions/{id}`` commits it (406 when the configuration moved on meanwhile), ``DELETE``
  drops it. A commit or a versioned write bumps the version by one and reloads HAProxy:
  ``force_reload=true`` answers 200/201/204 after the reload, otherwise 202 with a ``Reload-ID``.
- Backends with their servers, frontends with their binds; ``full_section=true`` reads and writes a
  section with its children (maps keyed by name, as 3.1 has them). A configuration HAProxy would
  refuse (a frontend's ``default_backend`` that does not exist) fails with 400 and changes nothing.
- ``GET /configuration/raw`` renders the configuration as haproxy.cfg text; ``reload_hook`` lets a
  test put a real HAProxy behind the simulator (each committed configuration is written and loaded).

The configuration file survives a restart; nothing is lost but open HTTP connections.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from .base import BaseSimulator, Credentials, SimulatorConfig, json_response, set_template

Section = dict[str, Any]
NAME_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MODES = ("http", "tcp")
ALGORITHMS = ("roundrobin", "static-rr", "leastconn", "first", "source", "uri", "random")
ON_OFF = ("enabled", "disabled")
Route = Callable[[web.Request, str, Any], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    """An error answer of the Data Plane API."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class HaproxyConfig:
    """The parts of haproxy.cfg the simulator models: named sections with named children."""

    backends: dict[str, Section] = field(default_factory=dict)
    frontends: dict[str, Section] = field(default_factory=dict)

    def clone(self) -> HaproxyConfig:
        return copy.deepcopy(self)

    def check(self) -> None:
        """What `haproxy -c` would refuse before a reload."""
        for name, frontend in self.frontends.items():
            target = frontend.get("default_backend")
            if target and target not in self.backends:
                raise ApiError(400, f"frontend '{name}': unable to find default_backend '{target}'")

    def render(self) -> str:
        """haproxy.cfg text: a global section and the modelled sections."""
        head = "global\n    stats socket /run/haproxy/admin.sock mode 660 level admin\n\n"
        return head + self.render_sections()

    def render_sections(self) -> str:
        """The frontend and backend sections as haproxy.cfg text."""
        lines: list[str] = []
        for name, frontend in self.frontends.items():
            lines += [f"frontend {name}", f"    mode {frontend.get('mode', 'tcp')}"]
            lines += [
                f"    bind {b['address']}:{b['port']} name {b['name']}" for b in frontend["binds"].values()
            ]
            if frontend.get("default_backend"):
                lines.append(f"    default_backend {frontend['default_backend']}")
            lines.append("")
        for name, backend in self.backends.items():
            lines += [f"backend {name}", f"    mode {backend.get('mode', 'tcp')}"]
            lines.append(f"    balance {backend.get('balance', {}).get('algorithm', 'roundrobin')}")
            for server in backend["servers"].values():
                text = f"    server {server['name']} {server['address']}:{server['port']}"
                text += f" weight {server.get('weight', 100)}"
                text += " check" if server.get("check") == "enabled" else ""
                text += " disabled" if server.get("maintenance") == "enabled" else ""
                lines.append(text)
            lines.append("")
        return "\n".join(lines)


@dataclass
class Transaction:
    id: str
    version: int
    config: HaproxyConfig
    status: str = "in_progress"  # in_progress | success | failed | outdated

    def as_dict(self) -> dict[str, Any]:
        return {"_version": self.version, "id": self.id, "status": self.status}


# --------------------------------------------------------------------------- section schemas


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or NAME_RE.match(value) is None:
        raise ApiError(422, f"{what}: name in body should match '{NAME_RE.pattern}'")
    return value


def _enum(body: Mapping[str, Any], key: str, choices: tuple[str, ...], default: str) -> str:
    value = body.get(key, default)
    if value not in choices:
        raise ApiError(422, f"{key} in body should be one of {list(choices)}")
    return str(value)


def _port(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ApiError(422, f"{what}: port in body should be an integer from 1 to 65535")
    return value


def server_from(body: Mapping[str, Any]) -> Section:
    """A server; optional settings are kept only when given (the API omits unset ones)."""
    address = body.get("address")
    if not isinstance(address, str) or not address:
        raise ApiError(422, "address in body is required")
    server: Section = {
        "name": _name(body.get("name"), "server"),
        "address": address,
        "port": _port(body.get("port"), "server"),
    }
    if "weight" in body:
        weight = body["weight"]
        if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 256:
            raise ApiError(422, "weight in body should be an integer from 0 to 256")
        server["weight"] = weight
    for key in ("check", "maintenance"):
        if key in body:
            server[key] = _enum(body, key, ON_OFF, "disabled")
    return server


def bind_from(body: Mapping[str, Any]) -> Section:
    address = body.get("address", "*")
    if not isinstance(address, str):
        raise ApiError(422, "address in body should be a string")
    return {
        "name": _name(body.get("name"), "bind"),
        "address": address,
        "port": _port(body.get("port"), "bind"),
    }


def backend_from(body: Mapping[str, Any]) -> Section:
    balance = body.get("balance") or {}
    if not isinstance(balance, Mapping):
        raise ApiError(422, "balance in body should be an object")
    return {
        "name": _name(body.get("name"), "backend"),
        "mode": _enum(body, "mode", MODES, "tcp"),
        "balance": {"algorithm": _enum(balance, "algorithm", ALGORITHMS, "roundrobin")},
    }


def frontend_from(body: Mapping[str, Any]) -> Section:
    default_backend = body.get("default_backend", "")
    if not isinstance(default_backend, str):
        raise ApiError(422, "default_backend in body should be a string")
    return {
        "name": _name(body.get("name"), "frontend"),
        "mode": _enum(body, "mode", MODES, "tcp"),
        "default_backend": default_backend,
    }


@dataclass(frozen=True)
class Kind:
    """A section kind (backend, frontend) and its children kind (servers, binds)."""

    plural: str
    children: str
    parse: Callable[[Mapping[str, Any]], Section]
    parse_child: Callable[[Mapping[str, Any]], Section]


KINDS = {
    "backends": Kind("backends", "servers", backend_from, server_from),
    "frontends": Kind("frontends", "binds", frontend_from, bind_from),
}
CHILD_PARENT = {"servers": "backends", "binds": "frontends"}


def sections(config: HaproxyConfig, kind: Kind) -> dict[str, Section]:
    table: dict[str, Section] = getattr(config, kind.plural)
    return table


def section_view(section: Section, kind: Kind, *, full: bool) -> Section:
    out = {k: copy.deepcopy(v) for k, v in section.items() if k != kind.children}
    if full and section[kind.children]:
        out[kind.children] = copy.deepcopy(section[kind.children])
    return out


def parse_section(kind: Kind, body: Any, *, full: bool) -> Section:
    if not isinstance(body, Mapping):
        raise ApiError(400, "request body must be a JSON object")
    section = kind.parse(body)
    children: dict[str, Section] = {}
    if full:
        raw = body.get(kind.children) or {}
        if not isinstance(raw, Mapping):
            raise ApiError(422, f"{kind.children} in body should be an object keyed by name")
        for key, child in raw.items():
            if not isinstance(child, Mapping):
                raise ApiError(422, f"{kind.children}.{key} in body should be an object")
            parsed = kind.parse_child({"name": key, **child})
            if parsed["name"] != key:
                raise ApiError(422, f"{kind.children}.{key}: name does not match its key")
            children[key] = parsed
    section[kind.children] = children
    return section


# --------------------------------------------------------------------------- the simulator


class DataplaneSimulator(BaseSimulator):
    """HAProxy Data Plane API 3.x (and the 2.x envelope), Basic auth, versions and transactions."""

    vendor: ClassVar[str] = "dataplane"
    default_firmware: ClassVar[str] = "3.1.5"
    default_hostname: ClassVar[str] = "haproxy"
    default_credentials: ClassVar[Credentials] = Credentials(username="admin", password="sim-dataplane-pass")

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self.haproxy = HaproxyConfig()
        self.version = 1
        self.transactions: dict[str, Transaction] = {}
        self.reloads: list[dict[str, Any]] = []
        # A real HAProxy behind the simulator (e2e tests): awaited with each configuration about to
        # go live, as dataplaneapi writes haproxy.cfg and reloads; raising refuses it (400).
        self.reload_hook: Callable[[HaproxyConfig], Awaitable[None]] | None = None

    # ----------------------------------------------------------------- lifecycle
    def setup_routes(self, app: web.Application) -> None:
        for api in ("v2", "v3"):
            app.router.add_get(f"/{api}/info", self.handle_info)
            app.router.add_get(f"/{api}/health", self.handle_health)
            app.router.add_route("*", f"/{api}/services/haproxy/{{tail:.*}}", self.handle_haproxy)

    def on_reboot(self) -> None:
        """haproxy.cfg and the transaction files are on disk: a restart keeps them."""

    def dump_state(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "backends": [
                section_view(b, KINDS["backends"], full=True) for b in self.haproxy.backends.values()
            ],
            "servers": [
                {"backend": b["name"], **s}
                for b in self.haproxy.backends.values()
                for s in b["servers"].values()
            ],
            "frontends": [
                section_view(f, KINDS["frontends"], full=True) for f in self.haproxy.frontends.values()
            ],
            "transactions": [t.as_dict() for t in self.transactions.values()],
            "reloads": len(self.reloads),
            "haproxy_cfg": self.haproxy.render(),
        }

    def fault_error_response(self, status: int) -> web.StreamResponse:
        return json_response({"code": status, "message": "simulated server error"}, status)

    # ----------------------------------------------------------------- auth and plain endpoints
    def authorized(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.credentials.username) and hmac.compare_digest(
            password, self.credentials.password
        )

    @staticmethod
    def unauthorized() -> web.StreamResponse:
        return json_response(
            {"code": 401, "message": "unauthorized"},
            401,
            headers={"WWW-Authenticate": 'Basic realm="dataplaneapi"'},
        )

    async def handle_info(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            return self.unauthorized()
        return json_response(
            {
                "api": {"version": f"v{self.firmware_version} 0000000", "build_date": "2025-01-01T00:00:00Z"},
                "system": {"hostname": self.hostname},
            }
        )

    async def handle_health(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            return self.unauthorized()
        return json_response({"haproxy": "up"})

    # ----------------------------------------------------------------- dispatch
    async def handle_haproxy(self, request: web.Request) -> web.StreamResponse:
        api = request.path.split("/", 2)[1]
        tail = [part for part in request.match_info["tail"].split("/") if part]
        template, route = self._route(api, tail, request.query)
        set_template(request, f"/{api}/services/haproxy/{template}")
        if not self.authorized(request):
            return self.unauthorized()
        try:
            if route is None:
                raise ApiError(404, "path not found")
            body = (
                await request.json() if request.method in ("POST", "PUT") and request.can_read_body else None
            )
            return await route(request, api, body)
        except ApiError as exc:
            return json_response({"code": exc.status, "message": exc.message}, exc.status)
        except ValueError:
            return json_response({"code": 400, "message": "request body is not valid JSON"}, 400)

    def _route(self, api: str, tail: list[str], query: Mapping[str, str]) -> tuple[str, Route | None]:
        """-> (template for /_sim/stats, handler)."""
        if tail[:1] == ["transactions"]:
            if len(tail) == 1:
                return "transactions", self._transactions
            return "transactions/{id}", lambda r, a, b: self._transaction(r, a, tail[1])
        if tail[:1] != ["configuration"] or len(tail) < 2:
            return "{unknown}", None
        rest = tail[1:]
        if rest == ["version"]:
            return "configuration/version", lambda r, a, b: self._version()
        if rest == ["raw"]:
            return "configuration/raw", lambda r, a, b: self._raw()
        if api == "v2" and rest[0] in CHILD_PARENT and len(rest) <= 2:
            # 2.x: children take their parent from the query (`backend=` or `parent_name=`).
            parent = query.get("parent_name") or query.get("backend") or query.get("frontend") or ""
            rest = [CHILD_PARENT[rest[0]], parent, *rest]
        kind = KINDS.get(rest[0])
        if kind is None:
            return "{unknown}", None
        base = f"configuration/{kind.plural}"
        if len(rest) == 1:
            return base, lambda r, a, b: self._sections(r, a, b, kind)
        if len(rest) == 2:
            return base + "/{name}", lambda r, a, b: self._section(r, a, b, kind, rest[1])
        if rest[2] != kind.children or len(rest) > 4:
            return "{unknown}", None
        child_base = f"{base}/{{parent_name}}/{kind.children}"
        if len(rest) == 3:
            return child_base, lambda r, a, b: self._children(r, a, b, kind, rest[1])
        return child_base + "/{name}", lambda r, a, b: self._child(r, a, b, kind, rest[1], rest[3])

    # ----------------------------------------------------------------- reading
    def _reply(self, api: str, data: Any, *, status: int = 200, version: int | None = None) -> web.Response:
        version = self.version if version is None else version
        payload = {"_version": version, "data": data} if api == "v2" else data
        return json_response(payload, status, headers={"Configuration-Version": str(version)})

    def _reading(self, request: web.Request) -> tuple[HaproxyConfig, int]:
        """The configuration a GET sees: the live one, or a transaction's copy."""
        tx_id = request.query.get("transaction_id")
        if not tx_id:
            return self.haproxy, self.version
        tx = self._open_transaction(tx_id)
        return tx.config, tx.version

    async def _version(self) -> web.StreamResponse:
        return json_response(self.version, headers={"Configuration-Version": str(self.version)})

    async def _raw(self) -> web.StreamResponse:
        return web.Response(text=self.haproxy.render(), headers={"Configuration-Version": str(self.version)})

    # ----------------------------------------------------------------- writing
    def _open_transaction(self, tx_id: str) -> Transaction:
        tx = self.transactions.get(tx_id)
        if tx is None:
            raise ApiError(404, f"transaction {tx_id} does not exist")
        if tx.status != "in_progress":
            raise ApiError(406, f"transaction {tx_id} is not in progress (status {tx.status})")
        return tx

    async def _write(
        self, request: web.Request, api: str, change: Callable[[HaproxyConfig], Any], created: bool
    ) -> web.StreamResponse:
        """Apply `change` to a transaction's copy, or to the live configuration under `version`."""
        query = request.query
        tx_id = query.get("transaction_id")
        if tx_id:
            tx = self._open_transaction(tx_id)
            result = change(tx.config)
            return self._write_reply(api, result, 202, tx.version, request.method)
        raw_version = query.get("version")
        if not raw_version:
            raise ApiError(400, "version or transaction not specified")
        if not raw_version.isdigit() or int(raw_version) != self.version:
            raise ApiError(409, f"version mismatch: {raw_version} != {self.version}")
        candidate = self.haproxy.clone()
        result = change(candidate)
        candidate.check()
        status, headers = await self._commit(candidate, force=query.get("force_reload") == "true")
        if status == 200:
            status = 201 if created else 200
        response = self._write_reply(api, result, status, self.version, request.method)
        response.headers.update(headers)
        return response

    def _write_reply(self, api: str, result: Any, status: int, version: int, method: str) -> web.Response:
        if method == "DELETE":
            response = web.Response(status=204 if status != 202 else 202)
            response.headers["Configuration-Version"] = str(version)
            return response
        return self._reply(api, result, status=status, version=version)

    async def _commit(self, config: HaproxyConfig, *, force: bool) -> tuple[int, dict[str, str]]:
        """Make `config` live: a new version and a reload (at once when forced)."""
        if self.reload_hook is not None:
            try:
                await self.reload_hook(config)
            except Exception as exc:
                raise ApiError(400, f"HAProxy refused the configuration: {exc}") from exc
        self.haproxy = config
        self.version += 1
        reload_id = f"{len(self.reloads) + 1:04d}-{uuid.uuid4().hex[:8]}"
        self.reloads.append({"id": reload_id, "status": "succeeded", "version": self.version})
        if force:
            return 200, {}
        return 202, {"Reload-ID": reload_id}

    # ----------------------------------------------------------------- sections
    async def _sections(self, request: web.Request, api: str, body: Any, kind: Kind) -> web.StreamResponse:
        full = request.query.get("full_section") == "true"
        if request.method == "GET":
            config, version = self._reading(request)
            rows = [section_view(s, kind, full=full) for s in sections(config, kind).values()]
            return self._reply(api, rows, version=version)
        if request.method != "POST":
            raise ApiError(405, f"method {request.method} not allowed")
        new = parse_section(kind, body, full=full)

        def create(config: HaproxyConfig) -> Section:
            table = sections(config, kind)
            if new["name"] in table:
                raise ApiError(409, f"{kind.plural[:-1]} {new['name']} already exists")
            table[new["name"]] = new
            return section_view(new, kind, full=full)

        return await self._write(request, api, create, created=True)

    async def _section(
        self, request: web.Request, api: str, body: Any, kind: Kind, name: str
    ) -> web.StreamResponse:
        full = request.query.get("full_section") == "true"
        if request.method == "GET":
            config, version = self._reading(request)
            section = _get(sections(config, kind), name, kind.plural)
            return self._reply(api, section_view(section, kind, full=full), version=version)
        if request.method == "PUT":
            new = parse_section(kind, body, full=full)
            if new["name"] != name:
                raise ApiError(400, f"name {new['name']} in body does not match {name} in the path")

            def replace(config: HaproxyConfig) -> Section:
                table = sections(config, kind)
                old = _get(table, name, kind.plural)
                if not full:  # a section replaced alone keeps its children
                    new[kind.children] = old[kind.children]
                table[name] = new
                return section_view(new, kind, full=full)

            return await self._write(request, api, replace, created=False)
        if request.method == "DELETE":

            def delete(config: HaproxyConfig) -> None:
                table = sections(config, kind)
                _get(table, name, kind.plural)
                del table[name]

            return await self._write(request, api, delete, created=False)
        raise ApiError(405, f"method {request.method} not allowed")

    # ----------------------------------------------------------------- children
    async def _children(
        self, request: web.Request, api: str, body: Any, kind: Kind, parent: str
    ) -> web.StreamResponse:
        if request.method == "GET":
            config, version = self._reading(request)
            owner = _get(sections(config, kind), parent, kind.plural)
            return self._reply(api, list(copy.deepcopy(owner[kind.children]).values()), version=version)
        if request.method != "POST":
            raise ApiError(405, f"method {request.method} not allowed")
        if not isinstance(body, Mapping):
            raise ApiError(400, "request body must be a JSON object")
        new = kind.parse_child(body)

        def create(config: HaproxyConfig) -> Section:
            children = _get(sections(config, kind), parent, kind.plural)[kind.children]
            if new["name"] in children:
                raise ApiError(409, f"{kind.children[:-1]} {new['name']} already exists in {parent}")
            children[new["name"]] = new
            return copy.deepcopy(new)

        return await self._write(request, api, create, created=True)

    async def _child(
        self, request: web.Request, api: str, body: Any, kind: Kind, parent: str, name: str
    ) -> web.StreamResponse:
        if request.method == "GET":
            config, version = self._reading(request)
            children = _get(sections(config, kind), parent, kind.plural)[kind.children]
            return self._reply(api, copy.deepcopy(_get(children, name, kind.children)), version=version)
        if request.method == "PUT":
            if not isinstance(body, Mapping):
                raise ApiError(400, "request body must be a JSON object")
            new = kind.parse_child(body)
            if new["name"] != name:
                raise ApiError(400, f"name {new['name']} in body does not match {name} in the path")

            def replace(config: HaproxyConfig) -> Section:
                children = _get(sections(config, kind), parent, kind.plural)[kind.children]
                _get(children, name, kind.children)
                children[name] = new
                return copy.deepcopy(new)

            return await self._write(request, api, replace, created=False)
        if request.method == "DELETE":

            def delete(config: HaproxyConfig) -> None:
                children = _get(sections(config, kind), parent, kind.plural)[kind.children]
                _get(children, name, kind.children)
                del children[name]

            return await self._write(request, api, delete, created=False)
        raise ApiError(405, f"method {request.method} not allowed")

    # ----------------------------------------------------------------- transactions
    async def _transactions(self, request: web.Request, api: str, body: Any) -> web.StreamResponse:
        if request.method == "GET":
            wanted = request.query.get("status")
            rows = [t.as_dict() for t in self.transactions.values() if wanted in (None, t.status)]
            return json_response(rows)
        if request.method != "POST":
            raise ApiError(405, f"method {request.method} not allowed")
        raw_version = request.query.get("version", "")
        if not raw_version.isdigit():
            raise ApiError(400, "version in query is required")
        if int(raw_version) != self.version:
            raise ApiError(409, f"version mismatch: {raw_version} != {self.version}")
        tx = Transaction(str(uuid.uuid4()), self.version, self.haproxy.clone())
        self.transactions[tx.id] = tx
        return json_response(tx.as_dict(), 201)

    async def _transaction(self, request: web.Request, api: str, tx_id: str) -> web.StreamResponse:
        tx = self.transactions.get(tx_id)
        if tx is None:
            raise ApiError(404, f"transaction {tx_id} does not exist")
        if request.method == "GET":
            return json_response(tx.as_dict())
        if request.method == "DELETE":
            del self.transactions[tx_id]
            return web.Response(status=204)
        if request.method != "PUT":
            raise ApiError(405, f"method {request.method} not allowed")
        if tx.status != "in_progress":
            raise ApiError(406, f"transaction {tx_id} is not in progress (status {tx.status})")
        if tx.version != self.version:
            tx.status = "outdated"
            raise ApiError(406, f"transaction {tx_id} is outdated: version {tx.version} != {self.version}")
        try:
            tx.config.check()
        except ApiError:
            tx.status = "failed"
            raise
        try:
            status, headers = await self._commit(tx.config, force=request.query.get("force_reload") == "true")
        except ApiError:
            tx.status = "failed"
            raise
        tx.status = "success"
        return json_response({**tx.as_dict(), "_version": self.version}, status, headers=headers)


def _get(table: Mapping[str, Section], name: str, what: str) -> Section:
    found = table.get(name)
    if found is None:
        raise ApiError(404, f"{what[:-1]} {name} does not exist")
    return found
