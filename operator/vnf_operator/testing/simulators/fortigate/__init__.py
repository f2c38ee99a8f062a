"""FortiGate (FortiOS REST API) simulator."""

from __future__ import annotations

from .simulator import FortigateSimulator

__all__ = ["FortigateSimulator"]
