"""``/rest``: GET prints, PUT adds, PATCH sets, DELETE removes, POST runs console commands."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..base import json_response, set_template
from .schema import ID_RE, MENU_BY_PATH, Item, RouterOsError
from .store import RouterOsStore, to_routeros_string

if TYPE_CHECKING:
    from .simulator import RouterOsSimulator

COMMANDS = ("print", "add", "set", "remove", "move", "enable", "disable")


def error_response(exc: RouterOsError) -> web.Response:
    body: dict[str, Any] = {"error": exc.status, "message": exc.message}
    if exc.status != 404 or exc.detail != "no such item":
        body["detail"] = exc.detail
    return json_response(body, status=exc.status)


def run_query(items: Iterable[Item], query: list[str]) -> list[Item]:
    """The ``.query`` stack language: ``a=b``, ``a``, ``-a``, ``a<b``, ``a>b``, ``#|``, ``#&``, ``#!``."""
    result = []
    for item in items:
        stack: list[bool] = []
        for word in query:
            if word.startswith("#"):
                for op in word[1:]:
                    if op == "!" and stack:
                        stack.append(not stack.pop())
                    elif op in "|&" and len(stack) >= 2:
                        right, left = stack.pop(), stack.pop()
                        stack.append(left or right if op == "|" else left and right)
            elif word.startswith("-"):
                stack.append(word[1:] not in item)
            elif "=" in word:
                name, value = word.split("=", 1)
                stack.append(item.get(name) == value)
            elif "<" in word or ">" in word:
                op = "<" if "<" in word else ">"
                name, value = word.split(op, 1)
                stack.append(_compare(item.get(name), value, op))
            else:
                stack.append(word in item)
        if all(stack):
            result.append(item)
    return result


def _compare(current: str | None, value: str, op: str) -> bool:
    if current is None:
        return False
    try:
        left, right = int(current), int(value)
    except ValueError:
        return current < value if op == "<" else current > value
    return left < right if op == "<" else left > right


class RestApi:
    def __init__(self, sim: RouterOsSimulator) -> None:
        self.sim = sim

    @property
    def store(self) -> RouterOsStore:
        return self.sim.store

    def setup(self, app: web.Application) -> None:
        app.router.add_route("*", "/rest/{tail:.*}", self.handle)

    @staticmethod
    def _split(tail: str) -> tuple[tuple[str, ...], str | None, str | None]:
        """-> (menu path, item ref, command) from the URL tail."""
        parts = [part for part in tail.split("/") if part]
        for cut in range(len(parts), 0, -1):
            path = tuple(parts[:cut])
            if path in MENU_BY_PATH:
                rest = parts[cut:]
                if not rest:
                    return path, None, None
                if len(rest) == 1 and (rest[0] in COMMANDS or not _is_ref(path, rest[0])):
                    return path, None, rest[0]
                if len(rest) == 1:
                    return path, rest[0], None
                raise RouterOsError("no such command or directory (" + rest[-1] + ")", 406, "Not Acceptable")
        raise RouterOsError("no such command prefix")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not self.sim.check_basic_auth(request.headers.get("Authorization", "")):
            set_template(request, "/rest/{unauthorized}")
            return json_response({"error": 401, "message": "Unauthorized"}, status=401)
        tail = request.match_info["tail"]
        special = self.sim.system_menu(tail)
        if special is not None:
            set_template(request, f"/rest/{tail}")
            return json_response(special) if request.method == "GET" else _not_acceptable(tail)
        try:
            path, ref, command = self._split(tail)
        except RouterOsError as exc:
            set_template(request, "/rest/{unknown}")
            return error_response(exc)
        base = "/rest/" + "/".join(path)
        set_template(request, base + ("/{id}" if ref else f"/{command}" if command else ""))
        try:
            body = await _read_json(request)
            return await self._dispatch(request.method, path, ref, command, request.query, body)
        except RouterOsError as exc:
            return error_response(exc)

    async def _dispatch(
        self,
        method: str,
        path: tuple[str, ...],
        ref: str | None,
        command: str | None,
        query: Mapping[str, str],
        body: Any,
    ) -> web.StreamResponse:
        table = self.store.table(path)
        if command is not None:
            if method != "POST":
                raise RouterOsError(f"no such command or directory ({command})", 406, "Not Acceptable")
            return self._command(path, command, body)
        if method == "GET" and ref is None:
            proplist = query.get(".proplist")
            filters = [f"{name}={value}" for name, value in query.items() if not name.startswith(".")]
            items = run_query(table.items, filters)
            return json_response([self.store.render(item, _split_list(proplist)) for item in items])
        if method == "GET":
            proplist = query.get(".proplist")
            return json_response(self.store.render(table.get(ref or ""), _split_list(proplist)))
        if method == "PUT" and ref is None:
            item = self.store.add(path, _object(body))
            return json_response(self.store.render(item), status=201)
        if method == "PATCH" and ref is not None:
            return json_response(self.store.render(self.store.set(path, ref, _object(body))))
        if method == "DELETE" and ref is not None:
            self.store.remove(path, [ref])
            return web.Response(status=204)
        raise RouterOsError("no such command or directory", 400, "Bad Request")

    def _command(self, path: tuple[str, ...], command: str, body: Any) -> web.StreamResponse:
        if command not in COMMANDS:
            raise RouterOsError(f"no such command or directory ({command})", 406, "Not Acceptable")
        data = _object(body) if body is not None else {}
        table = self.store.table(path)
        if command == "print":
            proplist = data.get(".proplist")
            query = data.get(".query") or []
            if isinstance(proplist, str):
                proplist = _split_list(proplist)
            items = run_query(table.items, [str(word) for word in query])
            return json_response([self.store.render(item, proplist) for item in items])
        if command == "add":
            item = self.store.add(path, data)
            return json_response({"ret": item[".id"]})
        refs = _refs(data)
        if command == "set":
            values = {k: v for k, v in data.items() if k not in (".id", "numbers")}
            for ref in refs:
                self.store.set(path, ref, values)
        elif command == "remove":
            self.store.remove(path, refs)
        elif command == "move":
            destination = data.get("destination")
            self.store.move(path, refs, to_routeros_string(destination) if destination is not None else None)
        elif command in ("enable", "disable"):
            for ref in refs:
                self.store.set(path, ref, {"disabled": command == "disable"})
        else:
            raise RouterOsError(f"no such command or directory ({command})", 406, "Not Acceptable")
        return json_response([])


def _is_ref(path: tuple[str, ...], text: str) -> bool:
    return bool(ID_RE.match(text)) or MENU_BY_PATH[path].key is not None


def _split_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [str(item) for item in value]
    return [part for part in str(value).split(",") if part]


def _refs(data: Mapping[str, Any]) -> list[str]:
    raw = data.get(".id", data.get("numbers"))
    if raw is None:
        raise RouterOsError("missing value(s) of argument(s) .id")
    return [part for part in to_routeros_string(raw).split(",") if part]


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RouterOsError("JSON object expected")
    return body


def _not_acceptable(tail: str) -> web.Response:
    return error_response(RouterOsError(f"no such command or directory ({tail})", 406, "Not Acceptable"))


async def _read_json(request: web.Request) -> Any:
    if request.method not in ("PUT", "PATCH", "POST"):
        return None
    text = await request.text()
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise RouterOsError("JSON parse error") from None
