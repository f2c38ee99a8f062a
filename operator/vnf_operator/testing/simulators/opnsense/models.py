"""Field definitions of the simulated OPNsense models (Filter.xml, DNat.xml, Route.xml subsets)."""

from __future__ import annotations

import ipaddress

from .fields import (
    BooleanField,
    Field,
    GatewayField,
    IntegerField,
    InterfaceField,
    ModelContext,
    NetworkAliasField,
    NetworkField,
    OptionField,
    PortField,
    ProtocolField,
    SequenceField,
    TextField,
    is_ip_or_subnet,
)
from .mvc import ModelSpec, Record

PORT_PROTOCOLS = ("TCP", "UDP", "TCP/UDP")
PORT_MESSAGE = "Please specify a valid portnumber, name, alias or range."
SEQUENCE_MESSAGE = "Sequence shall be between 1 and 999999."
TAG_MASK = r"[0-9a-zA-Z.,_\-]{0,512}"
GATEWAY_MESSAGE = "Specify a valid gateway from the list matching the networks ip protocol."


def _sequence() -> SequenceField:
    return SequenceField(required=True, minimum=1, maximum=999999, message=SEQUENCE_MESSAGE)


def _family(value: str) -> str:
    return "inet6" if ":" in value else "inet"


def _port_checks(record: Record) -> list[tuple[str, str]]:
    messages = []
    if record.get("source_port") and record.get("protocol") not in PORT_PROTOCOLS:
        messages.append(("source_port", "Source ports are only valid for tcp or udp type rules."))
    if record.get("destination_port") and record.get("protocol") not in PORT_PROTOCOLS:
        messages.append(("destination_port", "Destination ports are only valid for tcp or udp type rules."))
    return messages


def _address_checks(record: Record) -> list[tuple[str, str]]:
    messages = []
    for name, label in (("destination_net", "Destination"), ("source_net", "Source")):
        value = record.get(name, "")
        if is_ip_or_subnet(value) and _family(value) != record.get("ipprotocol"):
            messages.append((name, f"{label} address type should match selected TCP/IP protocol version."))
    for name in ("source_net", "destination_net"):
        value = record.get(name, "")
        if "," in value and "any" in value.split(","):
            messages.append((name, "Any can not be combined with other aliases"))
    if "," in record.get("source_net", "") and record.get("source_not") == "1":
        messages.append(
            (
                "source_not",
                "Inverting sources is only allowed for single targets to avoid mis-interpretations",
            )
        )
    if "," in record.get("destination_net", "") and record.get("destination_not") == "1":
        # The PHP model attaches this one to destination_net, not destination_not.
        messages.append(
            (
                "destination_net",
                "Inverting destinations is only allowed for single targets to avoid mis-interpretations",
            )
        )
    return messages


def _interface_checks(record: Record) -> list[tuple[str, str]]:
    if record.get("interfacenot") == "1" and (
        not record.get("interface") or "," in record.get("interface", "")
    ):
        return [
            (
                "interfacenot",
                "Inverting interfaces is only allowed for single targets to avoid mis-interpretations",
            )
        ]
    return []


def _snat_target_checks(record: Record) -> list[tuple[str, str]]:
    messages = []
    target = record.get("target", "")
    if target == "any":
        messages.append(("target", "Target address cannot be any."))
    if is_ip_or_subnet(target) and _family(target) != record.get("ipprotocol"):
        messages.append(("target", "Target address type should match selected TCP/IP protocol version."))
    if record.get("target_port") and record.get("protocol") not in PORT_PROTOCOLS:
        messages.append(("target_port", "Target ports are only valid for tcp or udp type rules."))
    return messages


def filter_priority(record: Record) -> int:
    """FilterRuleContainerField::getPriority: floating 200000, single interface 400000."""
    interfaces = [name for name in record.get("interface", "").split(",") if name]
    return 400000 if len(interfaces) == 1 else 200000


def _filter_computed(record: Record, ctx: ModelContext) -> dict[str, str]:
    priority = filter_priority(record)
    sequence = int(record["sequence"]) if record.get("sequence", "").isdigit() else 0
    return {"sort_order": f"{priority}.0{sequence:06d}", "prio_group": str(priority)}


def _snat_computed(record: Record, ctx: ModelContext) -> dict[str, str]:
    return {}


STATETYPES = {
    "keep": "keep state",
    "sloppy": "sloppy state",
    "modulate": "modulate state",
    "synproxy": "synproxy state",
    "none": "no state",
}
ICMPTYPES = {
    "echoreq": "Echo Request",
    "echorep": "Echo Reply",
    "unreach": "Destination Unreachable",
    "redir": "Redirect",
    "timex": "Time Exceeded",
    "paramprob": "Parameter Problem",
}

FILTER_RULE = ModelSpec(
    key="rule",
    fields={
        "enabled": BooleanField(required=True, default="1"),
        "statetype": OptionField(required=True, default="keep", options=STATETYPES),
        "state-policy": OptionField(
            options={"if-bound": "Bind states to interface", "floating": "Floating states"},
            blank_desc="default",
        ),
        "sequence": _sequence(),
        "action": OptionField(
            required=True, default="pass", options={"pass": "Pass", "block": "Block", "reject": "Reject"}
        ),
        "quick": BooleanField(required=True, default="1"),
        "interfacenot": BooleanField(required=True, default="0"),
        "interface": InterfaceField(multiple=True),
        "direction": OptionField(
            required=True, default="in", options={"in": "In", "out": "Out", "any": "Both"}
        ),
        "ipprotocol": OptionField(
            required=True, default="inet", options={"inet": "IPv4", "inet6": "IPv6", "inet46": "any"}
        ),
        "protocol": ProtocolField(required=True, default="any"),
        "icmptype": OptionField(multiple=True, options=ICMPTYPES),
        "source_net": NetworkAliasField(required=True, default="any", multiple=True),
        "source_not": BooleanField(required=True, default="0"),
        "source_port": PortField(message=PORT_MESSAGE),
        "destination_net": NetworkAliasField(required=True, default="any", multiple=True),
        "destination_not": BooleanField(required=True, default="0"),
        "destination_port": PortField(message=PORT_MESSAGE),
        "gateway": GatewayField(message=GATEWAY_MESSAGE),
        "replyto": GatewayField(message=GATEWAY_MESSAGE),
        "disablereplyto": BooleanField(required=True, default="0"),
        "log": BooleanField(required=True, default="0"),
        "allowopts": BooleanField(required=True, default="0"),
        "nosync": BooleanField(required=True, default="0"),
        "nopfsync": BooleanField(required=True, default="0"),
        "statetimeout": IntegerField(minimum=1, maximum=2147483647),
        "max": IntegerField(minimum=1, maximum=2147483647),
        "tag": TextField(mask=TAG_MASK),
        "tagged": TextField(mask=TAG_MASK),
        # ModelRelationField to categories; the simulator has no categories, so only "" is valid.
        "categories": TextField(mask=r"", message="Related category not found."),
        "description": TextField(),
    },
    cross_checks=(_port_checks, _address_checks, _interface_checks),
    computed=_filter_computed,
)

SNAT_RULE = ModelSpec(
    key="rule",
    fields={
        "enabled": BooleanField(required=True, default="1"),
        "nonat": BooleanField(required=True, default="0"),
        "sequence": _sequence(),
        "interface": InterfaceField(required=True, default="lan"),
        "ipprotocol": OptionField(required=True, default="inet", options={"inet": "IPv4", "inet6": "IPv6"}),
        "protocol": ProtocolField(required=True, default="any"),
        "source_net": NetworkAliasField(required=True, default="any"),
        "source_not": BooleanField(required=True, default="0"),
        "source_port": PortField(message=PORT_MESSAGE),
        "destination_net": NetworkAliasField(required=True, default="any"),
        "destination_not": BooleanField(required=True, default="0"),
        "destination_port": PortField(message=PORT_MESSAGE),
        "target": NetworkAliasField(required=True, default="wanip"),
        "target_port": PortField(),
        "staticnatport": BooleanField(),
        "log": BooleanField(required=True, default="0"),
        "categories": TextField(mask=r"", message="Related category not found."),
        "tagged": TextField(mask=TAG_MASK),
        "description": TextField(),
    },
    cross_checks=(_port_checks, _address_checks, _snat_target_checks),
    computed=_snat_computed,
)

DNAT_PORT_MESSAGE = "Please specify a valid port number, well-known name, alias or range."


def _dnat_computed(record: Record, ctx: ModelContext) -> dict[str, str]:
    interfaces = [name for name in record.get("interface", "").split(",") if name]
    priority = 600000 if interfaces and not any(name in ctx.interfaces for name in interfaces) else 400000
    sequence = int(record["sequence"]) if record.get("sequence", "").isdigit() else 0
    return {"sort_order": f"{priority}.0{sequence:06d}", "prio_group": str(priority)}


DNAT_RULE = ModelSpec(
    key="rule",
    fields={
        "sequence": _sequence(),
        "disabled": BooleanField(),
        "nordr": BooleanField(),
        "interface": InterfaceField(multiple=True),
        "ipprotocol": OptionField(
            options={"inet": "IPv4", "inet6": "IPv6", "inet46": "IPv4+IPv6"}, blank_desc="any"
        ),
        "protocol": ProtocolField(lower_case=True, blank_desc="any"),
        "source.network": NetworkAliasField(),
        "source.port": PortField(message=DNAT_PORT_MESSAGE),
        "source.not": BooleanField(),
        "destination.network": NetworkAliasField(),
        "destination.port": PortField(message=DNAT_PORT_MESSAGE),
        "destination.not": BooleanField(),
        "target": NetworkAliasField(),
        "local-port": PortField(
            well_known=False, ranges=False, message="Please specify a valid port number or alias."
        ),
        "poolopts": OptionField(
            options={
                "round-robin": "Round Robin",
                "round-robin sticky-address": "Round Robin with Sticky Address",
                "random": "Random",
                "random sticky-address": "Random with Sticky Address",
                "source-hash": "Source Hash",
                "bitmask": "Bitmask",
            },
            blank_desc="Default",
        ),
        "log": BooleanField(),
        "descr": TextField(),
        "tag": TextField(),
        "tagged": TextField(),
        "nosync": BooleanField(),
        "natreflection": OptionField(
            options={"purenat": "Enable", "disable": "Disable"}, blank_desc="Use system default"
        ),
        "pass": OptionField(options={"rule": "Register rule", "pass": "Pass"}, blank_desc="Manual"),
    },
    computed=_dnat_computed,
)


def route_spec(uses_enabled: bool) -> ModelSpec:
    """Route.xml: ``disabled`` (default 0) up to 25.7, ``enabled`` (default 1) from 26.7."""
    toggle: dict[str, Field] = (
        {"enabled": BooleanField(required=True, default="1")}
        if uses_enabled
        else {"disabled": BooleanField(required=True, default="0")}
    )
    return ModelSpec(
        key="route",
        fields={
            "network": NetworkField(required=True, netmask_required=True),
            "gateway": GatewayField(required=True),
            "descr": TextField(),
            **toggle,
        },
    )


def route_is_active(record: Record) -> bool:
    if "enabled" in record:
        return record["enabled"] == "1"
    return record.get("disabled", "0") != "1"


def route_family(record: Record) -> str:
    try:
        return "inet6" if ipaddress.ip_network(record["network"], strict=False).version == 6 else "inet"
    except ValueError:
        return "inet"
