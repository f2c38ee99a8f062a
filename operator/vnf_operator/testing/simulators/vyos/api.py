"""The VyOS HTTP API: every endpoint is a POST with ``data`` (JSON) and ``key`` form fields."""

from __future__ import annotations

import copy
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from ..base import json_response, set_template
from .config import ConfigError, Tree, curly, delete_path, get_node, set_commands, set_path

if TYPE_CHECKING:
    from .simulator import VyosSimulator

Handler = Callable[[Any], Awaitable[web.Response]]


class ApiError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def envelope(data: Any = None, error: str | None = None, status: int = 200) -> web.Response:
    return json_response({"success": error is None, "data": data, "error": error}, status=status)


async def _fields(request: web.Request) -> dict[str, Any]:
    """Form (urlencoded or multipart) fields, or a JSON body whose ``key`` sits beside the command."""
    if request.content_type == "application/json":
        try:
            body = json.loads(await request.text() or "null")
        except ValueError:
            raise ApiError("Failed to parse JSON", 400) from None
        if not isinstance(body, dict):
            raise ApiError("JSON body must be an object", 422)
        key = body.pop("key", None)
        data = body.pop("data", None)
        return {"key": key, "data": data if data is not None else (body or None)}
    if request.content_type == "multipart/form-data":
        fields: dict[str, Any] = {}
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if isinstance(part, BodyPartReader) and part.name:
                fields[part.name] = await part.text()
        return _decode_form(fields)
    form = await request.post()
    return _decode_form({name: str(value) for name, value in form.items()})


def _decode_form(fields: dict[str, Any]) -> dict[str, Any]:
    raw = fields.get("data")
    if raw is None:
        return {"key": fields.get("key"), "data": None}
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiError("Failed to parse JSON", 400) from None
    return {"key": fields.get("key"), "data": data}


def _path(command: dict[str, Any], required: bool = True) -> list[str]:
    path = command.get("path", [] if not required else None)
    if path is None:
        raise ApiError('Missing required field "path"', 422)
    if not isinstance(path, list) or not all(isinstance(word, str | int) for word in path):
        raise ApiError('"path" must be a list of strings', 422)
    return [str(word) for word in path]


class VyosApi:
    def __init__(self, sim: VyosSimulator) -> None:
        self.sim = sim

    def setup(self, app: web.Application) -> None:
        for name, handler in (
            ("retrieve", self.retrieve),
            ("configure", self.configure),
            ("config-file", self.config_file),
            ("show", self.show),
        ):
            app.router.add_post(f"/{name}", self._wrap(handler))
        if self.sim.version >= (1, 5):
            app.router.add_get("/info", self.info)

    def _wrap(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            set_template(request, request.path)
            try:
                fields = await _fields(request)
                if not self._authorized(fields.get("key")):
                    return envelope(error="Valid API key is required", status=401)
                if fields["data"] is None:
                    raise ApiError('Missing required field "data"', 422)
                async with self.sim.lock:
                    return await handler(fields["data"])
            except ApiError as exc:
                return envelope(error=exc.message, status=exc.status)

        return endpoint

    def _authorized(self, key: Any) -> bool:
        if not isinstance(key, str) or not key:
            return False
        return any(hmac.compare_digest(key, known) for known in self.sim.api_keys())

    async def info(self, request: web.Request) -> web.StreamResponse:
        set_template(request, "/info")
        data = {"version": self.sim.firmware_version, "hostname": self.sim.host_name, "banner": ""}
        return envelope(data)

    # ------------------------------------------------------------------ /retrieve
    async def retrieve(self, data: Any) -> web.Response:
        if not isinstance(data, dict):
            raise ApiError('"data" must be an object', 422)
        op = data.get("op")
        path = _path(data, required=op != "showConfig")
        running = self.sim.running
        if op == "exists":
            try:
                get_node(running, path)
            except KeyError:
                return envelope(False)
            return envelope(True)
        try:
            node = get_node(running, path)
        except KeyError:
            raise ApiError("Configuration under specified path is empty\n") from None
        if op == "showConfig":
            if data.get("configFormat") == "raw":
                return envelope("\n".join(curly(node, tuple(path))) + "\n")
            return envelope(node)
        if op == "returnValue":
            if not isinstance(node, str):
                raise ApiError(f"Path [{' '.join(path)}] is not a leaf with a single value")
            return envelope(node)
        if op == "returnValues":
            if isinstance(node, list):
                return envelope(list(node))
            if isinstance(node, str):
                return envelope([node])
            raise ApiError(f"Path [{' '.join(path)}] is not a leaf")
        raise ApiError(f'"{op}" is not a valid operation')

    # ------------------------------------------------------------------ /configure
    async def configure(self, data: Any) -> web.Response:
        confirm_time: int | None = None
        if isinstance(data, dict) and "commands" in data:  # ConfigureListModel: commands + confirm_time
            confirm_time = int(data["confirm_time"]) if data.get("confirm_time") is not None else None
            data = data["commands"]
        commands = data if isinstance(data, list) else [data]
        if not commands or not all(isinstance(command, dict) for command in commands):
            raise ApiError('"data" must be an object or a list of objects', 422)
        if len(commands) == 1 and commands[0].get("op") == "confirm":
            if not self.sim.confirm():
                raise ApiError("No confirmable commit is pending")
            return envelope("Reload timer stopped")
        candidate: Tree = copy.deepcopy(self.sim.running)
        for command in commands:
            op = command.get("op")
            path = _path(command)
            if "value" in command and command["value"] is not None:
                path.append(str(command["value"]))
            if command.get("confirm_time") is not None:
                confirm_time = int(command["confirm_time"])
            try:
                if op == "set":
                    set_path(candidate, path)
                elif op == "delete":
                    if not delete_path(candidate, path) and self.sim.strict_api():
                        raise ConfigError("Nothing to delete (the specified node does not exist)")
                elif op == "comment":
                    continue
                else:
                    raise ApiError(f'"{op}" is not a valid operation')
            except ConfigError as exc:
                raise ApiError(str(exc)) from None  # the whole session is discarded
        try:
            message = self.sim.commit(candidate, confirm_time)
        except ConfigError as exc:
            raise ApiError(str(exc)) from None
        return envelope(message or None)

    # ------------------------------------------------------------------ /config-file
    async def config_file(self, data: Any) -> web.Response:
        if not isinstance(data, dict):
            raise ApiError('"data" must be an object', 422)
        op = data.get("op")
        file = data.get("file")
        if op == "save":
            return envelope(self.sim.save(str(file) if file else None))
        if op == "confirm":
            action = self.sim.confirm_action()
            if not self.sim.confirm():
                return envelope("No confirm pending\n")
            return envelope(f"{action.capitalize()} timer stopped\n")
        if op == "load":
            if not file:
                raise ApiError('Missing required field "file"', 422)
            try:
                self.sim.commit(self.sim.load(str(file)))
            except ConfigError as exc:
                raise ApiError(str(exc)) from None
            return envelope(None)
        raise ApiError(f'"{op}" is not a valid operation')

    # ------------------------------------------------------------------ /show
    async def show(self, data: Any) -> web.Response:
        if not isinstance(data, dict) or data.get("op") != "show":
            raise ApiError('"op" must be "show"')
        path = _path(data)
        if path == ["configuration", "commands"]:
            return envelope("\n".join(set_commands(self.sim.running)) + "\n")
        if path == ["configuration"]:
            return envelope("\n".join(curly(self.sim.running)) + "\n")
        if path == ["version"]:
            return envelope(self.sim.show_version())
        raise ApiError(f"Invalid command: show {' '.join(path)}")
