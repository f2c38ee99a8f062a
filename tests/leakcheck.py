"""pytest plugin: no test secret may appear in any log, event, status or CLI output of the session.

Register it once for every tier (tests/conftest.py: `pytest_plugins = ["tests.leakcheck"]`).

What counts as a secret:

- every value passed to `register_test_secret(value)` (a function, also a fixture of that name);
- every data value of every Secret in a test namespace (`t-*`, what the `namespace` fixture
  creates) found when the control plane is torn down, except public material (keys ending in
  `.crt`, `.pem` certificates, `known_hosts`, `.pub`) and values shorter than 8 characters.

Where it looks (each value in clear, JSON-escaped and base64-encoded):

- every `*.log` file under the session's base temp directory (OperatorProcess logs, the control
  plane's own logs) and any file passed to `register_log(path)`;
- every Event (`kubectl get events -A -o json`) and the status of every VnfAppliance, VnfProvider
  and VnfOperation, read just before the control plane stops;
- every text passed to `record_output(where, text)` (CLI outputs a test produced);
- every test report's captured stdout/stderr/log.

A hit fails the session (exit status 1) and is reported with its location and a masked excerpt;
the secret itself is never printed. The failure text of a failed test is masked before pytest
prints it (a traceback shows the test's arguments, e.g. a credentials fixture) and is not counted:
it is pytest's text, not an output of the code under test.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

MIN_HARVESTED_LENGTH = 8
PUBLIC_KEYS = re.compile(r"(\.crt|\.pub|known_hosts|ca\.pem|cert\.pem)$")
TEST_NAMESPACE = re.compile(r"^t-")
MASK = "<SECRET>"


@dataclass
class Hit:
    where: str
    secret_index: int
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where}: secret #{self.secret_index} found: ...{self.excerpt}..."


@dataclass
class _State:
    secrets: list[str] = field(default_factory=list)
    outputs: list[tuple[str, str]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    snapshots: list[tuple[str, str]] = field(default_factory=list)
    scanned_sources: int = 0
    scan_seconds: float = 0.0
    hits: list[Hit] = field(default_factory=list)
    failures: list[pytest.TestReport] = field(default_factory=list)
    redacted: int = 0
    enabled: bool = True


_STATE = _State()


def register_test_secret(value: str) -> str:
    """Declare `value` secret: it must never show up anywhere the plugin looks. Returns it."""
    if isinstance(value, str) and value and value not in _STATE.secrets:
        _STATE.secrets.append(value)
    return value


def record_output(where: str, text: str) -> str:
    """Keep a CLI output (or any text a user would see) for the end-of-session scan. Returns it."""
    _STATE.outputs.append((where, text))
    return text


def register_log(path: Path | str) -> None:
    """Scan this file at the end of the session (files named *.log under basetemp always are)."""
    _STATE.logs.append(Path(path))


def _forms(value: str) -> list[str]:
    forms = [value, json.dumps(value)[1:-1], base64.b64encode(value.encode()).decode().rstrip("=")]
    return list(dict.fromkeys(f for f in forms if len(f) >= 4))


def find_leaks(text: str, where: str, secrets: Iterable[str] | None = None) -> list[Hit]:
    """Every occurrence of a secret (in any of its forms) in `text`, with a masked excerpt."""
    hits: list[Hit] = []
    pool = list(_STATE.secrets if secrets is None else secrets)
    for index, value in enumerate(pool, start=1):
        for form in _forms(value):
            pos = text.find(form)
            if pos < 0:
                continue
            start, end = max(0, pos - 60), min(len(text), pos + len(form) + 60)
            excerpt = text[start:end]
            for other in pool:
                for f in _forms(other):
                    excerpt = excerpt.replace(f, MASK)
            line = text.count("\n", 0, pos) + 1
            hits.append(Hit(f"{where}:{line}", index, excerpt.replace("\n", "\\n")))
            break
    return hits


def scan(text: str, where: str) -> list[Hit]:
    """Scan now, with the secrets known so far; hits are kept for the session verdict."""
    found = find_leaks(text, where)
    _STATE.hits.extend(found)
    return found


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(name="register_test_secret")
def _register_test_secret_fixture() -> Callable[[str], str]:
    return register_test_secret


@pytest.fixture(name="record_output")
def _record_output_fixture() -> Callable[[str, str], str]:
    return record_output


# ------------------------------------------------------------------------------ cluster snapshot


def _harvest_secrets(items: list[dict[str, Any]]) -> None:
    for secret in items:
        ns = (secret.get("metadata") or {}).get("namespace", "")
        if not TEST_NAMESPACE.match(ns):
            continue
        for key, encoded in (secret.get("data") or {}).items():
            if PUBLIC_KEYS.search(key) or not isinstance(encoded, str):
                continue
            try:
                value = base64.b64decode(encoded).decode()
            except (ValueError, UnicodeDecodeError):
                continue
            if len(value) >= MIN_HARVESTED_LENGTH and "BEGIN CERTIFICATE" not in value:
                register_test_secret(value)


def snapshot_cluster(kubectl: Callable[..., Any]) -> None:
    """Read events, statuses and test Secrets while the apiserver is still up."""

    def get(*args: str) -> list[dict[str, Any]]:
        proc = kubectl("get", *args, "-A", "-o", "json", check=False, timeout=60)
        if proc.returncode != 0:
            return []
        with contextlib.suppress(ValueError):
            return list(json.loads(proc.stdout).get("items") or [])
        return []

    _harvest_secrets(get("secrets"))
    events = get("events")
    _STATE.snapshots.append(("kubectl get events -A", json.dumps(events, indent=1)))
    for plural in ("vnfappliances", "vnfproviders", "vnfoperations"):
        for obj in get(plural):
            meta = obj.get("metadata") or {}
            where = f"{plural}/{meta.get('namespace', '')}/{meta.get('name', '')}.status"
            _STATE.snapshots.append((where, json.dumps(obj.get("status") or {}, indent=1)))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest) -> Any:
    result = yield
    if fixturedef.argname == "control_plane" and hasattr(result, "kubectl"):
        # Added after the fixture's own teardown was registered, so it runs first (LIFO):
        # the apiserver is still answering.
        def snapshot() -> None:
            with contextlib.suppress(Exception):
                snapshot_cluster(result.kubectl)

        fixturedef.addfinalizer(snapshot)
    return result


# ------------------------------------------------------------------------------ reports and verdict


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, content in report.sections:
        _STATE.outputs.append((f"{report.nodeid} [{report.when}] {name}", content))
    if report.failed:
        _STATE.failures.append(report)


def mask(text: str) -> str:
    """`text` with every form of every known secret replaced by <SECRET>."""
    for value in _STATE.secrets:
        for form in _forms(value):
            text = text.replace(form, MASK)
    return text


def _redact_failures() -> int:
    """A failed test's report shows its arguments (`api_creds = {...}`): mask the secrets before the
    terminal prints the failures. pytest's text, not the operator's output, so not counted as a leak.
    Returns how many reports held a secret."""
    redacted = 0
    for report in _STATE.failures:
        text = report.longreprtext
        masked = mask(text)
        if masked != text:
            report.longrepr = masked
            redacted += 1
        report.sections = [(name, mask(content)) for name, content in report.sections]
    return redacted


def _log_files(session: pytest.Session) -> list[Path]:
    files: list[Path] = list(_STATE.logs)
    factory = getattr(session.config, "_tmp_path_factory", None)
    base = getattr(factory, "_basetemp", None) if factory is not None else None
    if isinstance(base, Path) and base.is_dir():
        files.extend(p for p in sorted(base.rglob("*.log")) if p.is_file())
    return list(dict.fromkeys(files))


def _verdict(session: pytest.Session) -> list[Hit]:
    started = time.monotonic()
    hits = list(_STATE.hits)
    sources = 0
    if _STATE.secrets:
        for path in _log_files(session):
            with contextlib.suppress(OSError):
                hits.extend(find_leaks(path.read_text(errors="replace"), str(path)))
                sources += 1
        for where, text in [*_STATE.snapshots, *_STATE.outputs]:
            hits.extend(find_leaks(text, where))
            sources += 1
    _STATE.scanned_sources = sources
    _STATE.scan_seconds = time.monotonic() - started
    unique: dict[tuple[str, int], Hit] = {}
    for h in hits:
        unique.setdefault((h.where, h.secret_index), h)
    return list(unique.values())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _STATE.enabled:
        return
    hits = _verdict(session)
    _STATE.hits = hits
    _STATE.redacted = _redact_failures()
    if hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _STATE.secrets and not _STATE.hits:
        return
    tr = terminalreporter
    if _STATE.hits:
        tr.section("secret leak check FAILED", sep="=", red=True, bold=True)
        for hit in _STATE.hits[:50]:
            tr.write_line(str(hit))
        if len(_STATE.hits) > 50:
            tr.write_line(f"... and {len(_STATE.hits) - 50} more")
    else:
        tr.write_line(
            f"secret leak check: {len(_STATE.secrets)} secret value(s), "
            f"{_STATE.scanned_sources} source(s) scanned in {_STATE.scan_seconds:.1f}s, no leak"
        )
    if _STATE.redacted:
        tr.write_line(f"secret leak check: secrets masked in {_STATE.redacted} failure report(s) above")
