"""pfSense with the pfrest REST API v2: positional ids, trackers, staged changes and apply."""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from ..base import BaseSimulator, Credentials, SimulatorConfig, json_response, set_template
from ..hashing import hash_secret, verify_secret
from .models import (
    FIREWALL_RULE,
    MODELS,
    OUTBOUND_MAPPING,
    PORT_FORWARD,
    STATIC_ROUTE,
    ApiError,
    Context,
    Model,
    Record,
    coerce,
    invalid_choice,
    required,
    validate,
)

STATUS_TEXT = {
    200: "ok",
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    409: "conflict",
    415: "unsupported media type",
    500: "server error",
}
SINGULAR: dict[str, Model] = {
    "/api/v2/firewall/rule": FIREWALL_RULE,
    "/api/v2/firewall/nat/port_forward": PORT_FORWARD,
    "/api/v2/firewall/nat/outbound/mapping": OUTBOUND_MAPPING,
    "/api/v2/routing/static_route": STATIC_ROUTE,
}
PLURAL: dict[str, Model] = {
    "/api/v2/firewall/rules": FIREWALL_RULE,
    "/api/v2/firewall/nat/port_forwards": PORT_FORWARD,
    "/api/v2/firewall/nat/outbound/mappings": OUTBOUND_MAPPING,
    "/api/v2/routing/static_routes": STATIC_ROUTE,
}
APPLY: dict[str, str] = {"/api/v2/firewall/apply": "firewall", "/api/v2/routing/apply": "routing"}
CONTROL_PARAMS = ("apply", "async", "dry_run", "placement", "append", "remove")
OUTBOUND_MODES = ("automatic", "hybrid", "advanced", "disabled")


def envelope(data: Any, code: int = 200, response_id: str = "SUCCESS", message: str = "") -> web.Response:
    body = {
        "code": code,
        "status": STATUS_TEXT.get(code, "error"),
        "response_id": response_id,
        "message": message,
        "data": data,
    }
    return json_response(body, status=code)


def error_envelope(exc: ApiError) -> web.Response:
    return envelope([], exc.code, exc.response_id, exc.message)


class PfsenseSimulator(BaseSimulator):
    """pfSense CE with the pfrest (RESTAPI) package v2."""

    vendor: ClassVar[str] = "pfsense"
    default_firmware: ClassVar[str] = "2.7.2"
    default_hostname: ClassVar[str] = "pfSense"
    default_credentials: ClassVar[Credentials] = Credentials(
        username="admin", password="sim-pfsense-pass", api_key="sim-pfsense-api-key"
    )

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        factory = self.config.factory_defaults
        self.admin_password_hash = hash_secret("pfsense" if factory else self.credentials.password)
        self.api_keys: list[str] = [] if factory else [hash_secret(self.credentials.api_key)]
        self.jwt_tokens: set[str] = set()
        self.interfaces = {"wan": "WAN", "lan": "LAN", "opt1": "DMZ"}
        self.gateways = {"WAN_GW": "203.0.113.1", "LAN_GW": "192.168.1.254"}
        self.config_arrays: dict[str, list[Record]] = {model.name: [] for model in MODELS}
        self.running: dict[str, list[Record]] = {model.name: [] for model in MODELS}
        self.pending: set[str] = set()
        self.outbound_mode = "automatic"
        self._last_tracker = 0

    @property
    def context(self) -> Context:
        return Context(interfaces=self.interfaces, gateways=self.gateways)

    # ------------------------------------------------------------------ lifecycle
    def setup_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/v2/{tail:.*}", self.handle)

    def on_reboot(self) -> None:
        # config.xml is written on every change; boot loads the ruleset and routes from it.
        self.running = copy.deepcopy(self.config_arrays)
        self.pending.clear()
        self.jwt_tokens.clear()

    def fault_error_response(self, status: int) -> web.StreamResponse:
        return envelope([], status, "SERVER_ERROR", "simulated fault")

    def rate_limited_response(self, retry_after_s: int) -> web.StreamResponse:
        response = envelope([], 429, "TOO_MANY_REQUESTS", "Too many requests.")
        response.headers["Retry-After"] = str(retry_after_s)
        return response

    # ------------------------------------------------------------------ auth
    def _basic_user(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(username, self.credentials.username) and verify_secret(
            password, self.admin_password_hash
        )

    def authenticated(self, request: web.Request) -> bool:
        api_key = request.headers.get("X-API-Key")
        if api_key is not None:
            return any(verify_secret(api_key, stored) for stored in self.api_keys)
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer":
            return any(hmac.compare_digest(token, known) for known in self.jwt_tokens)
        return self._basic_user(header)

    # ------------------------------------------------------------------ dispatch
    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/")
        set_template(request, path if self._known(path) else "/api/v2/{unknown}")
        if not self.authenticated(request):
            return envelope([], 401, "AUTH_AUTHENTICATION_FAILED", "Authentication failed.")
        try:
            params = await self._params(request)
            return await self._route(request.method, path, params, request)
        except ApiError as exc:
            return error_envelope(exc)

    @staticmethod
    def _known(path: str) -> bool:
        return path in SINGULAR or path in PLURAL or path in APPLY or path in EXTRA_PATHS

    @staticmethod
    async def _params(request: web.Request) -> Any:
        """Query string for GET/DELETE, JSON (or form) body otherwise, as pfrest reads them."""
        if request.method in ("GET", "DELETE") and not request.can_read_body:
            return dict(request.query)
        if request.content_type == "application/json":
            try:
                return json.loads(await request.text() or "{}")
            except ValueError:
                raise ApiError(400, "REQUEST_BODY_INVALID_JSON", "Request body is not valid JSON.") from None
        if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            return {key: str(value) for key, value in (await request.post()).items()}
        if request.method in ("GET", "DELETE"):
            return dict(request.query)
        raise ApiError(415, "CONTENT_TYPE_NOT_SUPPORTED", "The request's Content-Type is not supported.")

    async def _route(self, method: str, path: str, params: Any, request: web.Request) -> web.Response:
        if path in SINGULAR:
            return self._singular(method, SINGULAR[path], _as_object(params))
        if path in PLURAL:
            return self._plural(method, PLURAL[path], params)
        if path in APPLY:
            return self._apply(method, APPLY[path])
        handler = EXTRA_PATHS.get(path)
        if handler is None:
            raise ApiError(404, "ENDPOINT_NOT_FOUND", "The requested endpoint does not exist.")
        return handler(self, method, _as_object(params))

    # ------------------------------------------------------------------ singular endpoints
    def _singular(self, method: str, model: Model, params: dict[str, Any]) -> web.Response:
        items = self.config_arrays[model.name]
        if method == "GET":
            index = self._index(model, params)
            return envelope(self._render(model, index))
        if method == "POST":
            record = self._build(model, {}, params)
            placement = params.get("placement")
            position = len(items) if placement is None else max(0, min(int(placement), len(items)))
            if model.tracked:
                record["tracker"] = self._next_tracker()
            if model.timestamps:
                record["created_time"] = int(time.time())
                record["created_by"] = f"{self.credentials.username}@127.0.0.1 (API)"
            if not params.get("dry_run"):
                items.insert(position, record)
                self._changed(model, params)
            return envelope({"id": position, **record})
        if method == "PATCH":
            index = self._index(model, params)
            record = self._build(model, items[index], params)
            if model.timestamps:
                record["updated_time"] = int(time.time())
                record["updated_by"] = f"{self.credentials.username}@127.0.0.1 (API)"
            if params.get("dry_run"):
                return envelope({"id": index, **record})
            items[index] = record
            if params.get("placement") is not None:
                items.pop(index)
                index = max(0, min(int(params["placement"]), len(items)))
                items.insert(index, record)
            self._changed(model, params)
            return envelope({"id": index, **record})
        if method == "DELETE":
            index = self._index(model, params)
            removed = items.pop(index)
            self._changed(model, params)
            return envelope({"id": index, **removed})
        raise ApiError(405, "ENDPOINT_METHOD_NOT_ALLOWED", f"Method `{method}` is not allowed.")

    def _index(self, model: Model, params: Mapping[str, Any]) -> int:
        raw = params.get("id")
        if raw is None or raw == "":
            raise required("id")
        try:
            index = int(raw)
        except (TypeError, ValueError):
            raise ApiError(400, "FIELD_INVALID_TYPE", "Field `id` must be of type `integer`.") from None
        if not 0 <= index < len(self.config_arrays[model.name]):
            raise ApiError(404, "MODEL_OBJECT_NOT_FOUND", f"Object with ID `{index}` does not exist.")
        return index

    def _build(self, model: Model, current: Record, params: Mapping[str, Any]) -> Record:
        record: Record = (
            copy.deepcopy(current)
            if current
            else {name: copy.deepcopy(spec.default) for name, spec in model.fields.items()}
        )
        for name, value in params.items():
            if name in CONTROL_PARAMS or name == "id":
                continue
            spec = model.fields.get(name)
            if spec is None or spec.read_only:
                continue  # pfrest ignores fields the model does not define
            record[name] = coerce(model, name, value, self.context)
        validate(model, record, self.context)
        return record

    def _next_tracker(self) -> int:
        self._last_tracker = max(int(time.time()), self._last_tracker + 1)
        return self._last_tracker

    def _changed(self, model: Model, params: Mapping[str, Any]) -> None:
        self.pending.add(model.subsystem)
        if params.get("apply") is True:
            self._activate(model.apply_group)

    def _render(self, model: Model, index: int) -> Record:
        return {"id": index, **self.config_arrays[model.name][index]}

    # ------------------------------------------------------------------ plural endpoints
    def _plural(self, method: str, model: Model, params: Any) -> web.Response:
        items = self.config_arrays[model.name]
        if method == "GET":
            query = _as_object(params)
            selected = [self._render(model, index) for index in range(len(items))]
            selected = _filter(selected, query)
            selected = _sort(selected, query)
            offset = int(query.get("offset", 0) or 0)
            limit = int(query.get("limit", 0) or 0)
            selected = selected[offset : offset + limit] if limit else selected[offset:]
            return envelope(selected)
        if method == "PUT":
            if not isinstance(params, list):
                raise ApiError(400, "REQUEST_BODY_MUST_BE_ARRAY", "Replacing all objects requires an array.")
            records = [self._build(model, {}, _as_object(item)) for item in params]
            for record in records:
                if model.tracked:
                    record["tracker"] = self._next_tracker()
                if model.timestamps:
                    record["created_time"] = int(time.time())
                    record["created_by"] = f"{self.credentials.username}@127.0.0.1 (API)"
            self.config_arrays[model.name] = records
            self._changed(model, {})
            return envelope([{"id": index, **record} for index, record in enumerate(records)])
        if method == "DELETE":
            query = _as_object(params)
            everything = str(query.get("all", "")).lower() == "true"
            if not everything and not [key for key in query if key not in ("limit", "offset")]:
                raise ApiError(
                    400, "MODEL_DELETE_MANY_REQUIRES_QUERY_OR_ALL", "A query or `all` is required."
                )
            rendered = [self._render(model, index) for index in range(len(items))]
            doomed = rendered if everything else _filter(rendered, query)
            doomed_ids = {record["id"] for record in doomed}
            self.config_arrays[model.name] = [
                item for index, item in enumerate(items) if index not in doomed_ids
            ]
            if doomed:
                self._changed(model, {})
            return envelope(doomed)
        raise ApiError(405, "ENDPOINT_METHOD_NOT_ALLOWED", f"Method `{method}` is not allowed.")

    # ------------------------------------------------------------------ apply
    def _pending_in(self, group: str) -> list[str]:
        subsystems = {model.subsystem for model in MODELS if model.apply_group == group}
        return sorted(self.pending & subsystems)

    def _activate(self, group: str) -> None:
        for model in MODELS:
            if model.apply_group == group:
                self.running[model.name] = copy.deepcopy(self.config_arrays[model.name])
                self.pending.discard(model.subsystem)

    def _apply(self, method: str, group: str) -> web.Response:
        if method == "POST":
            self._activate(group)
        elif method != "GET":
            raise ApiError(405, "ENDPOINT_METHOD_NOT_ALLOWED", f"Method `{method}` is not allowed.")
        pending = self._pending_in(group)
        return envelope({"applied": not pending, "pending_subsystems": pending})

    # ------------------------------------------------------------------ other endpoints
    def outbound_mode_endpoint(self, method: str, params: dict[str, Any]) -> web.Response:
        if method == "PATCH":
            mode = params.get("mode")
            if mode not in OUTBOUND_MODES:
                raise invalid_choice("mode", OUTBOUND_MODES)
            self.outbound_mode = str(mode)
            self.pending.add("natconf")
        elif method != "GET":
            raise ApiError(405, "ENDPOINT_METHOD_NOT_ALLOWED", f"Method `{method}` is not allowed.")
        return envelope({"mode": self.outbound_mode})

    def gateways_endpoint(self, method: str, params: dict[str, Any]) -> web.Response:
        rows = [
            {
                "id": index,
                "name": name,
                "interface": "wan" if name.startswith("WAN") else "lan",
                "ipprotocol": "inet6" if ":" in address else "inet",
                "gateway": address,
                "monitor_disable": False,
                "disabled": False,
            }
            for index, (name, address) in enumerate(self.gateways.items())
        ]
        return envelope(rows)

    def interfaces_endpoint(self, method: str, params: dict[str, Any]) -> web.Response:
        return envelope(
            [
                {"id": name, "if": f"vtnet{index}", "descr": descr, "enable": True}
                for index, (name, descr) in enumerate(self.interfaces.items())
            ]
        )

    def version_endpoint(self, method: str, params: dict[str, Any]) -> web.Response:
        return envelope(
            {
                "version": f"{self.firmware_version}-RELEASE",
                "base": self.firmware_version,
                "patch": "0",
                "buildtime": "Fri Jan 1 00:00:00 UTC 2025",
            }
        )

    def status_endpoint(self, method: str, params: dict[str, Any]) -> web.Response:
        return envelope({"platform": "pfSense", "cpu_count": 2, "mem_usage": 0.12, "uptime": "1 Day"})

    def create_key_endpoint(self, method: str, params: dict[str, Any]) -> web.Response:
        if method != "POST":
            raise ApiError(405, "ENDPOINT_METHOD_NOT_ALLOWED", f"Method `{method}` is not allowed.")
        key = secrets.token_hex(24)
        self.api_keys.append(hash_secret(key))
        return envelope({"id": len(self.api_keys) - 1, "descr": str(params.get("descr", "")), "key": key})

    def jwt_endpoint(self, method: str, params: dict[str, Any]) -> web.Response:
        if method != "POST":
            raise ApiError(405, "ENDPOINT_METHOD_NOT_ALLOWED", f"Method `{method}` is not allowed.")
        token = "eyJ" + secrets.token_urlsafe(48)
        self.jwt_tokens.add(token)
        return envelope({"token": token})

    # ------------------------------------------------------------------ state dump
    def dump_state(self) -> dict[str, Any]:
        return {
            "config": {
                name: [{"id": i, **r} for i, r in enumerate(items)]
                for name, items in self.config_arrays.items()
            },
            "running": {
                name: [{"id": i, **r} for i, r in enumerate(items)] for name, items in self.running.items()
            },
            "pending_subsystems": sorted(self.pending),
            "outbound_mode": self.outbound_mode,
            "api_keys": len(self.api_keys),
        }


EXTRA_PATHS = {
    "/api/v2/firewall/nat/outbound/mode": PfsenseSimulator.outbound_mode_endpoint,
    "/api/v2/routing/gateways": PfsenseSimulator.gateways_endpoint,
    "/api/v2/interfaces": PfsenseSimulator.interfaces_endpoint,
    "/api/v2/system/version": PfsenseSimulator.version_endpoint,
    "/api/v2/status/system": PfsenseSimulator.status_endpoint,
    "/api/v2/auth/key": PfsenseSimulator.create_key_endpoint,
    "/api/v2/auth/jwt": PfsenseSimulator.jwt_endpoint,
}


def _as_object(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise ApiError(400, "REQUEST_BODY_MUST_BE_OBJECT", "Request data must be an object.")
    return params


QUERY_RESERVED = ("limit", "offset", "sort_by", "sort_order", "reverse", "all")


def _matches(value: Any, operator: str, wanted: str) -> bool:
    text = "" if value is None else (json.dumps(value) if isinstance(value, bool) else str(value))
    if isinstance(value, list):
        text = ",".join(str(item) for item in value)
    if operator == "exact":
        return text == wanted
    if operator == "contains":
        return wanted in text
    if operator == "startswith":
        return text.startswith(wanted)
    if operator == "endswith":
        return text.endswith(wanted)
    if operator == "in":
        return text in wanted.split(",") or (isinstance(value, list) and wanted in value)
    if operator == "regex":
        return re.search(wanted, text) is not None
    try:
        left, right = float(text), float(wanted)
    except ValueError:
        return False
    return {"lt": left < right, "lte": left <= right, "gt": left > right, "gte": left >= right}.get(
        operator, False
    )


def _filter(records: list[Record], query: Mapping[str, Any]) -> list[Record]:
    conditions = []
    for key, wanted in query.items():
        if key in QUERY_RESERVED:
            continue
        name, _, operator = key.partition("__")
        conditions.append((name, operator or "exact", str(wanted)))
    return [r for r in records if all(_matches(r.get(name), op, wanted) for name, op, wanted in conditions)]


def _sort(records: list[Record], query: Mapping[str, Any]) -> list[Record]:
    sort_by = query.get("sort_by")
    if sort_by:
        descending = str(query.get("sort_order", "SORT_ASC")).upper() == "SORT_DESC"
        records = sorted(records, key=lambda r: str(r.get(str(sort_by), "")), reverse=descending)
    if str(query.get("reverse", "")).lower() == "true":
        records = list(reversed(records))
    return records
