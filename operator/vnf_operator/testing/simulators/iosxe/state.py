"""IOS-XE configuration state shared by the CLI and RESTCONF, plus ``show`` renderings."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

PHYSICAL = tuple(f"GigabitEthernet{n}" for n in range(1, 5))
INTERFACE_TYPES = {
    "gigabitethernet": "GigabitEthernet",
    "loopback": "Loopback",
    "vlan": "Vlan",
    "tunnel": "Tunnel",
}
VIRTUAL_TYPES = ("Loopback", "Vlan", "Tunnel")
# IOS prints these well-known ports by name in running-config (per protocol).
PORT_NAMES = {
    "tcp": {"20": "ftp-data", "21": "ftp", "23": "telnet", "25": "smtp", "53": "domain", "80": "www",
            "110": "pop3", "119": "nntp", "179": "bgp"},
    "udp": {"53": "domain", "67": "bootps", "68": "bootpc", "69": "tftp", "123": "ntp", "161": "snmp",
            "162": "snmptrap", "514": "syslog"},
}  # fmt: skip


def port_number(protocol: str, value: str) -> str | None:
    """``www`` -> ``80`` (numbers pass through); None when IOS would not accept the word."""
    if value.isdigit():
        return value if 0 <= int(value) <= 65535 else None
    for number, name in PORT_NAMES.get(protocol, {}).items():
        if name == value:
            return number
    return None


def port_label(protocol: str, number: str) -> str:
    return PORT_NAMES.get(protocol, {}).get(number, number)


class IosError(Exception):
    """A refused command; the text is what IOS prints (``% ...``)."""


def canonical_interface(text: str) -> str | None:
    """``gi1``/``Gig1``/``GigabitEthernet1`` -> ``GigabitEthernet1``; ``lo0`` -> ``Loopback0``."""
    match = re.fullmatch(r"([A-Za-z]+)\s*(\d+(?:/\d+)*)", text)
    if match is None:
        return None
    prefix, number = match.group(1).lower(), match.group(2)
    for key, name in INTERFACE_TYPES.items():
        if len(prefix) >= 2 and key.startswith(prefix):
            return f"{name}{number}"
    return None


def valid_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def valid_mask(text: str) -> bool:
    if not valid_ipv4(text):
        return False
    bits = int(ipaddress.IPv4Address(text))
    inverted = ~bits & 0xFFFFFFFF
    return inverted & (inverted + 1) == 0


def prefix_len(mask: str) -> int:
    return ipaddress.IPv4Network(f"0.0.0.0/{mask}").prefixlen


@dataclass
class Interface:
    name: str
    description: str | None = None
    address: tuple[str, str] | None = None
    shutdown: bool = False


@dataclass
class Endpoint:
    """An ACE source or destination: ``any``, ``host A`` or ``A wildcard``, plus ``eq PORT``."""

    kind: str = "any"  # any | host | network
    address: str = ""
    wildcard: str = ""
    eq: str | None = None

    def cli(self) -> str:
        text = {"any": "any", "host": f"host {self.address}", "network": f"{self.address} {self.wildcard}"}[
            self.kind
        ]
        return f"{text} eq {self.eq}" if self.eq else text

    def cli_for(self, protocol: str) -> str:
        label = port_label(protocol, self.eq) if self.eq else None
        return Endpoint(self.kind, self.address, self.wildcard, label).cli()


@dataclass
class Ace:
    sequence: int
    action: str  # permit | deny
    protocol: str
    source: Endpoint
    destination: Endpoint

    def cli(self) -> str:
        source, destination = self.source.cli_for(self.protocol), self.destination.cli_for(self.protocol)
        return f"{self.sequence} {self.action} {self.protocol} {source} {destination}"


@dataclass
class Neighbor:
    remote_as: int
    description: str | None = None
    activate: bool = False


@dataclass
class Bgp:
    asn: int
    log_neighbor_changes: bool = True
    neighbors: dict[str, Neighbor] = field(default_factory=dict)


@dataclass
class IosConfig:
    hostname: str = "Router"
    interfaces: dict[str, Interface] = field(default_factory=dict)
    routes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    distances: dict[tuple[str, str, str], int] = field(default_factory=dict)
    acls: dict[str, dict[int, Ace]] = field(default_factory=dict)
    bgp: Bgp | None = None

    @classmethod
    def factory(cls, hostname: str) -> IosConfig:
        config = cls(hostname=hostname)
        for name in PHYSICAL:
            config.interfaces[name] = Interface(name)
        config.interfaces["GigabitEthernet1"].address = ("192.168.122.10", "255.255.255.0")
        return config

    # ------------------------------------------------------------------ mutations used by both fronts
    def interface(self, name: str, create: bool = True) -> Interface:
        existing = self.interfaces.get(name)
        if existing is not None:
            return existing
        if not create or not name.startswith(VIRTUAL_TYPES):
            raise IosError("% Invalid input detected at '^' marker.")
        self.interfaces[name] = Interface(name)
        return self.interfaces[name]

    def add_route(self, prefix: str, mask: str, next_hop: str, distance: int | None = None) -> None:
        if not (valid_ipv4(prefix) and valid_mask(mask) and valid_ipv4(next_hop)):
            raise IosError("% Invalid input detected at '^' marker.")
        network = ipaddress.IPv4Network(f"{prefix}/{mask}", strict=False)
        if str(network.network_address) != prefix:
            raise IosError("%Inconsistent address and mask")
        hops = self.routes.setdefault((prefix, mask), [])
        if next_hop not in hops:
            hops.append(next_hop)
        if distance is None or distance == 1:
            self.distances.pop((prefix, mask, next_hop), None)
        else:
            self.distances[(prefix, mask, next_hop)] = distance

    def delete_route(self, prefix: str, mask: str, next_hop: str | None) -> None:
        hops = self.routes.get((prefix, mask))
        if hops is None or (next_hop is not None and next_hop not in hops):
            raise IosError("%No matching route to delete")
        removed = list(hops) if next_hop is None else [next_hop]
        for hop in removed:
            self.distances.pop((prefix, mask, hop), None)
        if next_hop is None:
            del self.routes[(prefix, mask)]
        else:
            hops.remove(next_hop)
            if not hops:
                del self.routes[(prefix, mask)]

    def distance(self, prefix: str, mask: str, hop: str) -> int:
        return self.distances.get((prefix, mask, hop), 1)

    def reset_interface(self, name: str) -> None:
        """``default interface X``: back to factory settings."""
        self.interfaces[name] = Interface(name)

    def start_bgp(self, asn: int) -> Bgp:
        if self.bgp is not None and self.bgp.asn != asn:
            raise IosError(f"% BGP is already running; AS is {self.bgp.asn}")
        if self.bgp is None:
            self.bgp = Bgp(asn)
        return self.bgp

    # ------------------------------------------------------------------ renderings
    def running_config(self, version: str) -> str:
        body: list[str] = [
            "!",
            f"version {'.'.join(version.split('.')[:2])}",
            "service timestamps debug datetime msec",
            "service timestamps log datetime msec",
            "platform qfp utilization monitor load 80",
            "!",
            f"hostname {self.hostname}",
            "!",
        ]
        for name in sorted(self.interfaces, key=_interface_order):
            interface = self.interfaces[name]
            body.append(f"interface {name}")
            if interface.description:
                body.append(f" description {interface.description}")
            if interface.address:
                body.append(f" ip address {interface.address[0]} {interface.address[1]}")
            else:
                body.append(" no ip address")
            if interface.shutdown:
                body.append(" shutdown")
            if name.startswith("GigabitEthernet"):
                body.append(" negotiation auto")
            body.append("!")
        if self.bgp is not None:
            body.append(f"router bgp {self.bgp.asn}")
            if self.bgp.log_neighbor_changes:
                body.append(" bgp log-neighbor-changes")
            for address, neighbor in self.bgp.neighbors.items():
                body.append(f" neighbor {address} remote-as {neighbor.remote_as}")
                if neighbor.description:
                    body.append(f" neighbor {address} description {neighbor.description}")
            active = [address for address, neighbor in self.bgp.neighbors.items() if neighbor.activate]
            if active:
                body += [" !", " address-family ipv4"]
                body += [f"  neighbor {address} activate" for address in active]
                body.append(" exit-address-family")
            body.append("!")
        body += ["ip forward-protocol nd", "ip http server", "ip http secure-server", "!"]
        for (prefix, mask), hops in sorted(self.routes.items(), key=lambda item: _route_order(item[0])):
            for hop in hops:
                distance = self.distances.get((prefix, mask, hop))
                body.append(f"ip route {prefix} {mask} {hop}" + (f" {distance}" if distance else ""))
        for name, rules in self.acls.items():
            body.append(f"ip access-list extended {name}")
            body += [f" {rules[seq].cli()}" for seq in sorted(rules)]
        body += ["!", "restconf", "!", "end"]
        text = "\n".join(body) + "\n"
        return f"Building configuration...\n\nCurrent configuration : {len(text)} bytes\n{text}"

    def interface_brief(self) -> str:
        lines = [f"{'Interface':<23}{'IP-Address':<16}OK? Method Status                Protocol"]
        for name in sorted(self.interfaces, key=_interface_order):
            interface = self.interfaces[name]
            address = interface.address[0] if interface.address else "unassigned"
            method = "manual" if interface.address else "unset "
            status = "administratively down" if interface.shutdown else "up"
            protocol = "down" if interface.shutdown else "up"
            lines.append(f"{name:<23}{address:<16}YES {method} {status:<22}{protocol}")
        return "\n".join(lines) + "\n"

    def static_routes(self) -> str:
        lines = [
            "Codes: L - local, C - connected, S - static, R - RIP, M - mobile, B - BGP",
            "       * - candidate default, U - per-user static route, o - ODR",
            "",
            "Gateway of last resort is not set",
            "",
        ]
        for (prefix, mask), hops in sorted(self.routes.items(), key=lambda item: _route_order(item[0])):
            for index, hop in enumerate(hops):
                lead = f"S        {prefix}/{prefix_len(mask)}" if index == 0 else " " * 20
                lines.append(f"{lead} [{self.distance(prefix, mask, hop)}/0] via {hop}")
        return "\n".join(lines) + "\n"

    def bgp_summary(self) -> str:
        if self.bgp is None:
            return "% BGP not active\n\n"
        router_id = next((i.address[0] for i in self.interfaces.values() if i.address), "0.0.0.0")  # noqa: S104
        lines = [
            f"BGP router identifier {router_id}, local AS number {self.bgp.asn}",
            "BGP table version is 1, main routing table version 1",
            "",
            "Neighbor        V           AS MsgRcvd MsgSent   TblVer  InQ OutQ Up/Down  State/PfxRcd",
        ]
        for address, neighbor in self.bgp.neighbors.items():
            lines.append(
                f"{address:<15} 4 {neighbor.remote_as:>12}       0       0        1    0    0 never    Idle"
            )
        return "\n".join(lines) + "\n"

    def access_lists(self) -> str:
        lines = []
        for name, rules in self.acls.items():
            lines.append(f"Extended IP access list {name}")
            lines += [f"    {rules[seq].cli()}" for seq in sorted(rules)]
        return "\n".join(lines) + "\n" if lines else ""


def _interface_order(name: str) -> tuple[int, int]:
    number = int(re.sub(r"\D", "", name) or 0)
    return (0 if name.startswith("GigabitEthernet") else 1, number)


def _route_order(key: tuple[str, str]) -> tuple[int, int]:
    return int(ipaddress.IPv4Address(key[0])), prefix_len(key[1])
