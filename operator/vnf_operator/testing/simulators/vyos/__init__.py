"""VyOS 1.4+ simulator (HTTP API + vbash CLI)."""

from __future__ import annotations

from .simulator import VyosSimulator

__all__ = ["VyosSimulator"]
