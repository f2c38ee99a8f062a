"""OPNsense API plumbing: URL routing (snake_case and camelCase), request bodies, error shapes."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from ..base import json_response

ActionResult = Any  # a JSON-able value, or a ready web.StreamResponse
ActionHandler = Callable[["ApiCall"], Awaitable[ActionResult]]


class UserException(Exception):
    """OPNsense\\Base\\UserException: HTTP 500 with errorMessage/errorTitle."""

    def __init__(self, message: str, title: str = "An error occurred") -> None:
        super().__init__(message)
        self.message = message
        self.title = title


def camelize(name: str) -> str:
    """Phalcon's camelize: split on ``_``/``-`` and upper-case each part's first letter."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_-]", name) if part)


def action_key(name: str) -> str:
    """PHP method names are case-insensitive, so ``searchroute`` == ``searchRoute``."""
    camel = camelize(name)
    return camel.lower()


def not_found() -> web.Response:
    return json_response({"errorMessage": "Endpoint not found"}, status=404)


def authentication_failed() -> web.Response:
    return json_response({"status": 401, "message": "Authentication Failed"}, status=401)


def invalid_json() -> web.Response:
    return json_response({"status": 400, "message": "Invalid JSON syntax"}, status=400)


def user_exception_response(exc: UserException) -> web.Response:
    return json_response({"errorMessage": exc.message, "errorTitle": exc.title}, status=500)


def parse_php_pairs(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Build nested dicts from PHP-style keys: ``rule[action]=pass``, ``sort[sequence]=asc``."""
    result: dict[str, Any] = {}
    for raw_key, value in pairs:
        match = re.fullmatch(r"([^\[\]]+)((?:\[[^\[\]]*\])*)", raw_key)
        if match is None:
            result[raw_key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = result
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            if last:
                if part == "" and isinstance(node, dict):
                    node.setdefault("__list__", []).append(value)
                else:
                    node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = {}
                    node[part] = child
                node = child
    return _collapse_lists(result)


def _collapse_lists(node: dict[str, Any]) -> dict[str, Any]:
    for key, value in list(node.items()):
        if isinstance(value, dict):
            if set(value) == {"__list__"}:
                node[key] = value["__list__"]
            else:
                node[key] = _collapse_lists(value)
    return node


@dataclass
class ApiCall:
    """One API request as a controller action sees it."""

    method: str
    query: dict[str, Any]
    post: dict[str, Any]
    params: list[str]
    username: str
    remote: str = "127.0.0.1"
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_post(self) -> bool:
        return self.method == "POST"

    def has_post(self, name: str) -> bool:
        return self.is_post and name in self.post

    def get(self, name: str, default: Any = None) -> Any:
        """Phalcon's request->get(): POST (incl. a JSON body) first, then the query string."""
        if name in self.post:
            return self.post[name]
        return self.query.get(name, default)

    def has(self, name: str) -> bool:
        return name in self.post or name in self.query

    def param(self, index: int) -> str | None:
        return self.params[index] if index < len(self.params) else None


class InvalidBody(Exception):
    """The JSON body did not parse."""


async def read_body(request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Decode the body the way OPNsense does: JSON when declared, PHP form otherwise."""
    if request.method not in ("POST", "PUT", "DELETE"):
        return {}, {}
    content_type = request.content_type
    if content_type == "application/json":
        text = await request.text()
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidBody from exc
        if isinstance(data, list):
            data = {str(index): value for index, value in enumerate(data)}
        if not isinstance(data, dict):
            raise InvalidBody
        return data, {}
    if content_type == "multipart/form-data":
        fields: list[tuple[str, str]] = []
        files: dict[str, bytes] = {}
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader) or part.name is None:
                continue
            if part.filename is not None:
                files[part.name] = bytes(await part.read())
            else:
                fields.append((part.name, await part.text()))
        return parse_php_pairs(fields), files
    if content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        return parse_php_pairs((key, str(value)) for key, value in form.items()), {}
    return {}, {}


@dataclass(frozen=True)
class Action:
    """One controller action: canonical name, handler, URL parameter names, version window."""

    name: str
    handler: ActionHandler
    params: tuple[str, ...] = ()
    since: tuple[int, int] | None = None
    until: tuple[int, int] | None = None  # exclusive: removed in this version
    password_login: bool = False  # reachable with root's password (bootstrap stand-in)

    def available(self, version: tuple[int, int]) -> bool:
        if self.since is not None and version < self.since:
            return False
        return not (self.until is not None and version >= self.until)


@dataclass
class Controller:
    """A module/controller pair and its actions keyed by lower-cased name."""

    module: str
    name: str  # CamelCase, as the PHP class is named without the Controller suffix
    url_name: str  # how the docs spell it, for stats templates
    actions: dict[str, Action]
    since: tuple[int, int] | None = None

    @classmethod
    def build(
        cls,
        module: str,
        url_name: str,
        actions: Iterable[Action],
        since: tuple[int, int] | None = None,
    ) -> Controller:
        return cls(
            module=module,
            name=camelize(url_name),
            url_name=url_name,
            actions={action.name.lower(): action for action in actions},
            since=since,
        )


def result_response(result: ActionResult) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    return json_response(result)


def template_for(controller: Controller, action: Action, params: list[str]) -> str:
    names = [f"{{{name}}}" for name in action.params[: len(params)]]
    names += ["{param}"] * (len(params) - len(names))
    return "/".join(["/api", controller.module, controller.url_name, action.name, *names])


def controller_index(controllers: Iterable[Controller]) -> Mapping[tuple[str, str], Controller]:
    return {(controller.module, controller.name): controller for controller in controllers}
