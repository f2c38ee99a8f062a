"""Vendor name -> simulator class."""

from __future__ import annotations

from .base import BaseSimulator
from .dataplane import DataplaneSimulator
from .fortigate import FortigateSimulator
from .iosxe import IosXeSimulator
from .opnsense import OpnsenseSimulator
from .pfsense import PfsenseSimulator
from .routeros import RouterOsSimulator
from .vyos import VyosSimulator

SIMULATORS: dict[str, type[BaseSimulator]] = {
    "opnsense": OpnsenseSimulator,
    "pfsense": PfsenseSimulator,
    "routeros": RouterOsSimulator,
    "vyos": VyosSimulator,
    "fortigate": FortigateSimulator,
    "iosxe": IosXeSimulator,
    "dataplane": DataplaneSimulator,
}

VENDOR_ALIASES: dict[str, str] = {
    "mikrotik": "routeros",
    "fortios": "fortigate",
    "cisco": "iosxe",
    "ios-xe": "iosxe",
    "haproxy-dataplane": "dataplane",
    "dataplaneapi": "dataplane",
}


def resolve_vendor(name: str) -> type[BaseSimulator]:
    """Look a vendor up by name or alias (case-insensitive)."""
    key = name.strip().lower()
    key = VENDOR_ALIASES.get(key, key)
    try:
        return SIMULATORS[key]
    except KeyError:
        known = ", ".join(sorted(SIMULATORS))
        raise ValueError(f"unknown vendor {name!r} (known: {known})") from None
