"""Fixtures of the reliability and security suite (faults, crashes, bad input, webhook, leaks, RBAC).

Sizes: `make test` runs reduced scenarios; tests marked `soak` run only when the marker
expression names them (`make soak`, i.e. `pytest -m soak`), whatever their tier marker.
A summary table (scenario, runs, converged, duplicates, lost, leaked secrets) is printed at the
end of any session that ran a scenario.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.integration.operator_runner import OperatorProcess
from tests.integration.reliability import lab
from tests.leakcheck import register_test_secret


def pytest_configure(config: pytest.Config) -> None:
    # The lead registers it in pyproject.toml too; registering twice is harmless.
    config.addinivalue_line("markers", "soak: full-size reliability scenario, run only by `make soak`")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "soak" in (config.option.markexpr or ""):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        (drop if item.get_closest_marker("soak") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if lab.SUMMARY:
        terminalreporter.section("reliability summary", sep="=")
        for line in lab.summary_table().splitlines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def opnsense_providers(kubectl: Any) -> dict[str, str]:
    """The shipped OPNsense provider, and `opnsense-fast`: the same with a 3 s read timeout."""
    docs = [lab.opnsense_provider("opnsense"), lab.opnsense_provider("opnsense-fast", read_timeout=3)]
    lab.apply(kubectl, docs)
    return {"default": "opnsense", "fast": "opnsense-fast"}


@pytest.fixture(scope="session", autouse=True)
def _operator_token_is_secret(operator_kubeconfig: Path) -> None:
    """The operator's ServiceAccount token must never show up in a log either."""
    config = yaml.safe_load(operator_kubeconfig.read_text())
    for user in config.get("users") or []:
        token = (user.get("user") or {}).get("token")
        if token:
            register_test_secret(token)


@pytest.fixture(scope="module")
def operator(
    operator_kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory, opnsense_providers: dict[str, str]
) -> Iterator[OperatorProcess]:
    """One operator for the module, as its own ServiceAccount, with /metrics on a free port."""
    port = lab.free_port()
    proc = lab.start_operator(
        operator_kubeconfig, tmp_path_factory.mktemp("op") / "operator.log", metrics_port=port
    )
    proc.metrics_port = port  # type: ignore[attr-defined]
    lab.wait_operator_up(proc)
    yield proc
    proc.stop()
    found = lab.tracebacks(proc.output())
    assert not found, "the operator logged a traceback:\n" + "\n---\n".join(found[:3])
