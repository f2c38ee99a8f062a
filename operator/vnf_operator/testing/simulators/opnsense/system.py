"""Core controllers (system status, firmware, backup) and the user manager used for bootstrap."""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..hashing import hash_secret
from .api import Action, ApiCall, Controller
from .mvc import GridRequest, search_grid
from .state import ApiKey, generate_api_key

if TYPE_CHECKING:
    from .simulator import OpnsenseSimulator


class CoreControllers:
    def __init__(self, sim: OpnsenseSimulator) -> None:
        self.sim = sim

    def controllers(self) -> list[Controller]:
        return [
            Controller.build(
                "core",
                "system",
                [
                    Action("status", self.system_status),
                    Action("systemInformation", self.system_information),
                    Action("reboot", self.reboot),
                ],
            ),
            Controller.build(
                "core",
                "firmware",
                [
                    Action("status", self.firmware_status),
                    Action("update", self.firmware_update),
                    Action("upgrade", self.firmware_update),
                    Action("reboot", self.reboot),
                ],
            ),
            Controller.build(
                "core",
                "backup",
                [
                    Action("download", self.backup_download, ("host", "backup")),
                    Action("restore", self.backup_restore),
                ],
            ),
        ]

    def product(self) -> dict[str, str]:
        version = self.sim.firmware_version
        series = ".".join(version.split(".")[:2])
        return {
            "product_abi": series,
            "product_arch": "amd64",
            "product_id": "opnsense",
            "product_name": "OPNsense",
            "product_series": series,
            "product_version": version,
            "product_latest": self.sim.firmware_available or version,
        }

    async def system_status(self, call: ApiCall) -> Any:
        return {
            "CrashReporter": {
                "statusCode": 2,
                "message": "No problems were detected.",
                "logLocation": "/crash_reporter.php",
                "timestamp": "0",
                "status": "OK",
            },
            "Firewall": {
                "statusCode": 2,
                "message": "There were no filter errors.",
                "logLocation": "/ui/diagnostics/log/core/firewall",
                "timestamp": "0",
                "status": "OK",
            },
            "System": {"status": "OK"},
        }

    async def system_information(self, call: ApiCall) -> Any:
        config = self.sim.config_xml
        return {
            "name": f"{config.hostname}.{config.domain}",
            "versions": [
                f"OPNsense {self.sim.firmware_version}-amd64",
                "FreeBSD 14.3-RELEASE-p2",
                "OpenSSL 3.0.17",
            ],
            "updates": "Click to check for updates.",
        }

    async def reboot(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"status": "failed"}
        self.sim.spawn(self.sim.reboot_soon())
        return {"status": "ok"}

    async def firmware_status(self, call: ApiCall) -> Any:
        if self.sim.config_damaged:
            message = "The configuration could not be loaded after the upgrade."
            return web.json_response({"errorMessage": message, "errorTitle": "An error occurred"}, status=500)
        offered = self.sim.firmware_available
        pending = offered is not None and offered != self.sim.firmware_version
        return {
            "status": "update" if pending else "none",
            "status_msg": (
                f"There are updates available: {offered}."
                if pending
                else "There are no updates available on the selected mirror."
            ),
            "product": self.product(),
            "product_version": self.sim.firmware_version,
            "updates": "1" if pending else "0",
            "upgrade_packages": [],
        }

    async def firmware_update(self, call: ApiCall) -> Any:
        """`update`/`upgrade`: install what the mirror offers and reboot (in the background)."""
        if not call.is_post:
            return {"status": "failed"}
        if not self.sim.upgrading:
            self.sim.upgrading = True
            self.sim.spawn(self.sim.upgrade_and_reboot())
        return {"status": "ok", "msg_uuid": self.sim.new_uuid()}

    async def backup_download(self, call: ApiCall) -> Any:
        if call.param(0) != "this":
            return []
        config = self.sim.config_xml
        name = f"config-{config.hostname}.{config.domain}-{time.strftime('%Y%m%d%H%M%S')}.xml"
        return web.Response(
            body=config.to_xml(self.sim.firmware_version),
            content_type="application/octet-stream",
            headers={"Content-Disposition": f"attachment; filename={name}", "Pragma": "no-cache"},
        )

    async def backup_restore(self, call: ApiCall) -> Any:
        data = call.files.get("conffile")
        if not call.is_post or data is None:
            return {"status": "failed", "message": "No files uploaded"}
        if not data:
            return {"status": "failed", "message": "Warning, could not read file conffile"}
        try:
            self.sim.restore_config(data)
        except ValueError:
            return {"status": "failed", "message": "The configuration could not be restored."}
        if call.get("rebootafterrestore") not in (None, "", "0"):  # PHP empty(): "0" means no
            self.sim.spawn(self.sim.reboot_soon())
            return {"status": "success", "reboot": True}
        return {"status": "success"}


class UserController:
    """``/api/auth/user``: enough of the user manager to bootstrap API access."""

    def __init__(self, sim: OpnsenseSimulator) -> None:
        self.sim = sim

    def controller(self) -> Controller:
        return Controller.build(
            "auth",
            "user",
            [
                Action("search", self.search, password_login=True),
                Action("get", self.get, ("uuid",), password_login=True),
                Action("set", self.set, ("uuid",), password_login=True),
                Action("addApiKey", self.add_api_key, ("username",), password_login=True),
                Action("searchApiKey", self.search_api_key, password_login=True),
                Action("delApiKey", self.del_api_key, ("id",), password_login=True),
            ],
        )

    def _user_row(self, user_uuid: str) -> dict[str, Any]:
        user = self.sim.config_xml.users[user_uuid]
        return {
            "uuid": user_uuid,
            "name": user.name,
            "uid": user.uid,
            "scope": user.scope,
            "disabled": "0",
            "is_admin": "1" if user.name == "root" else "0",
        }

    async def search(self, call: ApiCall) -> Any:
        rows = [self._user_row(key) for key in self.sim.config_xml.users]
        return search_grid(rows, GridRequest.from_params({**call.query, **call.post}), "name")

    async def get(self, call: ApiCall) -> Any:
        user_uuid = call.param(0)
        if user_uuid is None or user_uuid not in self.sim.config_xml.users:
            return []
        row = self._user_row(user_uuid)
        row.pop("uuid")
        row.pop("is_admin")
        row["password"] = ""  # hashes are never handed out
        row["apikeys"] = "\n".join(key.key for key in self.sim.config_xml.users[user_uuid].apikeys)
        return {"user": row}

    async def set(self, call: ApiCall) -> Any:
        user_uuid = call.param(0)
        posted = call.post.get("user") if call.has_post("user") else None
        user = self.sim.config_xml.users.get(user_uuid or "")
        if user is None or not isinstance(posted, dict):
            return {"result": "failed"}
        password = posted.get("password")
        if password is not None and str(password) != "":
            user.password_hash = hash_secret(str(password))
        self.sim.save_config(call, f'user "{user.name}" changed', None)
        return {"result": "saved"}

    async def add_api_key(self, call: ApiCall) -> Any:
        user = self.sim.config_xml.user_by_name(call.param(0) or "")
        if not call.is_post or user is None:
            return {"result": "failed"}
        key, secret = generate_api_key()
        user.apikeys.append(ApiKey(key=key, secret_hash=hash_secret(secret)))
        self.sim.save_config(call, f'api key created for user "{user.name}"', None)
        config = self.sim.config_xml
        return {
            "result": "ok",
            "hostname": f"{config.hostname}.{config.domain}",
            "key": key,
            "secret": secret,
        }

    async def search_api_key(self, call: ApiCall) -> Any:
        rows = [
            {"id": base64.b64encode(key.key.encode()).decode(), "username": user.name, "key": key.key}
            for user in self.sim.config_xml.users.values()
            for key in user.apikeys
        ]
        return search_grid(rows, GridRequest.from_params({**call.query, **call.post}), "username")

    async def del_api_key(self, call: ApiCall) -> Any:
        if not call.is_post:
            return {"result": "failed"}
        try:
            key = base64.b64decode(call.param(0) or "", validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return {"result": "failed"}
        found = self.sim.config_xml.user_by_api_key(key)
        if found is None:
            return {"result": "not found"}
        user, apikey = found
        user.apikeys.remove(apikey)
        self.sim.save_config(call, f'api key removed for user "{user.name}"', None)
        return {"result": "deleted"}
