"""docs/support-matrix.md is generated (tools/support_matrix.py) and must match what it is made from.

Pure file reading: no simulator, no network.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("support_matrix", REPO / "tools" / "support_matrix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_committed_support_matrix_is_current() -> None:
    tool = _tool()
    expected = tool.render(tool.load(REPO))
    committed = (REPO / tool.OUTPUT).read_text(encoding="utf-8")
    assert committed == expected, "docs/support-matrix.md is stale: run `python tools/support_matrix.py`"


def test_matrix_names_the_conformance_checks_that_exist() -> None:
    """A check the matrix reports is a test of the conformance suite (renaming one must update both)."""
    tool = _tool()
    source = (Path(__file__).parent / "test_conformance.py").read_text(encoding="utf-8")
    for test, *_ in (*tool.CHECKS, *tool.PROVIDER_CHECKS):
        assert f"async def {test}(" in source, test


def test_every_provider_is_in_the_matrix() -> None:
    tool = _tool()
    names = {p.name for p in tool.load(REPO)}
    files = {p.stem for p in (REPO / "providers").glob("*.yaml") if p.name != "kustomization.yaml"}
    assert names == files
    matrix = (REPO / tool.OUTPUT).read_text(encoding="utf-8")
    for name in names:
        assert f"(`{name}`)" in matrix, name
