"""Cisco IOS-XE: one running-config edited live by the CLI (SSH) and RESTCONF; startup on save."""

from __future__ import annotations

import base64
import binascii
import copy
import hmac
from typing import Any, ClassVar

from aiohttp import web

from ..base import BaseSimulator, Credentials, SimulatorConfig
from ..sshd import CliSession
from .cli import IosCliSession
from .restconf import Restconf, RestconfError, errors_body
from .state import IosConfig
from .yang import native_json


class IosXeSimulator(BaseSimulator):
    """IOS-XE 17.x (C8000V): SSH CLI plus RESTCONF on the same configuration."""

    vendor: ClassVar[str] = "iosxe"
    default_firmware: ClassVar[str] = "17.9.4a"
    default_hostname: ClassVar[str] = "Router"
    default_credentials: ClassVar[Credentials] = Credentials(username="admin", password="sim-iosxe-pass")
    has_ssh: ClassVar[bool] = True

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self.startup: IosConfig = IosConfig.factory(self.hostname)
        self.running: IosConfig = copy.deepcopy(self.startup)
        self._restconf = Restconf(self)

    def setup_routes(self, app: web.Application) -> None:
        self._restconf.setup(app)

    def on_reboot(self) -> None:
        # Anything not saved with "write memory" or save-config is gone.
        self.running = copy.deepcopy(self.startup)

    def save(self) -> None:
        self.startup = copy.deepcopy(self.running)

    def create_cli_session(self, username: str) -> CliSession:
        return IosCliSession(self, username)

    def check_basic_auth(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(username, self.credentials.username) and hmac.compare_digest(
            password, self.credentials.password
        )

    def fault_error_response(self, status: int) -> web.StreamResponse:
        body = errors_body(RestconfError(status, "operation-failed", "simulated fault"))
        return web.json_response(body, status=status, content_type="application/yang-data+json")

    def dump_state(self) -> dict[str, Any]:
        return {
            "running": native_json(self.running),
            "startup": native_json(self.startup),
            "unsaved_changes": native_json(self.running) != native_json(self.startup),
        }
