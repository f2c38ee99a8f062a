"""MikroTik RouterOS v7 simulator (REST + SSH console)."""

from __future__ import annotations

from .simulator import RouterOsSimulator

__all__ = ["RouterOsSimulator"]
