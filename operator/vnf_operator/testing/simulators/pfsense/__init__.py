"""pfSense (pfrest REST API v2) simulator."""

from __future__ import annotations

from .simulator import PfsenseSimulator

__all__ = ["PfsenseSimulator"]
