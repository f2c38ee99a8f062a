"""OPNsense simulator (core MVC API)."""

from __future__ import annotations

from .simulator import OpnsenseSimulator

__all__ = ["OpnsenseSimulator"]
