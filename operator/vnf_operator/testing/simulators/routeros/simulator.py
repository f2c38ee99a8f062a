"""MikroTik RouterOS v7: REST under /rest and the console over SSH, one live configuration."""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from typing import Any, ClassVar

from aiohttp import web

from ..base import BaseSimulator, Credentials, SimulatorConfig, json_response
from ..sshd import CliSession
from .cli import RouterOsCliSession
from .rest import RestApi
from .store import RouterOsStore


class RouterOsSimulator(BaseSimulator):
    """RouterOS 7 REST API (www/www-ssl service) plus the SSH console."""

    vendor: ClassVar[str] = "routeros"
    default_firmware: ClassVar[str] = "7.16"
    default_hostname: ClassVar[str] = "MikroTik"
    default_credentials: ClassVar[Credentials] = Credentials(username="admin", password="sim-routeros-pass")
    has_ssh: ClassVar[bool] = True

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self.store = RouterOsStore(identity=self.hostname)
        self.boot_time = time.monotonic()
        self._rest = RestApi(self)

    def setup_routes(self, app: web.Application) -> None:
        self._rest.setup(app)

    def on_reboot(self) -> None:
        # Every change is already persistent; only the uptime starts again.
        self.boot_time = time.monotonic()

    def create_cli_session(self, username: str) -> CliSession:
        return RouterOsCliSession(self, username.split("+", 1)[0])

    def check_ssh_password(self, username: str, password: str) -> bool:
        # "admin+ct80w" style suffixes select console options, not another user.
        return self._credentials_match(username.split("+", 1)[0], password)

    def _credentials_match(self, username: str, password: str) -> bool:
        return hmac.compare_digest(username, self.credentials.username) and hmac.compare_digest(
            password, self.credentials.password
        )

    def check_basic_auth(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return self._credentials_match(username, password)

    def fault_error_response(self, status: int) -> web.StreamResponse:
        return json_response({"error": status, "message": "Internal Server Error"}, status)

    def system_menu(self, tail: str) -> dict[str, Any] | None:
        """Singleton menus used for health checks."""
        path = tail.strip("/").replace("/", " ")
        if path == "system identity":
            return {"name": self.store.identity}
        if path == "system resource":
            uptime = int(time.monotonic() - self.boot_time)
            return {
                "architecture-name": "x86_64",
                "board-name": "CHR",
                "platform": "MikroTik",
                "uptime": f"{uptime // 3600}h{uptime % 3600 // 60}m{uptime % 60}s",
                "version": f"{self.firmware_version} (stable)",
                "cpu-count": "2",
                "free-memory": "805306368",
                "total-memory": "1073741824",
            }
        return None

    def dump_state(self) -> dict[str, Any]:
        return {"identity": self.store.identity, "menus": self.store.snapshot()}
