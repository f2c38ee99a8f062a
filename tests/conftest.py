"""Shared by every tier. Nothing heavy here: each tier's fixtures live in tests/<tier>/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

# The suite-wide secret-leak check (every tier): logs, events, statuses and CLI outputs of the
# session are searched for every test secret at the end; a hit fails the session.
pytest_plugins = ["tests.leakcheck"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The checkout's root directory (crds/, manifests/, providers/ live there)."""
    return REPO_ROOT
