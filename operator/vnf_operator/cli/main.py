"""vnfctl entry point."""

from __future__ import annotations


def main() -> None:
    """Run vnfctl."""
    raise SystemExit("vnfctl: not implemented yet")
