"""The slice of the VyOS 1.4 configuration schema the simulator understands.

Node kinds mirror the VyOS interface definitions: containers (``firewall``), tag nodes whose next
path word is a key (``rule 10``), leaves with one or many values, and valueless leaves (``log``).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

Validator = Callable[[str], bool]


def any_text(value: str) -> bool:
    return True


def integer(low: int, high: int) -> Validator:
    def check(value: str) -> bool:
        return value.isdigit() and low <= int(value) <= high

    return check


def one_of(*choices: str) -> Validator:
    def check(value: str) -> bool:
        return value in choices

    return check


def ipv4(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ipv4_prefix(value: str) -> bool:
    """A network prefix with host bits clear, as VyOS requires for routes."""
    try:
        ipaddress.IPv4Network(value, strict=True)
    except ValueError:
        return False
    return "/" in value


def ip_cidr(value: str) -> bool:
    try:
        ipaddress.ip_interface(value)
    except ValueError:
        return False
    return "/" in value


def address_match(value: str) -> bool:
    """Firewall/NAT address: host, prefix or range, optionally negated."""
    text = value[1:] if value.startswith("!") else value
    if "-" in text:
        low, _, high = text.partition("-")
        return ip(low) and ip(high)
    if "/" in text:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            return False
        return True
    return ip(text)


SERVICE_NAMES = {"http", "https", "ssh", "domain", "ntp", "smtp", "ftp", "telnet", "snmp", "bgp"}


def ports(value: str) -> bool:
    text = value[1:] if value.startswith("!") else value
    for part in text.split(","):
        low, _, high = part.partition("-")
        if part in SERVICE_NAMES:
            continue
        if not low.isdigit() or not 1 <= int(low) <= 65535:
            return False
        if high and (not high.isdigit() or not int(low) <= int(high) <= 65535):
            return False
    return True


PROTOCOL_NAMES = {
    "all",
    "tcp",
    "udp",
    "tcp_udp",
    "icmp",
    "ipv6-icmp",
    "gre",
    "esp",
    "ah",
    "ospf",
    "vrrp",
    "sctp",
}


def protocol(value: str) -> bool:
    text = value[1:] if value.startswith("!") else value
    return text in PROTOCOL_NAMES or (text.isdigit() and 0 <= int(text) <= 255)


def name_text(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9][-_A-Za-z0-9.]{0,62}", value))


def interface_name(value: str) -> bool:
    return bool(re.fullmatch(r"(eth|lo|bond|br|wg|vti|tun|dum)\d*(\.\d+)?|lo|[A-Za-z0-9+*_.-]{1,16}", value))


@dataclass(frozen=True)
class Leaf:
    check: Validator = any_text
    multi: bool = False


@dataclass(frozen=True)
class Flag:
    """A valueless leaf such as ``disable`` or ``log``."""


@dataclass(frozen=True)
class Container:
    children: Mapping[str, Node] = field(default_factory=dict)


@dataclass(frozen=True)
class Tag:
    """A tag node: the next path word is a key checked by ``check``."""

    check: Validator
    child: Container
    numeric: bool = False


Node = Leaf | Flag | Container | Tag


def _endpoint() -> Container:
    return Container(
        {
            "address": Leaf(address_match),
            "port": Leaf(ports),
            "group": Container(
                {
                    "address-group": Leaf(name_text),
                    "network-group": Leaf(name_text),
                    "port-group": Leaf(name_text),
                }
            ),
        }
    )


def _interface_match() -> Container:
    return Container({"name": Leaf(interface_name), "group": Leaf(name_text)})


FIREWALL_ACTIONS = ("accept", "drop", "jump", "reject", "return", "continue", "queue", "synproxy")
RULE_NUMBER = integer(1, 999999)

FIREWALL_RULE = Container(
    {
        "action": Leaf(one_of(*FIREWALL_ACTIONS)),
        "description": Leaf(),
        "destination": _endpoint(),
        "source": _endpoint(),
        "protocol": Leaf(protocol),
        "state": Leaf(one_of("established", "related", "new", "invalid"), multi=True),
        "inbound-interface": _interface_match(),
        "outbound-interface": _interface_match(),
        "jump-target": Leaf(name_text),
        "icmp": Container({"type-name": Leaf()}),
        "log": Flag(),
        "disable": Flag(),
    }
)

RULESET = Container(
    {
        "default-action": Leaf(one_of("accept", "drop", "reject", "jump", "return", "continue")),
        "default-log": Flag(),
        "description": Leaf(),
        "rule": Tag(RULE_NUMBER, FIREWALL_RULE, numeric=True),
    }
)

BASE_CHAIN = Container({"filter": RULESET})


def _nat_rule(interface_key: str) -> Container:
    return Container(
        {
            "description": Leaf(),
            interface_key: _interface_match(),
            "source": _endpoint(),
            "destination": _endpoint(),
            "protocol": Leaf(protocol),
            "translation": Container({"address": Leaf(any_text), "port": Leaf(ports)}),
            "exclude": Flag(),
            "disable": Flag(),
            "log": Flag(),
        }
    )


BGP_AFI = Container(
    {
        "nexthop-self": Flag(),
        "route-map": Container({"import": Leaf(name_text), "export": Leaf(name_text)}),
        "soft-reconfiguration": Container({"inbound": Flag()}),
    }
)

SCHEMA = Container(
    {
        "interfaces": Container(
            {
                "ethernet": Tag(
                    lambda v: bool(re.fullmatch(r"eth\d+", v)),
                    Container(
                        {
                            "address": Leaf(lambda v: v in ("dhcp", "dhcpv6") or ip_cidr(v), multi=True),
                            "description": Leaf(),
                            "mtu": Leaf(integer(68, 16000)),
                            "hw-id": Leaf(),
                            "disable": Flag(),
                        }
                    ),
                ),
                "loopback": Tag(
                    lambda v: v == "lo",
                    Container({"address": Leaf(ip_cidr, multi=True), "description": Leaf()}),
                ),
            }
        ),
        "system": Container(
            {
                "host-name": Leaf(name_text),
                "config-management": Container(
                    {
                        "commit-confirm": Container({"action": Leaf(one_of("reload", "reboot"))}),
                        "commit-revisions": Leaf(integer(1, 65535)),
                    }
                ),
                "name-server": Leaf(ip, multi=True),
                "time-zone": Leaf(),
                "login": Container(
                    {
                        "user": Tag(
                            name_text,
                            Container(
                                {
                                    "authentication": Container(
                                        {"plaintext-password": Leaf(), "encrypted-password": Leaf()}
                                    ),
                                    "full-name": Leaf(),
                                }
                            ),
                        )
                    }
                ),
            }
        ),
        "service": Container(
            {
                "https": Container(
                    {
                        "api": Container(
                            {
                                "keys": Container({"id": Tag(name_text, Container({"key": Leaf()}))}),
                                "rest": Flag(),
                                "strict": Flag(),
                            }
                        ),
                        "listen-address": Leaf(ip, multi=True),
                        "port": Leaf(integer(1, 65535)),
                    }
                ),
                "ssh": Container(
                    {"port": Leaf(integer(1, 65535)), "disable-password-authentication": Flag()}
                ),
            }
        ),
        "firewall": Container(
            {
                "ipv4": Container(
                    {
                        "forward": BASE_CHAIN,
                        "input": BASE_CHAIN,
                        "output": BASE_CHAIN,
                        "name": Tag(name_text, RULESET),
                    }
                ),
                "group": Container(
                    {
                        "address-group": Tag(
                            name_text, Container({"address": Leaf(address_match, multi=True)})
                        ),
                        "network-group": Tag(
                            name_text, Container({"network": Leaf(address_match, multi=True)})
                        ),
                        "port-group": Tag(name_text, Container({"port": Leaf(ports, multi=True)})),
                    }
                ),
            }
        ),
        "nat": Container(
            {
                "source": Container({"rule": Tag(integer(1, 999999), _nat_rule("outbound-interface"), True)}),
                "destination": Container(
                    {"rule": Tag(integer(1, 999999), _nat_rule("inbound-interface"), True)}
                ),
            }
        ),
        "protocols": Container(
            {
                "static": Container(
                    {
                        "route": Tag(
                            ipv4_prefix,
                            Container(
                                {
                                    "next-hop": Tag(
                                        ipv4,
                                        Container({"distance": Leaf(integer(1, 255)), "disable": Flag()}),
                                    ),
                                    "blackhole": Container({"distance": Leaf(integer(1, 255))}),
                                    "interface": Tag(
                                        interface_name, Container({"distance": Leaf(integer(1, 255))})
                                    ),
                                    "description": Leaf(),
                                    "disable": Flag(),
                                }
                            ),
                        )
                    }
                ),
                "bgp": Container(
                    {
                        "system-as": Leaf(integer(1, 4294967294)),
                        "parameters": Container({"router-id": Leaf(ipv4)}),
                        "neighbor": Tag(
                            ip,
                            Container(
                                {
                                    "remote-as": Leaf(
                                        lambda v: v in ("internal", "external") or integer(1, 4294967294)(v)
                                    ),
                                    "description": Leaf(),
                                    "update-source": Leaf(),
                                    "ebgp-multihop": Leaf(integer(1, 255)),
                                    "password": Leaf(),
                                    "shutdown": Flag(),
                                    "address-family": Container(
                                        {"ipv4-unicast": BGP_AFI, "ipv6-unicast": BGP_AFI}
                                    ),
                                }
                            ),
                        ),
                        "address-family": Container(
                            {
                                "ipv4-unicast": Container(
                                    {"network": Tag(ipv4_prefix, Container({"route-map": Leaf(name_text)}))}
                                )
                            }
                        ),
                    }
                ),
            }
        ),
    }
)
