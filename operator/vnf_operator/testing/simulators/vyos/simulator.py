"""VyOS 1.4+: a running (committed) config, saved files, commit-confirm, HTTP API and vbash CLI."""

from __future__ import annotations

import asyncio
import copy
import re
from typing import Any, ClassVar

from aiohttp import web

from ..base import BaseSimulator, Credentials, SimulatorConfig, json_response
from ..hashing import hash_secret, verify_secret
from ..sshd import CliSession
from .api import VyosApi
from .cli import VyosCliSession
from .commit import verify
from .config import ConfigError, Tree, get_node, set_commands

BOOT_CONFIG = "/config/config.boot"
MINUTE_S = 60.0


def _version_tuple(text: str) -> tuple[int, int]:
    match = re.match(r"^(\d+)\.(\d+)", text)
    if match is None:
        raise ValueError(f"not a VyOS version: {text!r}")
    return int(match.group(1)), int(match.group(2))


class VyosSimulator(BaseSimulator):
    """VyOS HTTP API (/retrieve, /configure, /config-file, /show) and the configure-mode CLI."""

    vendor: ClassVar[str] = "vyos"
    default_firmware: ClassVar[str] = "1.4.3"
    default_hostname: ClassVar[str] = "vyos"
    default_credentials: ClassVar[Credentials] = Credentials(
        username="vyos", password="sim-vyos-pass", api_key="sim-vyos-api-key"
    )
    has_ssh: ClassVar[bool] = True

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        super().__init__(config)
        self.version = _version_tuple(self.firmware_version)
        if self.version < (1, 4):
            raise ValueError("the simulator models VyOS 1.4 and later")
        self.files: dict[str, Tree] = {BOOT_CONFIG: self._installed_config(self.config.factory_defaults)}
        self.running: Tree = copy.deepcopy(self.files[BOOT_CONFIG])
        self.lock = asyncio.Lock()  # the API server serialises config sessions
        self.events: list[dict[str, str]] = []
        self._confirm: tuple[Tree, asyncio.TimerHandle] | None = None
        self._api = VyosApi(self)

    def _installed_config(self, factory: bool) -> Tree:
        """What ``install image`` leaves behind (plus an API key unless factory-fresh)."""
        password = "vyos" if factory else self.credentials.password
        tree: Tree = {
            "interfaces": {
                "ethernet": {
                    "eth0": {"address": ["dhcp"], "hw-id": "0c:00:00:00:00:00"},
                    "eth1": {"hw-id": "0c:00:00:00:00:01"},
                },
                "loopback": {"lo": {}},
            },
            "service": {"ssh": {"port": "22"}},
            "system": {
                "host-name": self.hostname,
                "login": {
                    "user": {"vyos": {"authentication": {"encrypted-password": hash_secret(password)}}}
                },
            },
        }
        if not factory:
            api: dict[str, Any] = {"keys": {"id": {"sim": {"key": self.credentials.api_key}}}}
            if self.version >= (1, 5):
                api["rest"] = {}
            tree["service"]["https"] = {"api": api}
        return tree

    # ------------------------------------------------------------------ lifecycle
    def setup_routes(self, app: web.Application) -> None:
        self._api.setup(app)

    def on_reboot(self) -> None:
        # Boot loads config.boot: committed-but-unsaved changes are gone.
        self._cancel_confirm()
        self.running = copy.deepcopy(self.files[BOOT_CONFIG])

    async def on_stop(self) -> None:
        self._cancel_confirm()

    def create_cli_session(self, username: str) -> CliSession:
        return VyosCliSession(self, username)

    def check_ssh_password(self, username: str, password: str) -> bool:
        try:
            stored = get_node(self.running, ["system", "login", "user", username, "authentication"])
        except KeyError:
            return False
        return isinstance(stored, dict) and verify_secret(password, str(stored.get("encrypted-password", "")))

    def fault_error_response(self, status: int) -> web.StreamResponse:
        error = "An internal error occured. Check the logs for details."
        return json_response({"success": False, "error": error, "data": None}, status)

    # ------------------------------------------------------------------ config operations
    @property
    def host_name(self) -> str:
        return str(self.running.get("system", {}).get("host-name", self.hostname))

    def api_keys(self) -> list[str]:
        keys = self.running.get("service", {}).get("https", {}).get("api", {}).get("keys", {}).get("id", {})
        return [str(conf["key"]) for conf in keys.values() if isinstance(conf, dict) and "key" in conf]

    def strict_api(self) -> bool:
        return "strict" in self.running.get("service", {}).get("https", {}).get("api", {})

    @staticmethod
    def _encrypt_passwords(tree: Tree) -> None:
        """VyOS replaces plaintext-password with encrypted-password during commit."""
        users = tree.get("system", {}).get("login", {}).get("user", {})
        for user in users.values():
            auth = user.get("authentication", {}) if isinstance(user, dict) else {}
            if "plaintext-password" in auth:
                auth["encrypted-password"] = hash_secret(str(auth.pop("plaintext-password")))

    def commit(self, candidate: Tree, confirm_minutes: int | None = None) -> str:
        """Verify and activate ``candidate``; returns the CLI message (may be empty)."""
        verify(candidate)
        activated = copy.deepcopy(candidate)
        self._encrypt_passwords(activated)
        if activated == self.running and confirm_minutes is None:
            return "No configuration changes to commit"
        previous = self.running
        self.running = activated
        if confirm_minutes is not None:
            if self._confirm is not None:
                # vyos-1x: the commit goes through, but no second revert timer is armed.
                raise ConfigError("Another confirm is pending")
            # The revert action is read from the running config when the timer is armed.
            action = self.confirm_action()
            delay = confirm_minutes * MINUTE_S * self.config.time_scale
            handle = asyncio.get_running_loop().call_later(delay, self._confirm_timeout, action)
            self._confirm = (previous, handle)
            return f"Initialized commit-confirm; {confirm_minutes} minutes to confirm before {action}\n"
        return ""

    def confirm_action(self) -> str:
        """`system config-management commit-confirm action`: reload (revert in place) or reboot (to the
        saved configuration). Unset reverts in place here (a known difference: a real 1.4 reboots)."""
        mgmt = self.running.get("system", {}).get("config-management", {})
        return "reboot" if mgmt.get("commit-confirm", {}).get("action") == "reboot" else "reload"

    def confirm(self) -> bool:
        if self._confirm is None:
            return False
        self._cancel_confirm()
        return True

    def _confirm_timeout(self, action: str = "reload") -> None:
        if self._confirm is None:
            return
        previous, _ = self._confirm
        self._confirm = None
        if action == "reboot":  # boot loads config.boot: every unsaved commit is gone
            self.running = copy.deepcopy(self.files[BOOT_CONFIG])
            self.events.append({"event": "commit-confirm timeout", "action": "rebooted"})
            return
        self.running = previous
        self.events.append({"event": "commit-confirm timeout", "action": "reverted"})

    def _cancel_confirm(self) -> None:
        if self._confirm is not None:
            self._confirm[1].cancel()
            self._confirm = None

    def save(self, path: str | None = None) -> str:
        target = path or BOOT_CONFIG
        self.files[target] = copy.deepcopy(self.running)
        return f"Saving configuration to '{target}'...\nDone\n"

    def load(self, path: str | None = None) -> Tree:
        target = path or BOOT_CONFIG
        if target not in self.files:
            raise ConfigError(f"Cannot load '{target}': no such file")
        return copy.deepcopy(self.files[target])

    def show_version(self) -> str:
        return (
            f"Version:          VyOS {self.firmware_version}\n"
            f"Release train:    {'.'.join(str(p) for p in self.version)}\n"
            "Built by:         vnf-operator simulator\n"
            "Architecture:     x86_64\n"
        )

    # ------------------------------------------------------------------ state dump
    @staticmethod
    def _masked(tree: Tree) -> list[str]:
        lines = []
        for line in set_commands(tree):
            if " api keys id " in line and " key " in line:
                line = line.rsplit(" ", 1)[0] + " '<redacted>'"
            lines.append(line)
        return lines

    def dump_state(self) -> dict[str, Any]:
        return {
            "running": self._masked(self.running),
            "saved": self._masked(self.files[BOOT_CONFIG]),
            "unsaved_changes": self.running != self.files[BOOT_CONFIG],
            "files": sorted(self.files),
            "commit_confirm_pending": self._confirm is not None,
            "events": list(self.events),
        }
