"""The RouterOS menus the simulator knows, their properties and value checks."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Item = dict[str, str]


class RouterOsError(Exception):
    """A console/REST failure; ``detail`` is the RouterOS message text."""

    def __init__(self, detail: str, status: int = 400, message: str = "Bad Request") -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.message = message


class NotFound(RouterOsError):
    def __init__(self, detail: str = "no such item") -> None:
        super().__init__(detail, 404, "Not Found")


BOOL_TRUE = {"true", "yes"}
BOOL_FALSE = {"false", "no"}


def check_bool(name: str, value: str) -> str:
    lowered = value.lower()
    if lowered in BOOL_TRUE:
        return "true"
    if lowered in BOOL_FALSE:
        return "false"
    raise RouterOsError(f"input does not match any value of {name}")


def check_int(name: str, value: str, low: int = 0, high: int = 4294967295) -> str:
    try:
        number = int(value, 0)
    except ValueError:
        raise RouterOsError(f"invalid value for argument {name}") from None
    if not low <= number <= high:
        raise RouterOsError(f"value of {name} out of range ({low}..{high})")
    return str(number)


def check_address(name: str, value: str) -> str:
    """A host, CIDR prefix or ``a-b`` range, optionally negated with ``!``."""
    text = value[1:] if value.startswith("!") else value
    try:
        if "-" in text:
            low, high = text.split("-", 1)
            ipaddress.ip_address(low)
            ipaddress.ip_address(high)
        elif "/" in text:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        raise RouterOsError(f"invalid value for argument {name}") from None
    return value


def check_prefix(name: str, value: str) -> str:
    """dst-address of a route: normalised to the network address, as RouterOS prints it."""
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise RouterOsError(f"invalid value for argument {name}") from None
    return str(network)


def check_ports(name: str, value: str) -> str:
    for part in value.lstrip("!").split(","):
        low, _, high = part.partition("-")
        if not low.isdigit() or not 0 <= int(low) <= 65535:
            raise RouterOsError(f"invalid value for argument {name}")
        if high and (not high.isdigit() or int(high) > 65535 or int(high) < int(low)):
            raise RouterOsError(f"invalid value for argument {name}")
    return value


def check_interface_address(name: str, value: str) -> str:
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        raise RouterOsError(f"invalid value for argument {name}") from None
    return value if "/" in value else f"{value}/32"


Checker = Callable[[str, str], str]


def enum(*choices: str) -> Checker:
    def check(name: str, value: str) -> str:
        if value not in choices:
            raise RouterOsError(f"input does not match any value of {name}")
        return value

    return check


def any_text(name: str, value: str) -> str:
    return value


PROTOCOLS = (
    "tcp", "udp", "icmp", "icmpv6", "gre", "ipsec-esp", "ipsec-ah", "ospf", "sctp", "udp-lite",
    "dccp", "vrrp", "igmp", "pim", "ipip", "ipv6-encap", "l2tp", "rsvp", "etherip", "ddp",
)  # fmt: skip
PORT_PROTOCOLS = ("tcp", "udp", "udp-lite", "dccp", "sctp")
CONNECTION_STATES = ("established", "related", "new", "invalid", "untracked")


def check_protocol(name: str, value: str) -> str:
    if value in PROTOCOLS or (value.isdigit() and 0 <= int(value) <= 255):
        return value
    raise RouterOsError(f"input does not match any value of {name}")


def check_states(name: str, value: str) -> str:
    for state in value.lstrip("!").split(","):
        if state not in CONNECTION_STATES:
            raise RouterOsError(f"input does not match any value of {name}")
    return value


@dataclass(frozen=True)
class Prop:
    """One property: how to check it, and whether clients may set it."""

    check: Checker = any_text
    readonly: bool = False
    boolean: bool = False


def flag() -> Prop:
    return Prop(check_bool, boolean=True)


def readonly(boolean: bool = False) -> Prop:
    return Prop(readonly=True, boolean=boolean)


ItemCheck = Callable[[Item], None]


@dataclass(frozen=True)
class Menu:
    """A console menu such as ``/ip firewall filter``."""

    path: tuple[str, ...]
    props: Mapping[str, Prop]
    defaults: Mapping[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    ordered: bool = False  # position matters: place-before and move are supported
    fixed: bool = False  # no add/remove (physical interfaces)
    key: str | None = None  # unique name usable instead of .id
    first_id: int = 1
    checks: tuple[ItemCheck, ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()

    @property
    def rest_path(self) -> str:
        return "/".join(self.path)

    @property
    def cli_path(self) -> str:
        return "/" + " ".join(self.path)


def _filter_checks(item: Item) -> None:
    if item.get("action") == "jump" and not item.get("jump-target"):
        raise RouterOsError("failure: jump-target not specified")
    for port in ("src-port", "dst-port"):
        if item.get(port) and item.get("protocol") not in PORT_PROTOCOLS:
            raise RouterOsError(
                f"failure: {port} can be used only with tcp, udp, udp-lite, dccp or sctp protocol"
            )


def _nat_checks(item: Item) -> None:
    _filter_checks(item)
    if item.get("action") == "masquerade" and item.get("chain") == "dstnat":
        raise RouterOsError("failure: masquerade is only valid in srcnat chain")


def _bgp_checks(item: Item) -> None:
    if not item.get("local.role"):
        raise RouterOsError("failure: local.role must be set")


FILTER_ACTIONS = (
    "accept", "drop", "reject", "jump", "return", "passthrough", "log", "tarpit",
    "fasttrack-connection", "add-src-to-address-list", "add-dst-to-address-list",
)  # fmt: skip
NAT_ACTIONS = (
    "accept", "dst-nat", "src-nat", "masquerade", "netmap", "redirect", "return", "jump",
    "passthrough", "same", "endpoint-independent-nat", "log",
)  # fmt: skip

_MATCHERS: dict[str, Prop] = {
    "src-address": Prop(check_address),
    "dst-address": Prop(check_address),
    "src-address-list": Prop(),
    "dst-address-list": Prop(),
    "protocol": Prop(check_protocol),
    "src-port": Prop(check_ports),
    "dst-port": Prop(check_ports),
    "in-interface": Prop(),
    "out-interface": Prop(),
    "in-interface-list": Prop(),
    "out-interface-list": Prop(),
    "connection-state": Prop(check_states),
    "jump-target": Prop(),
    "comment": Prop(),
    "disabled": flag(),
    "log": flag(),
    "log-prefix": Prop(),
    "bytes": readonly(),
    "packets": readonly(),
    "dynamic": readonly(boolean=True),
    "invalid": readonly(boolean=True),
}
_RULE_DEFAULTS = {
    "bytes": "0",
    "packets": "0",
    "disabled": "false",
    "dynamic": "false",
    "invalid": "false",
    "log": "false",
    "log-prefix": "",
}

FIREWALL_FILTER = Menu(
    path=("ip", "firewall", "filter"),
    props={
        "chain": Prop(),
        "action": Prop(enum(*FILTER_ACTIONS)),
        "reject-with": Prop(),
        **_MATCHERS,
    },
    defaults={"action": "accept", **_RULE_DEFAULTS},
    required=("chain",),
    ordered=True,
    checks=(_filter_checks,),
)

FIREWALL_NAT = Menu(
    path=("ip", "firewall", "nat"),
    props={
        "chain": Prop(),
        "action": Prop(enum(*NAT_ACTIONS)),
        "to-addresses": Prop(check_address),
        "to-ports": Prop(check_ports),
        **_MATCHERS,
    },
    defaults={"action": "accept", **_RULE_DEFAULTS},
    required=("chain",),
    ordered=True,
    checks=(_nat_checks,),
)

IP_ROUTE = Menu(
    path=("ip", "route"),
    props={
        "dst-address": Prop(check_prefix),
        "gateway": Prop(),
        "distance": Prop(lambda n, v: check_int(n, v, 1, 255)),
        "routing-table": Prop(),
        "scope": Prop(lambda n, v: check_int(n, v, 0, 255)),
        "target-scope": Prop(lambda n, v: check_int(n, v, 0, 255)),
        "comment": Prop(),
        "disabled": flag(),
        "blackhole": flag(),
        "active": readonly(boolean=True),
        "dynamic": readonly(boolean=True),
        "static": readonly(boolean=True),
        "inactive": readonly(boolean=True),
        "suppress-hw-offload": flag(),
    },
    defaults={
        "dst-address": "0.0.0.0/0",
        "distance": "1",
        "routing-table": "main",
        "scope": "30",
        "target-scope": "10",
        "disabled": "false",
        "dynamic": "false",
        "static": "true",
        "inactive": "false",
        "active": "true",
        "suppress-hw-offload": "false",
    },
    first_id=0x80000001,
)

BGP_CONNECTION = Menu(
    path=("routing", "bgp", "connection"),
    props={
        "name": Prop(),
        "as": Prop(lambda n, v: check_int(n, v, 1, 4294967295)),
        "remote.address": Prop(check_address),
        "remote.as": Prop(lambda n, v: check_int(n, v, 1, 4294967295)),
        "local.role": Prop(enum("ebgp", "ibgp", "ebgp-customer", "ebgp-provider", "ebgp-peer", "ebgp-rs")),
        "local.address": Prop(check_address),
        "router-id": Prop(check_address),
        "templates": Prop(),
        "multihop": flag(),
        "routing-table": Prop(),
        "comment": Prop(),
        "disabled": flag(),
        "inactive": readonly(boolean=True),
    },
    defaults={"disabled": "false", "inactive": "false", "multihop": "false", "routing-table": "main"},
    required=("as", "remote.address"),
    key="name",
    checks=(_bgp_checks,),
    unique=(("name",),),
)

INTERFACE = Menu(
    path=("interface",),
    props={
        "name": Prop(),
        "default-name": readonly(),
        "type": readonly(),
        "mtu": Prop(lambda n, v: check_int(n, v, 64, 9000)),
        "actual-mtu": readonly(),
        "mac-address": readonly(),
        "comment": Prop(),
        "disabled": flag(),
        "running": readonly(boolean=True),
    },
    defaults={"mtu": "1500", "disabled": "false"},
    key="name",
    fixed=True,
)

IP_ADDRESS = Menu(
    path=("ip", "address"),
    props={
        "address": Prop(check_interface_address),
        "interface": Prop(),
        "network": Prop(check_address),
        "comment": Prop(),
        "disabled": flag(),
        "actual-interface": readonly(),
        "dynamic": readonly(boolean=True),
        "invalid": readonly(boolean=True),
    },
    defaults={"disabled": "false", "dynamic": "false", "invalid": "false"},
    required=("address", "interface"),
    unique=(("address", "interface"),),
)

MENUS: tuple[Menu, ...] = (FIREWALL_FILTER, FIREWALL_NAT, IP_ROUTE, BGP_CONNECTION, INTERFACE, IP_ADDRESS)
MENU_BY_PATH: dict[tuple[str, ...], Menu] = {menu.path: menu for menu in MENUS}

ID_RE = re.compile(r"^\*[0-9A-Fa-f]+$")


def format_id(number: int) -> str:
    return f"*{number:X}"
