"""The OPNsense appliance: config.xml that every write saves, a running set that apply rebuilds."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from typing import Any, ClassVar

from aiohttp import web

from ..base import BaseSimulator, Credentials, SimulatorConfig, json_response, set_template
from ..hashing import hash_secret, verify_secret
from .api import (
    Action,
    ApiCall,
    Controller,
    InvalidBody,
    UserException,
    action_key,
    authentication_failed,
    camelize,
    controller_index,
    invalid_json,
    not_found,
    parse_php_pairs,
    read_body,
    result_response,
    template_for,
    user_exception_response,
)
from .frr import BgpNeighborController
from .mvc import Record, natural_key, new_uuid
from .routes import GatewaySettingsController, RoutesController
from .rules import V26_1, DNatRuleController, FilterRuleController, RuleController
from .state import ApiKey, OpnsenseConfig, Running, User
from .system import CoreControllers, UserController

MINIMUM_VERSION = (24, 7)
ROLLBACK_TIMEOUT_S = 60.0


def parse_version(text: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", text)
    if match is None:
        raise ValueError(f"not an OPNsense version: {text!r}")
    return int(match.group(1)), int(match.group(2))


class OpnsenseSimulator(BaseSimulator):
    """OPNsense core MVC API (firewall, NAT, routes, backup, user bootstrap)."""

    vendor: ClassVar[str] = "opnsense"
    default_firmware: ClassVar[str] = "25.7"
    default_hostname: ClassVar[str] = "OPNsense"
    default_credentials: ClassVar[Credentials] = Credentials(
        username="root",
        password="opnsense",
        api_key="sim-opnsense-api-key",
        api_secret="sim-opnsense-api-secret",
    )

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self.version = parse_version(self.firmware_version)
        if self.version < MINIMUM_VERSION:
            raise ValueError("the simulator models OPNsense 24.7 and later")
        self.config_xml = OpnsenseConfig(routes_use_enabled=self.version >= (26, 7), hostname=self.hostname)
        self.running = Running()
        self.filter_dirty = False
        self.routes_dirty = False
        self.route_deletions: dict[str, str] = {}
        self.savepoints: dict[str, dict[str, dict[str, Record]]] = {}
        self.rollback_log: list[dict[str, str]] = []
        self._rollback: tuple[str, asyncio.TimerHandle] | None = None
        # Firmware (docs/simulators.md): what the mirror offers, how long the upgrade reboot keeps the
        # device unreachable, and a fault knob: the upgrade aborts, the old version boots with a
        # damaged configuration (firmware status answers 500) until a backup is restored.
        self.firmware_available: str | None = None
        self.upgrade_reboot_s = 1.0
        self.upgrade_breaks = False
        self.config_damaged = False
        self.upgrading = False
        self._install(factory=self.config.factory_defaults)
        self.frr = BgpNeighborController(self)
        self._controllers = controller_index(self._build_controllers())

    # ------------------------------------------------------------------ boot and reboot
    def _install(self, factory: bool) -> None:
        """A fresh install: root with the console password and, unless factory, one API key."""
        root = User(uuid=new_uuid(), name="root", password_hash=hash_secret(self.credentials.password))
        if not factory:
            root.apikeys.append(
                ApiKey(key=self.credentials.api_key, secret_hash=hash_secret(self.credentials.api_secret))
            )
        self.config_xml.users = {root.uuid: root}
        self.running = self.config_xml.build_running()

    def on_reboot(self) -> None:
        # config.xml survives; the boot sequence loads pf and routes from it; /tmp is wiped.
        self._cancel_rollback_timer()
        self.running = self.config_xml.build_running()
        self.filter_dirty = False
        self.routes_dirty = False
        self.route_deletions.clear()
        self.frr.apply()

    async def on_stop(self) -> None:
        self._cancel_rollback_timer()

    async def reboot_soon(self) -> None:
        await asyncio.sleep(0.05)
        await self.restart()

    async def upgrade_and_reboot(self) -> None:
        """`firmware/update`: install what the mirror offers, then reboot; the listeners stay down
        for `upgrade_reboot_s` (connections are refused: the device is unreachable)."""
        try:
            await asyncio.sleep(0.2)
            self._stopping.set()
            await self._stop_listeners()
            await asyncio.sleep(self.upgrade_reboot_s * self.config.time_scale)
            if self.upgrade_breaks:
                self.config_damaged = True
            elif self.firmware_available:
                self.firmware_version = self.firmware_available
                self.version = parse_version(self.firmware_version)
            self._stopping = asyncio.Event()
            self.on_reboot()
            await self._start_listeners()
        finally:
            self.upgrading = False

    # ------------------------------------------------------------------ controllers
    def _build_controllers(self) -> list[Controller]:
        filter_rules = FilterRuleController(self, "filter", lambda: self.config_xml.filter)
        source_nat = RuleController(self, "source_nat", lambda: self.config_xml.snat)
        d_nat = DNatRuleController(self, "d_nat", lambda: self.config_xml.dnat, since=V26_1)
        return [
            filter_rules.controller(),
            source_nat.controller(),
            d_nat.controller(),
            RoutesController(self).controller(),
            GatewaySettingsController(self).controller(),
            *CoreControllers(self).controllers(),
            UserController(self).controller(),
            *self.frr.controllers(),
        ]

    def setup_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{tail:.*}", self.handle_api)

    def fault_error_response(self, status: int) -> web.StreamResponse:
        return json_response({"errorMessage": "simulated fault", "errorTitle": "An error occurred"}, status)

    def _resolve(self, path: str) -> tuple[Controller, Action, list[str]] | None:
        segments = path.split("/")[2:]
        while segments and segments[-1] == "":
            segments.pop()
        if len(segments) < 3:
            return None
        module, controller_name, action_name, *params = segments
        controller = self._controllers.get((module, camelize(controller_name)))
        if controller is None or (controller.since is not None and self.version < controller.since):
            return None
        action = controller.actions.get(action_key(action_name))
        if action is None or not action.available(self.version):
            return None
        return controller, action, params

    def authenticate(self, request: web.Request, action: Action) -> str | None:
        """API key + secret as Basic auth; root's password only on bootstrap actions."""
        header = request.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            key, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        found = self.config_xml.user_by_api_key(key)
        if found is not None and verify_secret(secret, found[1].secret_hash):
            return found[0].name
        if action.password_login:
            user = self.config_xml.user_by_name(key)
            if user is not None and verify_secret(secret, user.password_hash):
                return user.name
        return None

    async def handle_api(self, request: web.Request) -> web.StreamResponse:
        resolved = self._resolve(request.path)
        if resolved is None:
            set_template(request, "/api/{unknown}")
            return not_found()
        controller, action, params = resolved
        set_template(request, template_for(controller, action, params))
        username = self.authenticate(request, action)
        if username is None:
            return authentication_failed()
        try:
            post, files = await read_body(request)
        except InvalidBody:
            return invalid_json()
        call = ApiCall(
            method=request.method,
            query=parse_php_pairs(request.query.items()),
            post=post,
            params=params,
            username=username,
            remote=request.remote or "127.0.0.1",
            files=files,
        )
        try:
            result = await action.handler(call)
        except UserException as exc:
            return user_exception_response(exc)
        return result_response(result)

    # ------------------------------------------------------------------ used by controllers
    @staticmethod
    def new_uuid() -> str:
        return new_uuid()

    def save_config(self, call: ApiCall, description: str, subsystem: str | None) -> None:
        self.config_xml.save(f"{call.username}@{call.remote}", description)
        if subsystem == "filter":
            self.filter_dirty = True
        elif subsystem == "routes":
            self.routes_dirty = True

    def apply_filter(self) -> None:
        running = self.config_xml.build_running()
        self.running.filter_rules = running.filter_rules
        self.running.snat_rules = running.snat_rules
        self.running.dnat_rules = running.dnat_rules
        self.filter_dirty = False

    def apply_routes(self) -> None:
        self.running.routes = self.config_xml.build_running().routes
        self.route_deletions.clear()
        self.routes_dirty = False

    def restore_config(self, data: bytes) -> None:
        self.config_xml.load_xml(data)
        self.config_damaged = False
        self.filter_dirty = True
        self.routes_dirty = True
        self.frr.dirty = True

    def arm_rollback(self, revision: str) -> None:
        """apply/{revision}: unless cancelled, revert to the savepoint after 60 s."""
        if revision not in self.savepoints:
            return
        self._cancel_rollback_timer()
        delay = ROLLBACK_TIMEOUT_S * self.config.time_scale
        handle = asyncio.get_running_loop().call_later(delay, self._auto_revert, revision)
        self._rollback = (revision, handle)

    def cancel_rollback(self, revision: str) -> None:
        if self._rollback is not None and self._rollback[0] == revision:
            self._cancel_rollback_timer()

    def revert_to_savepoint(self, revision: str) -> bool:
        snapshot = self.savepoints.get(revision)
        if snapshot is None:
            return False
        self._cancel_rollback_timer()
        self.config_xml.restore_filter_snapshot(snapshot)
        self.config_xml.save("root@127.0.0.1", f"reverted to savepoint {revision}")
        self.apply_filter()
        return True

    def _auto_revert(self, revision: str) -> None:
        self._rollback = None
        if self.revert_to_savepoint(revision):
            self.rollback_log.append({"revision": revision, "reason": "timeout"})

    def _cancel_rollback_timer(self) -> None:
        if self._rollback is not None:
            self._rollback[1].cancel()
            self._rollback = None

    # ------------------------------------------------------------------ state dump
    @staticmethod
    def _listing(records: dict[str, Record]) -> list[dict[str, str]]:
        return [{"uuid": key, **value} for key, value in records.items()]

    @staticmethod
    def _evaluation_order(records: dict[str, Record], computed: Any) -> list[dict[str, str]]:
        rows = [{"uuid": key, **value, **computed(value)} for key, value in records.items()]
        return sorted(rows, key=lambda row: natural_key(row.get("sort_order") or row.get("sequence", "")))

    def dump_state(self) -> dict[str, Any]:
        config = self.config_xml
        ctx = config.context
        return {
            "config": {
                "revision": dict(config.revision),
                "filter_rules": self._listing(config.filter.records),
                "snat_rules": self._listing(config.snat.records),
                "dnat_rules": self._listing(config.dnat.records),
                "routes": self._listing(config.routes.records),
                "bgp_neighbors": self._listing(config.bgp_neighbors.records),
                "interfaces": dict(config.interfaces),
                "gateways": dict(config.gateways),
                "users": [
                    {"uuid": user.uuid, "name": user.name, "apikeys": [key.key for key in user.apikeys]}
                    for user in config.users.values()
                ],
            },
            "running": {
                "filter_rules": self._evaluation_order(
                    self.running.filter_rules, lambda r: config.filter.computed(r, ctx)
                ),
                "snat_rules": self._evaluation_order(self.running.snat_rules, lambda r: {}),
                "dnat_rules": self._evaluation_order(self.running.dnat_rules, lambda r: {}),
                "routes": self._listing(self.running.routes),
                "bgp_neighbors": self._listing(self.frr.running),
            },
            "pending": {
                "filter": self.filter_dirty,
                "routes": self.routes_dirty,
                "bgp": self.frr.dirty,
                "route_deletions": sorted(self.route_deletions.values()),
            },
            "rollback": {
                "savepoints": sorted(self.savepoints),
                "armed": self._rollback[0] if self._rollback else None,
                "log": list(self.rollback_log),
            },
        }
