"""OPNsense MVC field types: value normalisation, validation messages and output shapes.

Each field mirrors one PHP field class closely enough that clients see the same strings: values
are always strings, booleans are "0"/"1", list fields render as ``{key: {value, selected}}`` maps
in ``get*`` actions and as plain strings (plus a ``%field`` label) in ``search*`` rows.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REQUIRED_MESSAGE = "A value is required."
OPTION_MESSAGE = "option not in list"


@dataclass(frozen=True)
class ModelContext:
    """Appliance facts some fields validate against (interfaces, gateways)."""

    interfaces: Mapping[str, str]  # name -> description, e.g. {"lan": "LAN"}
    gateways: Mapping[str, str]  # name -> address


def php_string(raw: Any) -> str:
    """How PHP casts a decoded JSON value to a field string."""
    if raw is True:
        return "1"
    if raw is False or raw is None:
        return ""
    if isinstance(raw, list):
        return ",".join(php_string(item) for item in raw)
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    return str(raw)


def is_ip_or_subnet(value: str) -> bool:
    try:
        if "/" in value:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Field:
    """Base field: free text."""

    required: bool = False
    default: str = ""
    message: str | None = None

    def normalize(self, value: str) -> str:
        return value

    def validate(self, value: str, ctx: ModelContext) -> list[str]:
        if value == "":
            return [REQUIRED_MESSAGE] if self.required else []
        return self.check(value, ctx)

    def check(self, value: str, ctx: ModelContext) -> list[str]:
        return []

    def view(self, value: str, ctx: ModelContext) -> Any:
        return value

    def label(self, value: str, ctx: ModelContext) -> str | None:
        """The ``%field`` display value in search rows, or None when there is none."""
        return None


@dataclass(frozen=True)
class TextField(Field):
    mask: str | None = None

    def check(self, value: str, ctx: ModelContext) -> list[str]:
        if self.mask and not re.fullmatch(self.mask, value):
            return [self.message or "text does not validate."]
        return []


@dataclass(frozen=True)
class BooleanField(Field):
    def check(self, value: str, ctx: ModelContext) -> list[str]:
        return [] if value in ("0", "1") else [self.message or "value should be a boolean (0,1)"]


@dataclass(frozen=True)
class IntegerField(Field):
    minimum: int | None = None
    maximum: int | None = None

    def check(self, value: str, ctx: ModelContext) -> list[str]:
        message = self.message or f"Value should be between {self.minimum} and {self.maximum}."
        if not re.fullmatch(r"-?\d+", value):
            return [message]
        number = int(value)
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            return [message]
        return []


@dataclass(frozen=True)
class SequenceField(IntegerField):
    """FilterSequenceField: a new record gets max(existing, minimum) + 1."""


@dataclass(frozen=True)
class ListField(Field):
    """BaseListField: a value (or comma list) out of a fixed option list."""

    options: Mapping[str, str] = field(default_factory=dict)
    multiple: bool = False
    blank_desc: str = "none"

    def option_list(self, ctx: ModelContext) -> Mapping[str, str]:
        return self.options

    def check(self, value: str, ctx: ModelContext) -> list[str]:
        options = self.option_list(ctx)
        items = value.split(",") if self.multiple else [value]
        if all(item in options for item in items):
            return []
        return [self.message or OPTION_MESSAGE]

    def view(self, value: str, ctx: ModelContext) -> Any:
        result: dict[str, dict[str, Any]] = {}
        if not self.required and not self.multiple:
            result[""] = {"value": self.blank_desc, "selected": 1 if value == "" else 0}
        selected = set(value.split(",")) if value else set()
        for key, description in self.option_list(ctx).items():
            result[key] = {"value": description, "selected": 1 if key in selected else 0}
        return result

    def label(self, value: str, ctx: ModelContext) -> str | None:
        options = self.option_list(ctx)
        if not value:
            return "" if self.required or self.multiple else self.blank_desc
        return ",".join(options.get(item, item) for item in value.split(","))


@dataclass(frozen=True)
class OptionField(ListField):
    pass


PROTOCOLS = (
    "ICMP", "IGMP", "GGP", "IPENCAP", "ST2", "TCP", "CBT", "EGP", "IGP", "PUP", "UDP", "HMP",
    "XNS-IDP", "RDP", "ISO-TP4", "DCCP", "XTP", "DDP", "IDPR-CMTP", "IPV6", "IDRP", "RSVP", "GRE",
    "ESP", "AH", "SKIP", "IPV6-ICMP", "EIGRP", "OSPF", "ETHERIP", "ENCAP", "PIM", "CARP", "VRRP",
    "L2TP", "ISIS", "SCTP", "PFSYNC", "UDPLITE", "DIVERT",
)  # fmt: skip


@dataclass(frozen=True)
class ProtocolField(ListField):
    """Protocol names from /etc/protocols, upper-cased on write (``any`` stays lower case)."""

    lower_case: bool = False

    def normalize(self, value: str) -> str:
        if value.lower() == "any":
            return "any"
        return value.lower() if self.lower_case else value.upper()

    def option_list(self, ctx: ModelContext) -> Mapping[str, str]:
        options: dict[str, str] = {}
        if self.required:
            options["any"] = "any"
        for name in (*PROTOCOLS, "TCP/UDP"):
            options[name.lower() if self.lower_case else name] = name
        return options


@dataclass(frozen=True)
class InterfaceField(ListField):
    def option_list(self, ctx: ModelContext) -> Mapping[str, str]:
        return ctx.interfaces


@dataclass(frozen=True)
class GatewayField(ListField):
    """JsonKeyValueStoreField fed by ``interface gateways list``."""

    def option_list(self, ctx: ModelContext) -> Mapping[str, str]:
        return {name: f"{name} - {address}" for name, address in ctx.gateways.items()}


@dataclass(frozen=True)
class NetworkAliasField(Field):
    """Hosts, networks, ``any``, ``(self)``, interface nets (``lan``) and addresses (``lanip``)."""

    multiple: bool = False

    def check(self, value: str, ctx: ModelContext) -> list[str]:
        specials = {"any", "(self)"} | set(ctx.interfaces) | {f"{name}ip" for name in ctx.interfaces}
        items = value.split(",") if self.multiple else [value]
        for item in items:
            if item not in specials and not is_ip_or_subnet(item):
                # The PHP message says "source" whatever the field is.
                return [f"{value} is not a valid source IP address or alias."]
        return []


@dataclass(frozen=True)
class NetworkField(Field):
    netmask_required: bool = False

    def check(self, value: str, ctx: ModelContext) -> list[str]:
        if is_ip_or_subnet(value) and (not self.netmask_required or "/" in value):
            return []
        return [self.message or "please specify a valid network segment or address (IPv4/IPv6) "]


WELL_KNOWN_PORTS = {
    "domain": 53, "ftp": 21, "http": 80, "https": 443, "imap": 143, "imaps": 993, "isakmp": 500,
    "ipsec-nat-t": 4500, "ldap": 389, "ldaps": 636, "ms-wbt-server": 3389, "ntp": 123,
    "openvpn": 1194, "pop3": 110, "pop3s": 995, "smtp": 25, "snmp": 161, "ssh": 22,
    "submission": 587, "telnet": 23, "tftp": 69,
}  # fmt: skip


@dataclass(frozen=True)
class PortField(Field):
    """Port numbers, ``a-b`` ranges (a < b), well-known names and ``any``."""

    well_known: bool = True
    ranges: bool = True

    def normalize(self, value: str) -> str:
        lowered = value.strip().lower()
        if self.well_known and (lowered == "any" or lowered in WELL_KNOWN_PORTS):
            return lowered
        return value

    def check(self, value: str, ctx: ModelContext) -> list[str]:
        message = self.message or "Please specify a valid port number (1-65535)."
        for item in value.split(","):
            if self.well_known and (item == "any" or item in WELL_KNOWN_PORTS):
                continue
            if _valid_port(item):
                continue
            if self.ranges and "-" in item:
                low, _, high = item.partition("-")
                if _valid_port(low) and _valid_port(high) and int(low) < int(high):
                    continue
            return [message]
        return []


def _valid_port(text: str) -> bool:
    return text.isdigit() and text == text.strip() and 1 <= int(text) <= 65535
