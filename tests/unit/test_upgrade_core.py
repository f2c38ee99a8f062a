"""Upgrades, the pure parts: request identity, poll backoff, the Upgraded condition and what it does
to Ready; the dictionary rules for the operations the operator runs itself."""

from __future__ import annotations

from typing import Any

import pytest

from vnf_operator.core import upgrade as up
from vnf_operator.core.conditions import ReconcileResults, StepResult, summarize
from vnf_operator.core.errors import DictionaryError
from vnf_operator.core.loader import load_provider_text

pytestmark = pytest.mark.unit

NOW, LATER = "2026-01-01T00:00:00Z", "2026-01-01T00:05:00Z"


def ready_conditions(now: str = NOW) -> list[dict[str, Any]]:
    ok = StepResult(True, "Done", "fine")
    rr = ReconcileResults(provider=ok, validation=ok, health=ok, bootstrap=ok, sync=ok)
    return summarize(rr, generation=3, previous=[], now=now)


def by_type(conds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conds}


def test_request_key_changes_with_the_spec_or_an_explicit_retry() -> None:
    key = up.request_key({"version": "25.7.9"}, "")
    assert key == up.request_key({"version": "25.7.9"}, "")
    assert key != up.request_key({"version": "25.7.9", "timeoutSeconds": 60}, "")
    assert key != up.request_key({"version": "25.7.9"}, "retry-1")


def test_poll_delay_backs_off_up_to_the_cap() -> None:
    assert [up.poll_delay(n, 2, 30) for n in range(6)] == [2, 4, 8, 16, 30, 30]
    assert up.poll_delay(10_000, 1, 30) == 30
    assert up.timeout_seconds({}) == up.DEFAULT_TIMEOUT
    assert up.timeout_seconds({"timeoutSeconds": 5}) == 5.0


def test_no_upgrade_removes_the_condition_and_leaves_ready_alone() -> None:
    conds = ready_conditions()
    stale = [*conds, {"type": "Upgraded", "status": "True", "reason": "Upgraded", "message": ""}]
    assert up.apply_condition(stale, None, previous=[], generation=3, now=NOW) == conds


def test_an_upgrade_in_progress_makes_the_appliance_progressing() -> None:
    cond = up.UpgradeCondition("False", "Upgrading", "upgrading from 25.7 to 25.7.9", "progressing")
    out = by_type(up.apply_condition(ready_conditions(), cond, previous=[], generation=3, now=NOW))
    assert (out["Upgraded"]["status"], out["Upgraded"]["reason"]) == ("False", "Upgrading")
    assert (out["Ready"]["status"], out["Ready"]["reason"]) == ("Unknown", "Upgrading")
    assert out["Reconciling"]["status"] == "True" and out["Stalled"]["status"] == "False"
    assert out["InSync"]["status"] == "True"  # domain conditions are untouched


def test_a_failed_upgrade_stalls_unless_something_worse_is_reported() -> None:
    cond = up.UpgradeCondition("False", "UpgradeFailed", "upgrade to 25.7.9 failed", "stalled")
    out = by_type(up.apply_condition(ready_conditions(), cond, previous=[], generation=3, now=NOW))
    assert (out["Ready"]["status"], out["Ready"]["reason"], out["Stalled"]["status"]) == (
        "False",
        "UpgradeFailed",
        "True",
    )
    unhealthy = ReconcileResults(health=StepResult(False, "HealthCheckFailed", "down"))
    conds = summarize(unhealthy, generation=3, previous=[], now=NOW)
    out = by_type(up.apply_condition(conds, cond, previous=[], generation=3, now=NOW))
    assert out["Ready"]["reason"] == "HealthCheckFailed"
    assert out["Upgraded"]["reason"] == "UpgradeFailed"


def test_transition_time_moves_only_when_the_status_does() -> None:
    cond = up.UpgradeCondition("True", "Upgraded", "runs 25.7.9")
    first = up.apply_condition(ready_conditions(), cond, previous=[], generation=3, now=NOW)
    again = up.apply_condition(ready_conditions(LATER), cond, previous=first, generation=4, now=LATER)
    assert by_type(again)["Upgraded"]["lastTransitionTime"] == NOW
    flipped = up.UpgradeCondition("False", "Upgrading", "…", "progressing")
    moved = up.apply_condition(ready_conditions(LATER), flipped, previous=first, generation=4, now=LATER)
    assert by_type(moved)["Upgraded"]["lastTransitionTime"] == LATER


BASE = """
info: {name: Fw, vendor: Test}
connections:
  api: {type: https}
services:
  firmware:
    operations:
"""


@pytest.mark.parametrize(
    ("operations", "problem"),
    [
        (
            "      version: {http: {path: /v}}\n",
            "`version` must capture `version`",
        ),
        (
            "      upgrade: {http: {method: POST, path: /u}}\n",
            "`upgrade` must declare the parameter `version`",
        ),
        (
            "      restore: {http: {method: POST, path: /r, multipart: {f: {content: x}}}}\n",
            "`restore` must declare the parameter `config`",
        ),
    ],
)
def test_lifecycle_operations_have_the_agreed_shape(operations: str, problem: str) -> None:
    with pytest.raises(DictionaryError, match=problem):
        load_provider_text(BASE + operations)


def test_each_lifecycle_operation_is_declared_once() -> None:
    text = (
        BASE
        + "      version: {http: {path: /v}, response: {capture: {version: $.v}}}\n"
        + "  other:\n    operations:\n"
        + "      version: {http: {path: /w}, response: {format: text}}\n"
    )
    with pytest.raises(DictionaryError, match="already declared by service `firmware`"):
        load_provider_text(text)
    ok = BASE + "      version: {http: {path: /v}, response: {format: text}}\n"
    assert "version" in load_provider_text(ok).dictionary.services["firmware"].operations
