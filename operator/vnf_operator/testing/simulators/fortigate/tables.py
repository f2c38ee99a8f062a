"""FortiOS cmdb tables the simulator models, and how their attributes are checked and shown."""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]


class CmdbError(Exception):
    """A FortiOS error: HTTP status plus the negative ``error`` code."""

    def __init__(self, http_status: int, error: int, detail: str = "") -> None:
        super().__init__(detail or str(error))
        self.http_status = http_status
        self.error = error
        self.detail = detail


NOT_FOUND = -3
DUPLICATE = -5
INVALID_VALUE = -651


def invalid(detail: str) -> CmdbError:
    return CmdbError(500, INVALID_VALUE, detail)


@dataclass(frozen=True)
class Attr:
    kind: str = "str"  # str | int | enum | names | ipmask | ip | ranges | table
    default: Any = ""
    choices: tuple[str, ...] = ()
    refs: tuple[str, ...] = ()  # datasource tables for ``names`` (and ``str`` references)
    extra_refs: tuple[str, ...] = ()  # literal values always accepted (e.g. "any", "all")
    required: bool = False
    low: int = 0
    high: int = 4294967295
    key: str = "name"  # member key for ``names`` / ``ranges`` lists
    children: Mapping[str, Attr] | None = None  # ``table`` kind: sub-table attributes


ENABLE = ("enable", "disable")
# FortiOS shows unset addresses as 0.0.0.0 (a value, not a listen address).
UNSET_IP = ".".join(["0"] * 4)


def to_ipmask(value: str) -> str:
    """``10.0.0.0/8`` or ``10.0.0.0 255.0.0.0`` -> ``10.0.0.0 255.0.0.0`` (FortiOS form)."""
    text = value.strip()
    if " " in text:
        address, mask = text.split(None, 1)
        network = ipaddress.IPv4Network(f"{address}/{mask}", strict=False)
        return f"{address} {network.netmask}"
    network = ipaddress.IPv4Network(text, strict=False)
    address = text.split("/", 1)[0]
    return f"{address} {network.netmask}"


Lookup = Callable[[str], set[str]]


def coerce(name: str, attr: Attr, raw: Any, lookup: Lookup) -> Any:
    """Check one attribute value; FortiOS answers -651 for values it cannot parse."""
    if attr.kind == "int":
        try:
            number = int(raw)
        except (TypeError, ValueError):
            raise invalid(f"{name}: invalid integer") from None
        if not attr.low <= number <= attr.high:
            raise invalid(f"{name}: value out of range")
        return number
    if attr.kind == "enum":
        if raw not in attr.choices:
            raise invalid(f"{name}: invalid value {raw!r}")
        return raw
    if attr.kind == "ipmask":
        try:
            return to_ipmask(str(raw))
        except ValueError:
            raise invalid(f"{name}: invalid IP/netmask") from None
    if attr.kind == "ip":
        try:
            return str(ipaddress.IPv4Address(str(raw)))
        except ValueError:
            raise invalid(f"{name}: invalid IP address") from None
    if attr.kind in ("names", "ranges"):
        if not isinstance(raw, list) or not all(isinstance(item, dict) and attr.key in item for item in raw):
            raise invalid(f"{name}: expected a list of {{{attr.key!r}: ...}} objects")
        values = [str(item[attr.key]) for item in raw]
        if attr.refs:
            known = set(attr.extra_refs)
            for table in attr.refs:
                known |= lookup(table)
            missing = [value for value in values if value not in known]
            if missing:
                raise CmdbError(424, NOT_FOUND, f"{name}: entry not found in datasource: {missing[0]}")
        return [{attr.key: value, "q_origin_key": value} for value in values]
    if attr.kind == "table":
        if not isinstance(raw, list):
            raise invalid(f"{name}: expected a list")
        return raw
    text = str(raw)
    if attr.refs and text:
        known = set(attr.extra_refs)
        for table in attr.refs:
            known |= lookup(table)
        if text not in known:
            raise CmdbError(424, NOT_FOUND, f"{name}: entry not found in datasource: {text}")
    return text


@dataclass(frozen=True)
class TableSpec:
    path: str  # "firewall/policy"
    mkey: str
    attrs: Mapping[str, Attr]
    mkey_int: bool = False
    auto_mkey: bool = False  # 0 (or absent) on POST picks the next free number
    read_only: bool = False
    defaults_extra: Mapping[str, Any] = field(default_factory=dict)

    def new_row(self) -> Row:
        row: Row = {}
        for name, attr in self.attrs.items():
            default = attr.default
            row[name] = list(default) if isinstance(default, list) else default
        row.update(self.defaults_extra)
        return row


NAMES_INTF = Attr(kind="names", default=[], refs=("system/interface",), extra_refs=("any",), required=True)
NAMES_ADDR = Attr(
    kind="names", default=[], refs=("firewall/address", "firewall/vip"), extra_refs=("all",), required=True
)

POLICY = TableSpec(
    path="firewall/policy",
    mkey="policyid",
    mkey_int=True,
    auto_mkey=True,
    attrs={
        "policyid": Attr(kind="int", default=0, high=4294967294),
        "status": Attr(kind="enum", default="enable", choices=ENABLE),
        "name": Attr(default=""),
        "uuid": Attr(default=""),
        "srcintf": NAMES_INTF,
        "dstintf": NAMES_INTF,
        "action": Attr(kind="enum", default="deny", choices=("accept", "deny", "ipsec")),
        "srcaddr": NAMES_ADDR,
        "dstaddr": NAMES_ADDR,
        "schedule": Attr(default="", refs=("firewall.schedule/recurring",), required=True),
        "service": Attr(
            kind="names", default=[], refs=("firewall.service/custom",), extra_refs=("ALL",), required=True
        ),
        "nat": Attr(kind="enum", default="disable", choices=ENABLE),
        "ippool": Attr(kind="enum", default="disable", choices=ENABLE),
        "poolname": Attr(kind="names", default=[]),
        "logtraffic": Attr(kind="enum", default="utm", choices=("all", "utm", "disable")),
        "comments": Attr(default=""),
    },
)

STATIC_ROUTE = TableSpec(
    path="router/static",
    mkey="seq-num",
    mkey_int=True,
    auto_mkey=True,
    attrs={
        "seq-num": Attr(kind="int", default=0),
        "status": Attr(kind="enum", default="enable", choices=ENABLE),
        "dst": Attr(kind="ipmask", default="0.0.0.0 0.0.0.0"),
        "gateway": Attr(kind="ip", default=UNSET_IP),
        "distance": Attr(kind="int", default=10, low=1, high=255),
        "weight": Attr(kind="int", default=0, high=255),
        "priority": Attr(kind="int", default=1, high=65535),
        "device": Attr(default="", refs=("system/interface",)),
        "comment": Attr(default=""),
        "blackhole": Attr(kind="enum", default="disable", choices=ENABLE),
    },
)

VIP = TableSpec(
    path="firewall/vip",
    mkey="name",
    attrs={
        "name": Attr(),
        "uuid": Attr(default=""),
        "comment": Attr(default=""),
        "type": Attr(
            kind="enum", default="static-nat", choices=("static-nat", "server-load-balance", "fqdn")
        ),
        "extip": Attr(default=UNSET_IP),
        "mappedip": Attr(kind="ranges", default=[], key="range"),
        "extintf": Attr(default="any", refs=("system/interface",), extra_refs=("any",)),
        "portforward": Attr(kind="enum", default="disable", choices=ENABLE),
        "protocol": Attr(kind="enum", default="tcp", choices=("tcp", "udp", "sctp", "icmp")),
        "extport": Attr(default=""),
        "mappedport": Attr(default=""),
        "ldb-method": Attr(
            kind="enum", default="static", choices=("static", "round-robin", "weighted", "least-session")
        ),
        "realservers": Attr(kind="table", default=[]),
    },
)

ADDRESS = TableSpec(
    path="firewall/address",
    mkey="name",
    attrs={
        "name": Attr(),
        "uuid": Attr(default=""),
        "type": Attr(kind="enum", default="ipmask", choices=("ipmask", "iprange", "fqdn")),
        "subnet": Attr(kind="ipmask", default="0.0.0.0 0.0.0.0"),
        "comment": Attr(default=""),
    },
)

INTERFACE = TableSpec(
    path="system/interface",
    mkey="name",
    attrs={
        "name": Attr(),
        "vdom": Attr(default="root"),
        "ip": Attr(kind="ipmask", default="0.0.0.0 0.0.0.0"),
        "allowaccess": Attr(default=""),
        "status": Attr(kind="enum", default="up", choices=("up", "down")),
        "type": Attr(kind="enum", default="physical", choices=("physical", "vlan", "loopback", "aggregate")),
        "alias": Attr(default=""),
        "description": Attr(default=""),
        "interface": Attr(default=""),
        "vlanid": Attr(kind="int", default=0, high=4094),
        "mtu": Attr(kind="int", default=1500, low=68, high=9216),
    },
)

SERVICE = TableSpec(
    path="firewall.service/custom",
    mkey="name",
    read_only=True,
    attrs={"name": Attr(), "protocol": Attr(default="TCP/UDP/SCTP"), "tcp-portrange": Attr(default="")},
)

SCHEDULE = TableSpec(
    path="firewall.schedule/recurring",
    mkey="name",
    read_only=True,
    attrs={"name": Attr(), "day": Attr(default="sunday monday tuesday wednesday thursday friday saturday")},
)

NEIGHBOR_ATTRS: Mapping[str, Attr] = {
    "ip": Attr(kind="ip"),
    "remote-as": Attr(kind="int", default=0),
    "description": Attr(default=""),
    "update-source": Attr(default=""),
    "ebgp-enforce-multihop": Attr(kind="enum", default="disable", choices=ENABLE),
    "shutdown": Attr(kind="enum", default="disable", choices=ENABLE),
    "soft-reconfiguration": Attr(kind="enum", default="disable", choices=ENABLE),
}

BGP_NEIGHBOR = TableSpec(path="router/bgp/neighbor", mkey="ip", attrs=NEIGHBOR_ATTRS)

BGP_ATTRS: Mapping[str, Attr] = {
    "as": Attr(kind="int", default=0),
    "router-id": Attr(kind="ip", default=UNSET_IP),
    "keepalive-timer": Attr(kind="int", default=60, high=65535),
    "holdtime-timer": Attr(kind="int", default=180, high=65535),
    "ebgp-multipath": Attr(kind="enum", default="disable", choices=ENABLE),
    "neighbor": Attr(kind="table", default=[], children=NEIGHBOR_ATTRS),
}

TABLES: tuple[TableSpec, ...] = (POLICY, STATIC_ROUTE, VIP, ADDRESS, INTERFACE, SERVICE, SCHEDULE)


def new_uuid() -> str:
    return str(uuid.uuid4())
