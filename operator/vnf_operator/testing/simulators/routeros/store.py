"""RouterOS configuration state shared by the REST API and the SSH console. Changes are live."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from .schema import (
    ID_RE,
    INTERFACE,
    IP_ADDRESS,
    IP_ROUTE,
    MENU_BY_PATH,
    MENUS,
    Item,
    Menu,
    NotFound,
    RouterOsError,
    format_id,
)

INTERFACE_PROPS = ("in-interface", "out-interface", "interface")


def to_routeros_string(value: Any) -> str:
    """Clients may send numbers and booleans; RouterOS keeps and prints strings."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(to_routeros_string(item) for item in value)
    return str(value)


class Table:
    """The items of one menu, in print order."""

    def __init__(self, menu: Menu) -> None:
        self.menu = menu
        self.items: list[Item] = []
        self.next_id = menu.first_id

    def allocate_id(self) -> str:
        item_id = format_id(self.next_id)
        self.next_id += 1
        return item_id

    def index_of(self, ref: str) -> int:
        """Find by ``*hex`` id, or by name for menus keyed by name."""
        if ID_RE.match(ref):
            wanted = int(ref[1:], 16)
            for index, item in enumerate(self.items):
                if int(item[".id"][1:], 16) == wanted:
                    return index
        elif self.menu.key is not None:
            for index, item in enumerate(self.items):
                if item.get(self.menu.key) == ref:
                    return index
        raise NotFound()

    def get(self, ref: str) -> Item:
        return self.items[self.index_of(ref)]


class RouterOsStore:
    """All menus; every mutation is validated as a whole item before it lands."""

    def __init__(self, identity: str = "MikroTik") -> None:
        self.identity = identity
        self.tables: dict[tuple[str, ...], Table] = {menu.path: Table(menu) for menu in MENUS}
        for number in range(1, 6):
            name = f"ether{number}"
            self.tables[INTERFACE.path].items.append(
                {
                    ".id": self.tables[INTERFACE.path].allocate_id(),
                    "name": name,
                    "default-name": name,
                    "type": "ether",
                    "mtu": "1500",
                    "actual-mtu": "1500",
                    "mac-address": f"0C:00:00:00:00:0{number}",
                    "disabled": "false",
                    "running": "true",
                }
            )

    def table(self, path: tuple[str, ...]) -> Table:
        if path not in MENU_BY_PATH:
            raise RouterOsError("no such command prefix")
        return self.tables[path]

    # ------------------------------------------------------------------ validation
    def normalize(self, menu: Menu, values: Mapping[str, Any]) -> dict[str, str]:
        result: dict[str, str] = {}
        for name, raw in values.items():
            prop = menu.props.get(name)
            if prop is None or prop.readonly:
                raise RouterOsError(f"unknown parameter {name}")
            text = to_routeros_string(raw)
            result[name] = prop.check(name, text) if text != "" else ""
        return result

    def _interface_names(self) -> set[str]:
        return {item["name"] for item in self.tables[INTERFACE.path].items}

    def _check_item(self, table: Table, item: Item, own_index: int | None) -> None:
        menu = table.menu
        missing = [name for name in menu.required if not item.get(name)]
        if missing:
            raise RouterOsError(f"failure: missing value(s) of argument(s) {', '.join(missing)}")
        names = self._interface_names()
        for prop in INTERFACE_PROPS:
            value = item.get(prop, "")
            if prop in menu.props and value and value.lstrip("!") not in names:
                raise RouterOsError(f"input does not match any value of {prop}")
        if menu is IP_ROUTE and item.get("gateway"):
            for gateway in item["gateway"].split(","):
                host = gateway.split("%", 1)[0]
                try:
                    ipaddress.ip_address(host)
                except ValueError:
                    if gateway not in names:
                        raise RouterOsError("input does not match any value of gateway") from None
        for check in menu.checks:
            check(item)
        for fields in menu.unique:
            for index, other in enumerate(table.items):
                if index != own_index and all(other.get(name) == item.get(name) for name in fields):
                    if menu is IP_ADDRESS:
                        raise RouterOsError("failure: already have such address")
                    raise RouterOsError(f"failure: entry with such {fields[0]} already exists")

    @staticmethod
    def _computed(menu: Menu, item: Item) -> None:
        if menu is IP_ADDRESS and item.get("address"):
            interface = ipaddress.ip_interface(item["address"])
            item["network"] = str(interface.network.network_address)
            item["actual-interface"] = item.get("interface", "")
        if menu is IP_ROUTE:
            item["active"] = "false" if item.get("disabled") == "true" else "true"
            item["inactive"] = "true" if item.get("disabled") == "true" else "false"

    @staticmethod
    def _merge(item: Item, values: Mapping[str, str]) -> Item:
        merged = dict(item)
        for name, value in values.items():
            if value == "":
                merged.pop(name, None)
            else:
                merged[name] = value
        return merged

    # ------------------------------------------------------------------ mutations
    def add(self, path: tuple[str, ...], values: Mapping[str, Any]) -> Item:
        table = self.table(path)
        menu = table.menu
        if menu.fixed:
            raise RouterOsError("no such command or directory (add)", 406, "Not Acceptable")
        values = dict(values)
        place_before = to_routeros_string(values.pop("place-before", "")) or None
        item = self._merge(dict(menu.defaults), self.normalize(menu, values))
        self._check_item(table, item, None)
        position = len(table.items)
        if place_before is not None:
            if not menu.ordered:
                raise RouterOsError("unknown parameter place-before")
            position = self._position(table, place_before)
        item = {".id": table.allocate_id(), **item}
        self._computed(menu, item)
        table.items.insert(position, item)
        return item

    def set(self, path: tuple[str, ...], ref: str, values: Mapping[str, Any]) -> Item:
        table = self.table(path)
        index = table.index_of(ref)
        merged = self._merge(table.items[index], self.normalize(table.menu, values))
        self._check_item(table, merged, index)
        self._computed(table.menu, merged)
        table.items[index] = merged
        return merged

    def remove(self, path: tuple[str, ...], refs: Iterable[str]) -> None:
        table = self.table(path)
        if table.menu.fixed:
            raise RouterOsError("failure: can not remove physical interface")
        indexes = sorted({table.index_of(ref) for ref in refs}, reverse=True)
        for index in indexes:
            del table.items[index]

    def move(self, path: tuple[str, ...], refs: list[str], destination: str | None) -> None:
        """Place the items just before ``destination`` (or at the end without one)."""
        table = self.table(path)
        if not table.menu.ordered:
            raise RouterOsError("no such command or directory (move)", 406, "Not Acceptable")
        moving = [table.items[table.index_of(ref)] for ref in refs]
        target = table.items[table.index_of(destination)] if destination else None
        if target is not None and any(item is target for item in moving):
            return
        remaining = [item for item in table.items if all(item is not other for other in moving)]
        position = (
            len(remaining)
            if target is None
            else next(index for index, item in enumerate(remaining) if item is target)
        )
        table.items = remaining[:position] + moving + remaining[position:]

    @staticmethod
    def _position(table: Table, ref: str) -> int:
        if ref.isdigit():
            return min(int(ref), len(table.items))
        return table.index_of(ref)

    # ------------------------------------------------------------------ reads
    @staticmethod
    def render(item: Item, proplist: Iterable[str] | None = None) -> dict[str, str]:
        """REST shape: ``.id`` first, then properties in alphabetical order, all strings."""
        keys = [".id", *sorted(key for key in item if key != ".id")]
        if proplist is not None:
            wanted = set(proplist)
            keys = [key for key in keys if key in wanted]
        return {key: item[key] for key in keys if key in item}

    def snapshot(self) -> dict[str, list[dict[str, str]]]:
        return {
            table.menu.rest_path: [self.render(item) for item in table.items]
            for table in self.tables.values()
        }
