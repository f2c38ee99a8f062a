"""Commit-time verification, in the words of the vyos-1x conf-mode scripts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .config import ConfigError, Tree

PORT_PROTOCOLS = ("tcp", "udp", "tcp_udp")


def _rulesets(tree: Tree) -> Iterator[tuple[str, dict[str, Any]]]:
    ipv4 = tree.get("firewall", {}).get("ipv4", {})
    for hook in ("forward", "input", "output"):
        ruleset = ipv4.get(hook, {}).get("filter")
        if isinstance(ruleset, dict):
            yield f"ipv4 {hook} filter", ruleset
    for name, ruleset in ipv4.get("name", {}).items():
        yield f"ipv4 name {name}", ruleset


def _has_port(rule: dict[str, Any]) -> bool:
    return any(
        "port" in rule.get(side, {}) or "port-group" in rule.get(side, {}).get("group", {})
        for side in ("source", "destination")
    )


def _verify_firewall(tree: Tree) -> list[str]:
    errors = []
    names = set(tree.get("firewall", {}).get("ipv4", {}).get("name", {}))
    for _, ruleset in _rulesets(tree):
        for number, rule in ruleset.get("rule", {}).items():
            if "action" not in rule:
                errors.append(f"Rule {number}: Rule action must be defined")
            if rule.get("action") == "jump":
                target = rule.get("jump-target")
                if target is None:
                    errors.append("Action set to jump, but no jump-target specified")
                elif target not in names:
                    errors.append(f"Invalid jump-target. Firewall name {target} does not exist on the system")
            if _has_port(rule) and rule.get("protocol") not in PORT_PROTOCOLS:
                errors.append("Protocol must be tcp, udp, or tcp_udp when specifying a port or port-group")
    return errors


def _verify_nat(tree: Tree) -> list[str]:
    errors = []
    for direction, label in (("source", "Source"), ("destination", "Destination")):
        for number, rule in tree.get("nat", {}).get(direction, {}).get("rule", {}).items():
            prefix = f"{label} NAT configuration error in rule {number}:"
            translation = rule.get("translation", {})
            if "exclude" not in rule and not ({"address", "port"} & set(translation)):
                errors.append(f"{prefix} translation requires address and/or port")
            has_port = "port" in rule.get("source", {}) or "port" in rule.get("destination", {})
            if (has_port or "port" in translation) and rule.get("protocol") not in PORT_PROTOCOLS:
                errors.append(
                    f"{prefix} ports can only be specified when protocol is either tcp, udp or tcp_udp!"
                )
    return errors


def _verify_bgp(tree: Tree) -> list[str]:
    bgp = tree.get("protocols", {}).get("bgp")
    if bgp is None:
        return []
    errors = []
    if "system-as" not in bgp:
        errors.append("BGP system-as number must be defined!")
    for peer, peer_config in bgp.get("neighbor", {}).items():
        if "remote-as" not in peer_config:
            errors.append(f'Neighbor "{peer}" remote-as must be set!')
    return errors


def _verify_https(tree: Tree) -> list[str]:
    keys = tree.get("service", {}).get("https", {}).get("api", {}).get("keys", {}).get("id", {})
    return [
        f'Missing HTTPS API key string for key id "{name}"'
        for name, conf in keys.items()
        if "key" not in conf
    ]


SECTIONS = (
    ("firewall", _verify_firewall),
    ("nat", _verify_nat),
    ("protocols bgp", _verify_bgp),
    ("service https", _verify_https),
)


def verify(tree: Tree) -> None:
    """Raise ConfigError with the CLI's commit failure text when a section does not verify."""
    for section, check in SECTIONS:
        errors = check(tree)
        if errors:
            body = "\n".join(errors)
            raise ConfigError(f"[ {section} ]\n{body}\n\n[[{section}]] failed\nCommit failed")
