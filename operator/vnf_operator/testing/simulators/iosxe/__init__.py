"""Cisco IOS-XE simulator (SSH CLI + RESTCONF)."""

from __future__ import annotations

from .simulator import IosXeSimulator

__all__ = ["IosXeSimulator"]
