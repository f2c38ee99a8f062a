"""Cisco-IOS-XE-native JSON (RFC 7951) for the modelled subtrees, both directions."""

from __future__ import annotations

import ipaddress
from typing import Any

from .state import (
    Ace,
    Bgp,
    Endpoint,
    Interface,
    IosConfig,
    IosError,
    Neighbor,
    port_label,
    port_number,
    valid_ipv4,
    valid_mask,
)

EMPTY = [None]  # YANG ``empty`` leaves render as [null]


def strip_module(key: str) -> str:
    return key.split(":", 1)[-1]


def unwrap(body: Any, name: str) -> Any:
    """The value under ``module:name`` (or plain ``name``) of a request body."""
    if not isinstance(body, dict) or len(body) != 1:
        raise IosError(f"expected a single '{name}' node")
    key, value = next(iter(body.items()))
    if strip_module(key) != name:
        raise IosError(f"unexpected node '{key}', expected '{name}'")
    return value


def as_entries(value: Any) -> list[dict[str, Any]]:
    """Lists are arrays per RFC 7951, but older 16.x sends a bare object for one entry."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    raise IosError("expected a list entry")


# ---------------------------------------------------------------------- interfaces
def split_interface(name: str) -> tuple[str, str]:
    kind = name.rstrip("0123456789/")
    return kind, name[len(kind) :]


def interface_json(interface: Interface) -> dict[str, Any]:
    kind, number = split_interface(interface.name)
    data: dict[str, Any] = {"name": int(number) if kind == "Loopback" else number}
    if interface.description:
        data["description"] = interface.description
    if interface.address:
        data["ip"] = {"address": {"primary": {"address": interface.address[0], "mask": interface.address[1]}}}
    else:
        data["ip"] = {"no-address": {"address": False}}
    if interface.shutdown:
        data["shutdown"] = EMPTY
    return data


def interfaces_json(config: IosConfig) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for interface in config.interfaces.values():
        kind, _ = split_interface(interface.name)
        grouped.setdefault(kind, []).append(interface_json(interface))
    return grouped


def apply_interface(interface: Interface, data: dict[str, Any], replace: bool) -> None:
    if replace:
        interface.description = None
        interface.address = None
        interface.shutdown = False
    if "description" in data:
        interface.description = str(data["description"])
    primary = data.get("ip", {}).get("address", {}).get("primary")
    if primary is not None:
        address, mask = str(primary.get("address", "")), str(primary.get("mask", ""))
        if not (valid_ipv4(address) and valid_mask(mask)):
            raise IosError(f"invalid address {address} {mask}")
        interface.address = (address, mask)
    if "no-address" in data.get("ip", {}):
        interface.address = None
    if "shutdown" in data:
        interface.shutdown = True


def oper_interface_json(interface: Interface) -> dict[str, Any]:
    """One entry of Cisco-IOS-XE-interfaces-oper:interfaces/interface."""
    up = not interface.shutdown
    address, mask = interface.address or ("0.0.0.0", "0.0.0.0")  # noqa: S104 - "no address"
    return {
        "name": interface.name,
        "interface-type": (
            "iana-iftype-sw-loopback"
            if interface.name.startswith("Loopback")
            else "iana-iftype-ethernet-csmacd"
        ),
        "admin-status": "if-state-up" if up else "if-state-down",
        "oper-status": "if-oper-state-ready" if up else "if-oper-state-no-pass",
        "description": interface.description or "",
        "ipv4": address,
        "ipv4-subnet-mask": mask,
        "speed": "1000000000" if interface.name.startswith("GigabitEthernet") else "8000000000",
        "statistics": {"in-octets": "0", "out-octets": "0", "in-errors": 0, "out-errors": 0},
    }


# ---------------------------------------------------------------------- static routes
def route_entry_json(config: IosConfig, prefix: str, mask: str) -> dict[str, Any]:
    fwd_list = []
    for hop in config.routes[(prefix, mask)]:
        entry: dict[str, Any] = {"fwd": hop}
        if (prefix, mask, hop) in config.distances:
            entry["metric"] = config.distances[(prefix, mask, hop)]
        fwd_list.append(entry)
    return {"prefix": prefix, "mask": mask, "fwd-list": fwd_list}


def routes_json(config: IosConfig) -> dict[str, Any]:
    entries = [route_entry_json(config, prefix, mask) for prefix, mask in config.routes]
    return {"ip-route-interface-forwarding-list": entries}


def parse_route_entry(entry: dict[str, Any]) -> tuple[str, str, list[str]]:
    prefix, mask = str(entry.get("prefix", "")), str(entry.get("mask", ""))
    hops = [str(item.get("fwd", "")) for item in entry.get("fwd-list", []) if isinstance(item, dict)]
    if not (valid_ipv4(prefix) and valid_mask(mask)) or not hops or not all(valid_ipv4(hop) for hop in hops):
        raise IosError(f"invalid route {prefix} {mask}")
    network = ipaddress.IPv4Network(f"{prefix}/{mask}", strict=False)
    if str(network.network_address) != prefix:
        raise IosError(f"inconsistent address and mask {prefix} {mask}")
    return prefix, mask, hops


# ---------------------------------------------------------------------- extended ACLs
def _port(protocol: str, value: str) -> Any:
    label = port_label(protocol, value)
    return int(label) if label.isdigit() else label


def ace_json(ace: Ace) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": ace.action, "protocol": ace.protocol}
    source, destination = ace.source, ace.destination
    if source.kind == "any":
        rule["any"] = EMPTY
    elif source.kind == "host":
        rule["host"] = source.address
    else:
        rule["ipv4-address"], rule["mask"] = source.address, source.wildcard
    if source.eq:
        rule["src-eq"] = _port(ace.protocol, source.eq)
    if destination.kind == "any":
        rule["dst-any"] = EMPTY
    elif destination.kind == "host":
        rule["dst-host"] = destination.address
    else:
        rule["dest-ipv4-address"], rule["dest-mask"] = destination.address, destination.wildcard
    if destination.eq:
        rule["dst-eq"] = _port(ace.protocol, destination.eq)
    return {"sequence": str(ace.sequence), "ace-rule": rule}


def acl_json(name: str, rules: dict[int, Ace]) -> dict[str, Any]:
    return {"name": name, "access-list-seq-rule": [ace_json(rules[seq]) for seq in sorted(rules)]}


def _endpoint(
    rule: dict[str, Any], any_key: str, host_key: str, net_keys: tuple[str, str], eq_key: str
) -> Endpoint:
    if any_key in rule:
        endpoint = Endpoint("any")
    elif host_key in rule:
        endpoint = Endpoint("host", str(rule[host_key]))
    elif net_keys[0] in rule:
        endpoint = Endpoint("network", str(rule[net_keys[0]]), str(rule.get(net_keys[1], "0.0.0.0")))  # noqa: S104
    else:
        raise IosError("an ACE needs a source and a destination")
    for address in filter(None, (endpoint.address, endpoint.wildcard)):
        if not valid_ipv4(address):
            raise IosError(f"invalid address {address}")
    if eq_key in rule:
        endpoint.eq = str(rule[eq_key])
    return endpoint


def _normalize_ports(ace: Ace) -> Ace:
    for endpoint in (ace.source, ace.destination):
        if endpoint.eq is not None:
            number = port_number(ace.protocol, endpoint.eq)
            if number is None:
                raise IosError(f"invalid port {endpoint.eq}")
            endpoint.eq = number
    return ace


def parse_acl(entry: dict[str, Any]) -> tuple[str, dict[int, Ace]]:
    name = str(entry.get("name", ""))
    if not name:
        raise IosError("access list name missing")
    rules: dict[int, Ace] = {}
    for item in entry.get("access-list-seq-rule", []):
        sequence = int(item.get("sequence", 0))
        rule = item.get("ace-rule", {})
        action = rule.get("action")
        if action not in ("permit", "deny"):
            raise IosError(f"invalid action {action!r}")
        source = _endpoint(rule, "any", "host", ("ipv4-address", "mask"), "src-eq")
        destination = _endpoint(rule, "dst-any", "dst-host", ("dest-ipv4-address", "dest-mask"), "dst-eq")
        ace = Ace(sequence, action, str(rule.get("protocol", "ip")), source, destination)
        rules[sequence] = _normalize_ports(ace)
    return name, rules


# ---------------------------------------------------------------------- BGP
def bgp_json(bgp: Bgp) -> dict[str, Any]:
    neighbors = []
    for address, neighbor in bgp.neighbors.items():
        item: dict[str, Any] = {"id": address, "remote-as": neighbor.remote_as}
        if neighbor.description:
            item["description"] = neighbor.description
        neighbors.append(item)
    active = [{"id": address, "activate": EMPTY} for address, n in bgp.neighbors.items() if n.activate]
    data: dict[str, Any] = {"id": bgp.asn, "bgp": {"log-neighbor-changes": bgp.log_neighbor_changes}}
    if neighbors:
        data["neighbor"] = neighbors
    if active:
        data["address-family"] = {
            "no-vrf": {"ipv4": [{"af-name": "unicast", "ipv4-unicast": {"neighbor": active}}]}
        }
    return data


def apply_bgp(bgp: Bgp, data: dict[str, Any], replace: bool) -> None:
    if replace:
        bgp.neighbors = {}
        bgp.log_neighbor_changes = False
    if "bgp" in data:
        bgp.log_neighbor_changes = bool(data["bgp"].get("log-neighbor-changes", bgp.log_neighbor_changes))
    for item in data.get("neighbor", []):
        address = str(item.get("id", ""))
        if not valid_ipv4(address):
            raise IosError(f"invalid neighbor id {address!r}")
        existing = bgp.neighbors.get(address)
        if "remote-as" not in item and existing is None:
            raise IosError(f"neighbor {address}: remote-as is required")
        neighbor = existing or Neighbor(remote_as=int(item["remote-as"]))
        if "remote-as" in item:
            neighbor.remote_as = int(item["remote-as"])
        if "description" in item:
            neighbor.description = str(item["description"])
        bgp.neighbors[address] = neighbor
    for family in data.get("address-family", {}).get("no-vrf", {}).get("ipv4", []):
        for item in family.get("ipv4-unicast", {}).get("neighbor", []):
            peer = bgp.neighbors.get(str(item.get("id")))
            if peer is None:
                raise IosError(f"neighbor {item.get('id')} is not configured")
            peer.activate = "activate" in item


def native_json(config: IosConfig) -> dict[str, Any]:
    native: dict[str, Any] = {"hostname": config.hostname, "interface": interfaces_json(config), "ip": {}}
    if config.routes:
        native["ip"]["route"] = routes_json(config)
    if config.acls:
        native["ip"]["access-list"] = {
            "Cisco-IOS-XE-acl:extended": [acl_json(name, rules) for name, rules in config.acls.items()]
        }
    if config.bgp is not None:
        native["router"] = {"Cisco-IOS-XE-bgp:bgp": [bgp_json(config.bgp)]}
    return native
