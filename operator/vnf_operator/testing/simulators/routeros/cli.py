"""The RouterOS console over SSH: menus, print/add/set/remove/move and ``[find ...]``."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..sshd import CliOutput, CliSession
from .schema import ID_RE, MENU_BY_PATH, Item, Menu, RouterOsError
from .store import RouterOsStore

if TYPE_CHECKING:
    from .simulator import RouterOsSimulator

MENU_COMMANDS = ("print", "add", "set", "remove", "move", "enable", "disable", "export")
SYSTEM_MENUS = {("system", "identity"), ("system", "resource")}
FLAG_LEGEND = {
    ("ip", "route"): "Flags: D - dynamic; X - disabled, I - inactive, A - active; s - static",
    ("interface",): "Flags: R - running; X - disabled",
    ("routing", "bgp", "connection"): "Flags: D - dynamic, X - disabled, I - inactive",
}
DEFAULT_LEGEND = "Flags: X - disabled, I - invalid; D - dynamic"
LEADING_PROPS = ("chain", "action", "name", "dst-address", "gateway", "address")
HIDDEN_PROPS = {".id", "bytes", "packets", "dynamic", "invalid", "disabled", "active", "inactive", "running"}


@dataclass
class Token:
    text: str
    column: int


def tokenize(line: str) -> list[Token]:
    """Words, ``name=value`` pairs (value may be quoted) and ``[ ... ]`` groups."""
    tokens: list[Token] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char.isspace():
            index += 1
            continue
        start = index
        depth = 0
        text = []
        while index < len(line):
            char = line[index]
            if char == "[":
                depth += 1
            elif char == "]":
                depth -= 1
            elif char == '"':
                # Inside [ ... ] the quotes stay, so the group can be tokenized again later.
                keep = depth > 0
                if keep:
                    text.append(char)
                index += 1
                while index < len(line) and line[index] != '"':
                    if line[index] == "\\" and index + 1 < len(line):
                        if keep:
                            text.append(line[index])
                        index += 1
                    text.append(line[index])
                    index += 1
                if keep and index < len(line):
                    text.append('"')
                index += 1
                continue
            elif char.isspace() and depth == 0:
                break
            text.append(char)
            index += 1
        tokens.append(Token("".join(text), start + 1))
    return tokens


def quote(value: str) -> str:
    if value == "" or re.search(r'[\s";\\]', value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    return value


def cli_value(value: str, boolean: bool) -> str:
    if boolean:
        return "yes" if value == "true" else "no"
    return quote(value)


class RouterOsCliSession(CliSession):
    def __init__(self, sim: RouterOsSimulator, username: str) -> None:
        self.sim = sim
        self.username = username
        self.cwd: tuple[str, ...] = ()
        self.numbers: dict[tuple[str, ...], list[str]] = {}

    @property
    def store(self) -> RouterOsStore:
        return self.sim.store

    def banner(self) -> str:
        return f"\n  MikroTik RouterOS {self.sim.firmware_version} (c) 1999-2025       https://www.mikrotik.com/\n\n"

    def prompt(self) -> str:
        location = " ".join(self.cwd)
        return f"[{self.username}@{self.store.identity}] {'/' + location if location else ''}> "

    def template(self, line: str) -> str:
        words = []
        for token in tokenize(line):
            if "=" in token.text or token.text.startswith("[") or ID_RE.match(token.text):
                break
            words.append(token.text)
        return " ".join(words[:6]) or "<empty>"

    async def execute(self, line: str) -> CliOutput:
        try:
            return CliOutput(self._run(line.strip()))
        except RouterOsError as exc:
            return CliOutput(exc.detail + "\n", ok=False)

    # ------------------------------------------------------------------ parsing
    @staticmethod
    def _known_prefix(path: tuple[str, ...]) -> bool:
        known = [*MENU_BY_PATH, *SYSTEM_MENUS]
        return any(menu[: len(path)] == path for menu in known)

    def _walk(self, tokens: list[Token]) -> tuple[tuple[str, ...], list[Token]]:
        """Consume path words; returns the menu path and the remaining tokens."""
        path = self.cwd
        rest = list(tokens)
        if rest and rest[0].text.startswith("/"):
            first = rest.pop(0)
            path = ()
            parts = [p for p in first.text.split("/") if p]
            for index, part in enumerate(parts):
                if not self._known_prefix((*path, part)):
                    # "/ip/firewall/filter/print": the first unknown word starts the command.
                    rest[0:0] = [Token(word, first.column + 1) for word in parts[index:]]
                    return path, rest
                path = (*path, part)
        while rest:
            word = rest[0].text
            if word == "..":
                path = path[:-1]
            elif not ("=" in word or word.startswith("[")) and self._known_prefix((*path, word)):
                path = (*path, word)
            else:
                break
            rest.pop(0)
        return path, rest

    def _run(self, line: str) -> str:
        if not line or line.startswith("#"):
            return ""
        tokens = tokenize(line)
        path, rest = self._walk(tokens)
        if not rest:
            self.cwd = path
            return ""
        command = rest.pop(0)
        if path == () and command.text in ("quit", "exit"):
            self.closed = True
            return "interrupted\n"
        if path == () and command.text == "export":
            return self._export_all()
        if path in SYSTEM_MENUS and command.text == "print":
            return self._system_print(path)
        menu = MENU_BY_PATH.get(path)
        if menu is None or command.text not in MENU_COMMANDS:
            raise RouterOsError(f"bad command name {command.text} (line 1 column {command.column})")
        handler = getattr(self, f"_cmd_{command.text}")
        result: str = handler(menu, rest)
        return result

    def _arguments(self, menu: Menu, tokens: list[Token]) -> tuple[list[str], dict[str, str]]:
        """Positional item references and ``name=value`` arguments."""
        refs: list[str] = []
        values: dict[str, str] = {}
        for token in tokens:
            if token.text.startswith("["):
                refs.extend(self._find(menu, token.text))
            elif "=" in token.text:
                name, value = token.text.split("=", 1)
                if name not in menu.props and name not in ("place-before", "numbers", "destination"):
                    raise RouterOsError(f"expected end of command (line 1 column {token.column})")
                if name == "numbers":
                    refs.extend(self._resolve_refs(menu, value))
                else:
                    values[name] = value
            else:
                refs.extend(self._resolve_refs(menu, token.text))
        return refs, values

    def _resolve_refs(self, menu: Menu, text: str) -> list[str]:
        refs = []
        items = self.store.table(menu.path).items
        listing = self.numbers.get(menu.path) or [item[".id"] for item in items]
        for part in (p for p in text.split(",") if p):
            if part.isdigit():
                index = int(part)
                if index >= len(listing):
                    raise RouterOsError(f"no such item ({part})")
                refs.append(listing[index])
            else:
                refs.append(part)
        return refs

    def _find(self, menu: Menu, expression: str) -> list[str]:
        inner = tokenize(expression.strip()[1:-1])
        words = [token.text for token in inner]
        if not words or words[0] != "find":
            raise RouterOsError("bad command name (line 1 column 2)")
        conditions = [word for word in words[1:] if word != "where"]
        matches = []
        for item in self.store.table(menu.path).items:
            if all(self._matches(menu, item, condition) for condition in conditions):
                matches.append(item[".id"])
        return matches

    @staticmethod
    def _matches(menu: Menu, item: Item, condition: str) -> bool:
        if "=" not in condition:
            prop = menu.props.get(condition)
            return prop is not None and prop.boolean and item.get(condition) == "true"
        name, value = condition.split("=", 1)
        prop = menu.props.get(name)
        if prop is not None and prop.boolean:
            value = "true" if value in ("yes", "true") else "false"
        return item.get(name, "") == value

    # ------------------------------------------------------------------ commands
    def _cmd_add(self, menu: Menu, tokens: list[Token]) -> str:
        refs, values = self._arguments(menu, tokens)
        if refs:
            raise RouterOsError("expected end of command (line 1 column 1)")
        place_before = values.get("place-before")
        if place_before is not None and place_before.isdigit():
            values["place-before"] = self._resolve_refs(menu, place_before)[0]
        self.store.add(menu.path, values)
        return ""

    def _cmd_set(self, menu: Menu, tokens: list[Token]) -> str:
        refs, values = self._arguments(menu, tokens)
        if not refs:
            raise RouterOsError("missing value(s) of argument(s) numbers")
        for ref in refs:
            self.store.set(menu.path, ref, values)
        return ""

    def _cmd_remove(self, menu: Menu, tokens: list[Token]) -> str:
        refs, _ = self._arguments(menu, tokens)
        self.store.remove(menu.path, refs)
        return ""

    def _cmd_enable(self, menu: Menu, tokens: list[Token]) -> str:
        refs, _ = self._arguments(menu, tokens)
        for ref in refs:
            self.store.set(menu.path, ref, {"disabled": "no"})
        return ""

    def _cmd_disable(self, menu: Menu, tokens: list[Token]) -> str:
        refs, _ = self._arguments(menu, tokens)
        for ref in refs:
            self.store.set(menu.path, ref, {"disabled": "yes"})
        return ""

    def _cmd_move(self, menu: Menu, tokens: list[Token]) -> str:
        refs, values = self._arguments(menu, tokens)
        destination = values.get("destination")
        if destination is None and len(refs) >= 2:
            destination = refs.pop()
        elif destination is not None and destination.isdigit():
            destination = self._resolve_refs(menu, destination)[0]
        self.store.move(menu.path, refs, destination)
        return ""

    def _cmd_print(self, menu: Menu, tokens: list[Token]) -> str:
        words = [token.text for token in tokens]
        terse = "terse" in words
        show_ids = "show-ids" in words
        conditions = []
        if "where" in words:
            conditions = [word for word in words[words.index("where") + 1 :]]
        items = [
            item
            for item in self.store.table(menu.path).items
            if all(self._matches(menu, item, condition) for condition in conditions)
        ]
        if "count-only" in words:
            return f"{len(items)}\n"
        self.numbers[menu.path] = [item[".id"] for item in items]
        lines = [] if terse else [FLAG_LEGEND.get(menu.path, DEFAULT_LEGEND)]
        for index, item in enumerate(items):
            label = item[".id"] if show_ids else str(index)
            flags = self._flags(menu, item)
            props = self._props(menu, item, include_comment=terse)
            if terse:
                lines.append(f"{label:>2} {flags:<2} {props}".rstrip())
                continue
            prefix = f"{label:>2} {flags:<2} "
            if item.get("comment"):
                lines.append(f"{prefix};;; {item['comment']}")
                prefix = " " * len(prefix)
            lines.append(f"{prefix}{props}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _flags(menu: Menu, item: Item) -> str:
        flags = ""
        if item.get("disabled") == "true":
            flags += "X"
        if item.get("invalid") == "true":
            flags += "I"
        if item.get("dynamic") == "true":
            flags += "D"
        if menu.path == ("ip", "route") and item.get("active") == "true":
            flags += "As"
        if menu.path == ("interface",) and item.get("running") == "true":
            flags += "R"
        return flags

    @staticmethod
    def _props(menu: Menu, item: Item, include_comment: bool) -> str:
        names = [name for name in LEADING_PROPS if name in item]
        names += [name for name in menu.props if name in item and name not in names]
        parts = []
        for name in names:
            if name in HIDDEN_PROPS or (name == "comment" and not include_comment):
                continue
            prop = menu.props[name]
            parts.append(f"{name}={cli_value(item[name], prop.boolean)}")
        return " ".join(parts)

    def _cmd_export(self, menu: Menu, tokens: list[Token]) -> str:
        return self._export_header() + self._export_menu(menu)

    def _export_header(self) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        return f"# {stamp} by RouterOS {self.sim.firmware_version}\n"

    def _export_menu(self, menu: Menu) -> str:
        lines = [menu.cli_path]
        for item in self.store.table(menu.path).items:
            args = []
            for name in sorted(item):
                prop = menu.props.get(name)
                if prop is None or prop.readonly:
                    continue
                always = name in ("action", "chain")
                if not always and item[name] == menu.defaults.get(name):
                    continue
                if menu.fixed and name == "name" and item[name] == item.get("default-name"):
                    continue
                args.append(f"{name}={cli_value(item[name], prop.boolean)}")
            verb = "set [ find default-name=" + item["name"] + " ]" if menu.fixed else "add"
            if menu.fixed and not args:
                continue
            lines.append(f"{verb} {' '.join(args)}")
        return "\n".join(lines) + "\n" if len(lines) > 1 else ""

    def _export_all(self) -> str:
        body = "".join(self._export_menu(menu) for menu in MENU_BY_PATH.values())
        return self._export_header() + body

    def _system_print(self, path: tuple[str, ...]) -> str:
        data = self.sim.system_menu("/".join(path)) or {}
        width = max((len(key) for key in data), default=0)
        return "".join(f"{key:>{width + 2}}: {value}\n" for key, value in data.items())
