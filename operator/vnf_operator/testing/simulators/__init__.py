"""Vendor appliance simulators: in-process stand-ins for the real management APIs.

``SIMULATORS`` maps a vendor name to its simulator class; ``run_simulator`` runs one in the
foreground (``python -m vnf_operator.testing.simulators VENDOR``). See docs/simulators.md.
"""

from __future__ import annotations

from .base import BaseSimulator, Credentials, SimulatorConfig
from .dataplane import DataplaneSimulator
from .faults import FaultConfig
from .fortigate import FortigateSimulator
from .iosxe import IosXeSimulator
from .opnsense import OpnsenseSimulator
from .pfsense import PfsenseSimulator
from .registry import SIMULATORS, VENDOR_ALIASES, resolve_vendor
from .routeros import RouterOsSimulator
from .runner import run_simulator
from .vyos import VyosSimulator

__all__ = [
    "SIMULATORS",
    "VENDOR_ALIASES",
    "BaseSimulator",
    "Credentials",
    "DataplaneSimulator",
    "FaultConfig",
    "FortigateSimulator",
    "IosXeSimulator",
    "OpnsenseSimulator",
    "PfsenseSimulator",
    "RouterOsSimulator",
    "SimulatorConfig",
    "VyosSimulator",
    "resolve_vendor",
    "run_simulator",
]
