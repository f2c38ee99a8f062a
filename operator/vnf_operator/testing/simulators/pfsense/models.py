"""pfSense REST v2 models: fields, defaults and the validation errors pfrest raises."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]


class ApiError(Exception):
    """An error envelope: HTTP code plus pfrest's ``response_id``."""

    def __init__(self, code: int, response_id: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.response_id = response_id
        self.message = message


def required(name: str) -> ApiError:
    return ApiError(400, "FIELD_IS_REQUIRED", f"Field `{name}` is required.")


def invalid_choice(name: str, choices: tuple[str, ...]) -> ApiError:
    return ApiError(400, "FIELD_INVALID_CHOICE", f"Field `{name}` must be one of [{', '.join(choices)}].")


def invalid_type(name: str, kind: str) -> ApiError:
    return ApiError(400, "FIELD_INVALID_TYPE", f"Field `{name}` must be of type `{kind}`.")


Check = Callable[[str, Any, "Context"], None]


@dataclass(frozen=True)
class Context:
    interfaces: Mapping[str, str]
    gateways: Mapping[str, str]


@dataclass(frozen=True)
class Field:
    kind: str = "string"  # string | boolean | integer | array
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] | None = None
    allow_null: bool = False
    read_only: bool = False
    check: Check | None = None


def _is_address_spec(value: str, ctx: Context) -> bool:
    text = value[1:] if value.startswith("!") else value
    if text in ("any", "(self)") or text in ctx.interfaces or text.removesuffix("ip") in ctx.interfaces:
        return True
    try:
        if "/" in text:
            ipaddress.ip_network(text, strict=False)
        else:
            ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def address_spec(name: str, value: Any, ctx: Context) -> None:
    if not _is_address_spec(str(value), ctx):
        raise ApiError(
            400,
            "FIREWALL_RULE_FIELD_INVALID_ADDRESS",
            f"Field `{name}` must be a valid IP, subnet, alias, interface or `any`.",
        )


def port_spec(name: str, value: Any, ctx: Context) -> None:
    for part in str(value).replace(":", "-").split("-"):
        if not part.isdigit() or not 1 <= int(part) <= 65535:
            raise ApiError(400, "FIELD_INVALID_PORT", f"Field `{name}` must be a valid port or port range.")


def interface_ref(name: str, value: Any, ctx: Context) -> None:
    values = value if isinstance(value, list) else [value]
    for item in values:
        if item not in ctx.interfaces:
            raise invalid_choice(name, tuple(ctx.interfaces))


def gateway_ref(name: str, value: Any, ctx: Context) -> None:
    if value not in ctx.gateways:
        raise invalid_choice(name, tuple(ctx.gateways))


def cidr(name: str, value: Any, ctx: Context) -> None:
    try:
        ipaddress.ip_network(str(value), strict=True)
    except ValueError:
        raise ApiError(
            400, "STATIC_ROUTE_INVALID_NETWORK", f"Field `{name}` must be a valid subnet."
        ) from None
    if "/" not in str(value):
        raise ApiError(400, "STATIC_ROUTE_INVALID_NETWORK", f"Field `{name}` must be a valid subnet.")


PORT_PROTOCOLS = ("tcp", "udp", "tcp/udp")
FILTER_PROTOCOLS = (
    "any", "tcp", "udp", "tcp/udp", "icmp", "esp", "ah", "gre", "etherip", "ipv6", "igmp", "pim", "ospf",
    "carp", "pfsync",
)  # fmt: skip


def ports_need_tcp_udp(record: Record) -> None:
    for name in ("source_port", "destination_port"):
        if record.get(name) not in (None, "") and record.get("protocol") not in PORT_PROTOCOLS:
            raise ApiError(
                400,
                "FIREWALL_RULE_PORTS_ONLY_ALLOWED_FOR_TCP_UDP",
                f"Field `{name}` can only be set when `protocol` is `tcp`, `udp` or `tcp/udp`.",
            )


def forward_ports_required(record: Record) -> None:
    if record.get("protocol") in PORT_PROTOCOLS:
        for name in ("destination_port", "local_port"):
            if record.get(name) in (None, ""):
                raise required(name)


RecordCheck = Callable[[Record], None]


@dataclass(frozen=True)
class Model:
    """One config array (``filter/rule``, ``nat/rule``, ``staticroutes/route``...)."""

    name: str
    fields: Mapping[str, Field]
    subsystem: str
    apply_group: str  # which apply endpoint activates it: firewall | routing
    checks: tuple[RecordCheck, ...] = ()
    tracked: bool = False  # filter rules carry a stable ``tracker``
    timestamps: bool = field(default=False)


FIREWALL_RULE = Model(
    name="FirewallRule",
    fields={
        "type": Field(required=True, choices=("pass", "block", "reject")),
        "interface": Field(kind="array", required=True, check=interface_ref),
        "ipprotocol": Field(default="inet", choices=("inet", "inet6", "inet46")),
        "protocol": Field(allow_null=True, choices=FILTER_PROTOCOLS),
        "icmptype": Field(kind="array", default=[]),
        "source": Field(required=True, check=address_spec),
        "source_port": Field(allow_null=True, check=port_spec),
        "destination": Field(required=True, check=address_spec),
        "destination_port": Field(allow_null=True, check=port_spec),
        "descr": Field(default=""),
        "disabled": Field(kind="boolean", default=False),
        "log": Field(kind="boolean", default=False),
        "statetype": Field(
            default="keep state", choices=("keep state", "sloppy state", "synproxy state", "none")
        ),
        "tcp_flags_any": Field(kind="boolean", default=False),
        "gateway": Field(allow_null=True, check=gateway_ref),
        "sched": Field(allow_null=True),
        "dnpipe": Field(allow_null=True),
        "pdnpipe": Field(allow_null=True),
        "defaultqueue": Field(allow_null=True),
        "ackqueue": Field(allow_null=True),
        "floating": Field(kind="boolean", default=False),
        "quick": Field(kind="boolean", default=False),
        "direction": Field(allow_null=True, choices=("in", "out", "any")),
        "tracker": Field(kind="integer", read_only=True),
        "associated_rule_id": Field(read_only=True, allow_null=True),
        "created_time": Field(kind="integer", read_only=True),
        "created_by": Field(read_only=True),
        "updated_time": Field(kind="integer", read_only=True, allow_null=True),
        "updated_by": Field(read_only=True, allow_null=True),
    },
    subsystem="filter",
    apply_group="firewall",
    checks=(ports_need_tcp_udp,),
    tracked=True,
    timestamps=True,
)

PORT_FORWARD = Model(
    name="PortForward",
    fields={
        "interface": Field(required=True, check=interface_ref),
        "ipprotocol": Field(default="inet", choices=("inet", "inet6", "inet46")),
        "protocol": Field(
            required=True, choices=("tcp", "udp", "tcp/udp", "icmp", "esp", "ah", "gre", "any")
        ),
        "source": Field(required=True, check=address_spec),
        "source_port": Field(allow_null=True, check=port_spec),
        "destination": Field(required=True, check=address_spec),
        "destination_port": Field(allow_null=True, check=port_spec),
        "target": Field(required=True, check=address_spec),
        "local_port": Field(allow_null=True, check=port_spec),
        "disabled": Field(kind="boolean", default=False),
        "nordr": Field(kind="boolean", default=False),
        "nosync": Field(kind="boolean", default=False),
        "descr": Field(default=""),
        "natreflection": Field(allow_null=True, choices=("enable", "disable", "purenat")),
        "associated_rule_id": Field(default=""),
        "created_time": Field(kind="integer", read_only=True),
        "created_by": Field(read_only=True),
        "updated_time": Field(kind="integer", read_only=True, allow_null=True),
        "updated_by": Field(read_only=True, allow_null=True),
    },
    subsystem="natconf",
    apply_group="firewall",
    checks=(forward_ports_required,),
    timestamps=True,
)

OUTBOUND_MAPPING = Model(
    name="OutboundNATMapping",
    fields={
        "interface": Field(required=True, check=interface_ref),
        "protocol": Field(allow_null=True, choices=("any", "tcp", "udp", "tcp/udp", "icmp")),
        "poolopts": Field(allow_null=True, choices=("round-robin", "random", "source-hash", "bitmask")),
        "source": Field(required=True, check=address_spec),
        "source_port": Field(allow_null=True, check=port_spec),
        "destination": Field(required=True, check=address_spec),
        "destination_port": Field(allow_null=True, check=port_spec),
        "target": Field(allow_null=True, check=address_spec),
        "target_subnet": Field(kind="integer", default=32),
        "disabled": Field(kind="boolean", default=False),
        "nonat": Field(kind="boolean", default=False),
        "nosync": Field(kind="boolean", default=False),
        "static_nat_port": Field(kind="boolean", default=False),
        "descr": Field(default=""),
    },
    subsystem="natconf",
    apply_group="firewall",
)

STATIC_ROUTE = Model(
    name="StaticRoute",
    fields={
        "network": Field(required=True, check=cidr),
        "gateway": Field(required=True, check=gateway_ref),
        "descr": Field(default=""),
        "disabled": Field(kind="boolean", default=False),
    },
    subsystem="staticroutes",
    apply_group="routing",
)

MODELS = (FIREWALL_RULE, PORT_FORWARD, OUTBOUND_MAPPING, STATIC_ROUTE)


def coerce(model: Model, name: str, value: Any, ctx: Context) -> Any:
    """Type-check one incoming value the way pfrest's Field classes do."""
    spec = model.fields[name]
    if value is None:
        if spec.allow_null:
            return None
        raise required(name) if spec.required else invalid_type(name, spec.kind)
    if spec.kind == "boolean" and not isinstance(value, bool):
        raise invalid_type(name, "boolean")
    if spec.kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
        raise invalid_type(name, "integer")
    if spec.kind == "array":
        if isinstance(value, str):
            value = [value]  # pfrest wraps scalars given to many-fields
        if not isinstance(value, list):
            raise invalid_type(name, "array")
    if spec.kind == "string" and not isinstance(value, str):
        raise invalid_type(name, "string")
    if spec.choices is not None:
        items = value if isinstance(value, list) else [value]
        if any(item not in spec.choices for item in items):
            raise invalid_choice(name, spec.choices)
    if spec.check is not None and value != "":
        spec.check(name, value, ctx)
    return value


def validate(model: Model, record: Record, ctx: Context) -> None:
    for name, spec in model.fields.items():
        if spec.required and record.get(name) in (None, "", []):
            raise required(name)
    for check in model.checks:
        check(record)
