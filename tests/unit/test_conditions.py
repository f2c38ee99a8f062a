"""Conditions from reconcile results (Flux summarize pattern) and the kstatus reading of them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnf_operator.core.conditions import (
    CONDITION_TYPES,
    Condition,
    ReconcileResults,
    StepResult,
    kstatus_status,
    reason_text,
    summarize,
)

pytestmark = pytest.mark.unit

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:05:00Z"
OK = StepResult(ok=True)


def all_ok(**changes: Any) -> ReconcileResults:
    base: dict[str, Any] = {"provider": OK, "validation": OK, "health": OK, "bootstrap": OK, "sync": OK}
    base.update(changes)
    return ReconcileResults(**base)


def by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in conditions}


def trio(conditions: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    c = by_type(conditions)
    return tuple((c[t]["status"], c[t]["reason"]) for t in ("Ready", "Reconciling", "Stalled"))


def obj(conditions: list[dict[str, Any]], *, generation: int = 1, observed: int | None = 1) -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": conditions}
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "status": status}


# --------------------------------------------------------------------------- shape


def test_full_ordered_list_of_plain_dicts() -> None:
    conds = summarize(all_ok(), generation=3, previous=[], now=T0)
    assert [c["type"] for c in conds] == list(CONDITION_TYPES)
    assert CONDITION_TYPES == (
        "Ready",
        "Reconciling",
        "Stalled",
        "ProviderResolved",
        "Healthy",
        "Bootstrapped",
        "InSync",
    )
    for c in conds:
        assert set(c) == {"type", "status", "reason", "message", "observedGeneration", "lastTransitionTime"}
        assert c["observedGeneration"] == 3
        assert c["lastTransitionTime"] == T0
        assert c["status"] in ("True", "False", "Unknown")


# --------------------------------------------------------------------------- Ready / Reconciling / Stalled


def test_all_ok_is_ready_reconciled() -> None:
    conds = summarize(all_ok(), generation=1, previous=[], now=T0)
    assert trio(conds) == (("True", "Reconciled"), ("False", "Reconciled"), ("False", "Reconciled"))
    c = by_type(conds)
    assert [c[t]["status"] for t in ("ProviderResolved", "Healthy", "Bootstrapped", "InSync")] == ["True"] * 4
    assert kstatus_status(obj(conds)) == "Current"


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ("validation", "InvalidSpec"),
        ("provider", "ProviderNotFound"),
        ("provider", "SecretNotFound"),
        ("sync", "ItemValidationFailed"),
    ],
)
def test_terminal_failure_stalls(step: str, reason: str) -> None:
    failure = StepResult(ok=False, reason=reason, message="what is wrong", terminal=True)
    conds = summarize(all_ok(**{step: failure}), generation=2, previous=[], now=T0)
    assert trio(conds) == (("False", reason), ("False", reason), ("True", reason))
    c = by_type(conds)
    assert c["Ready"]["message"] == c["Stalled"]["message"] == "what is wrong"
    assert kstatus_status(obj(conds, generation=2, observed=2)) == "Failed"


def test_transient_failure_retries() -> None:
    unreachable = StepResult(ok=False, reason="DeviceUnreachable", message="connect timeout")
    conds = summarize(
        all_ok(health=unreachable, bootstrap=None, sync=None), generation=1, previous=[], now=T0
    )
    assert trio(conds) == (
        ("False", "DeviceUnreachable"),
        ("True", "RetryingAfterError"),
        ("False", "RetryingAfterError"),
    )
    c = by_type(conds)
    assert "connect timeout" in c["Reconciling"]["message"]
    assert c["Healthy"]["status"] == "False" and c["Healthy"]["reason"] == "DeviceUnreachable"
    assert kstatus_status(obj(conds)) == "InProgress"


def test_terminal_wins_over_transient_and_first_terminal_wins() -> None:
    results = all_ok(
        provider=StepResult(ok=False, reason="ProviderInvalid", terminal=True),
        health=StepResult(ok=False, reason="DeviceUnreachable"),
        sync=StepResult(ok=False, reason="ItemValidationFailed", terminal=True),
    )
    assert trio(summarize(results, generation=1, previous=[], now=T0))[2] == ("True", "ProviderInvalid")


def test_failure_without_reason_or_message_gets_defaults() -> None:
    conds = summarize(all_ok(bootstrap=StepResult(ok=False)), generation=1, previous=[], now=T0)
    c = by_type(conds)
    assert c["Ready"]["reason"] == "BootstrapFailed" and c["Bootstrapped"]["reason"] == "BootstrapFailed"
    assert c["Ready"]["message"] == "bootstrap failed"


def test_paused() -> None:
    conds = summarize(ReconcileResults(paused=True), generation=1, previous=[], now=T0)
    assert trio(conds) == (("True", "Paused"), ("False", "Paused"), ("False", "Paused"))
    assert "paused" in by_type(conds)["Ready"]["message"]


def test_dry_run_explains_itself() -> None:
    clean = by_type(summarize(all_ok(dry_run=True), generation=1, previous=[], now=T0))
    assert (clean["Ready"]["status"], clean["Ready"]["reason"]) == ("True", "DryRun")
    assert clean["InSync"]["status"] == "True"
    drift = by_type(summarize(all_ok(dry_run=True, drift_detected=True), generation=1, previous=[], now=T0))
    assert (drift["Ready"]["status"], drift["Ready"]["reason"]) == ("True", "DryRun")
    assert "not applied" in drift["Ready"]["message"]
    assert (drift["InSync"]["status"], drift["InSync"]["reason"]) == ("False", "DriftDetected")


def test_report_only_drift_is_ready_but_not_in_sync() -> None:
    c = by_type(summarize(all_ok(drift_detected=True), generation=1, previous=[], now=T0))
    assert (c["Ready"]["status"], c["Ready"]["reason"]) == ("True", "DriftDetected")
    assert (c["InSync"]["status"], c["InSync"]["reason"]) == ("False", "DriftDetected")
    assert (c["Stalled"]["status"], c["Reconciling"]["status"]) == ("False", "False")


def test_in_progress_and_undetermined_steps() -> None:
    for results in (
        all_ok(in_progress=True),
        all_ok(bootstrap=StepResult(ok=None, reason="WaitingForReboot", message="rebooting")),
        ReconcileResults(),
    ):
        conds = summarize(results, generation=1, previous=[], now=T0)
        assert trio(conds) == (("Unknown", "Progressing"), ("True", "Progressing"), ("False", "Progressing"))
        assert kstatus_status(obj(conds)) == "InProgress"
    c = by_type(
        summarize(
            all_ok(bootstrap=StepResult(ok=None, reason="WaitingForReboot")),
            generation=1,
            previous=[],
            now=T0,
        )
    )
    assert (c["Bootstrapped"]["status"], c["Bootstrapped"]["reason"]) == ("Unknown", "WaitingForReboot")


def test_failure_wins_over_paused() -> None:
    results = ReconcileResults(
        paused=True, validation=StepResult(ok=False, reason="InvalidSpec", terminal=True)
    )
    assert trio(summarize(results, generation=1, previous=[], now=T0))[2] == ("True", "InvalidSpec")


# --------------------------------------------------------------------------- domain conditions


def test_steps_not_run_keep_their_previous_condition() -> None:
    first = summarize(all_ok(), generation=1, previous=[], now=T0)
    failed = StepResult(ok=False, reason="InvalidSpec", message="bad", terminal=True)
    second = summarize(ReconcileResults(provider=OK, validation=failed), generation=2, previous=first, now=T1)
    c = by_type(second)
    assert c["Healthy"] == by_type(first)["Healthy"]  # untouched, still says generation 1
    assert c["Healthy"]["observedGeneration"] == 1
    assert c["ProviderResolved"]["observedGeneration"] == 2
    assert c["Ready"]["observedGeneration"] == 2


def test_steps_never_run_are_unknown_pending() -> None:
    c = by_type(summarize(ReconcileResults(provider=OK, validation=OK), generation=1, previous=[], now=T0))
    assert (c["Healthy"]["status"], c["Healthy"]["reason"]) == ("Unknown", "Pending")
    assert c["Ready"]["status"] == "True"


def test_step_reasons_are_used() -> None:
    results = all_ok(health=StepResult(ok=True, reason="HealthChecksPassed", message="3/3 checks"))
    c = by_type(summarize(results, generation=1, previous=[], now=T0))
    assert (c["Healthy"]["reason"], c["Healthy"]["message"]) == ("HealthChecksPassed", "3/3 checks")


# --------------------------------------------------------------------------- transition times


def test_transition_time_changes_only_with_status() -> None:
    first = summarize(all_ok(), generation=1, previous=[], now=T0)
    same = summarize(
        all_ok(sync=StepResult(ok=True, message="2 changes applied")), generation=2, previous=first, now=T1
    )
    assert all(c["lastTransitionTime"] == T0 for c in same)
    assert by_type(same)["Ready"]["message"] == "2 changes applied"
    broken = summarize(
        all_ok(health=StepResult(ok=False, reason="DeviceUnreachable")), generation=2, previous=same, now=T1
    )
    c = by_type(broken)
    assert c["Ready"]["lastTransitionTime"] == T1
    assert c["Reconciling"]["lastTransitionTime"] == T1
    assert c["Stalled"]["lastTransitionTime"] == T0  # False before, False now
    assert c["Bootstrapped"]["lastTransitionTime"] == T0


def test_previous_junk_is_tolerated() -> None:
    previous: list[Any] = [
        "junk",
        {"type": "Ready"},
        {"type": "Ready", "status": "True", "reason": "Reconciled"},
        {"status": "True"},
    ]
    c = by_type(summarize(all_ok(), generation=1, previous=previous, now=T1))
    assert c["Ready"]["lastTransitionTime"] == T1  # previous Ready had no time: now
    assert Condition.from_dict({"type": "X", "status": "Maybe"}) is None


# --------------------------------------------------------------------------- reasons and messages


def test_reasons_become_camel_case() -> None:
    assert reason_text("DeviceUnreachable", "D") == "DeviceUnreachable"
    assert reason_text("device unreachable", "D") == "DeviceUnreachable"
    assert reason_text("tls-verify failed!", "D") == "TlsVerifyFailed"
    assert reason_text("", "Default") == "Default"
    assert reason_text("123", "Default") == "Default"
    results = all_ok(health=StepResult(ok=False, reason="connection refused"))
    assert (
        by_type(summarize(results, generation=1, previous=[], now=T0))["Ready"]["reason"]
        == "ConnectionRefused"
    )


def test_messages_are_masked_and_bounded() -> None:
    results = all_ok(
        health=StepResult(ok=False, reason="AuthFailed", message="token s3cr3t-token refused" + "x" * 9000)
    )
    conds = summarize(
        results, generation=1, previous=[], now=T0, mask=lambda t: t.replace("s3cr3t-token", "******")
    )
    for c in conds:
        assert "s3cr3t" not in c["message"]
        assert len(c["message"]) <= 4096


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_reason_text_is_valid(text: str) -> None:
    import re

    assert re.fullmatch(r"[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?", reason_text(text, "Fallback"))


# --------------------------------------------------------------------------- kstatus


def test_kstatus_rules() -> None:
    ready = [{"type": "Ready", "status": "True", "observedGeneration": 1}]
    assert kstatus_status({"metadata": {"deletionTimestamp": "x", "generation": 1}}) == "Terminating"
    assert kstatus_status(obj(ready, generation=2, observed=1)) == "InProgress"
    assert kstatus_status(obj(ready, observed=None)) == "Current"
    assert kstatus_status(
        obj([{"type": "Ready", "status": "True", "observedGeneration": 1}], generation=2, observed=None)
    ) == ("InProgress")
    assert kstatus_status(obj([*ready, {"type": "Reconciling", "status": "True"}])) == "InProgress"
    assert kstatus_status(obj([*ready, {"type": "Stalled", "status": "True"}])) == "Failed"
    assert (
        kstatus_status(
            obj([{"type": "Reconciling", "status": "True"}, {"type": "Stalled", "status": "True"}])
        )
        == "InProgress"
    )
    assert kstatus_status(obj([{"type": "Ready", "status": "False"}])) == "InProgress"
    assert kstatus_status(obj([{"type": "Ready", "status": "Unknown"}])) == "InProgress"
    assert kstatus_status(obj([])) == "Current"
    assert kstatus_status({}) == "Current"
    assert kstatus_status({"metadata": {"generation": 1}, "status": {"conditions": "junk"}}) == "Current"


steps = st.one_of(
    st.none(),
    st.builds(
        StepResult,
        ok=st.sampled_from([True, False, None]),
        reason=st.sampled_from(["", "SomeReason", "bad reason"]),
        message=st.text(max_size=10),
        terminal=st.booleans(),
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    results=st.builds(
        ReconcileResults,
        provider=steps,
        validation=steps,
        health=steps,
        bootstrap=steps,
        sync=steps,
        paused=st.booleans(),
        dry_run=st.booleans(),
        in_progress=st.booleans(),
        drift_detected=st.booleans(),
    ),
    generation=st.integers(1, 5),
)
def test_summary_is_always_consistent(results: ReconcileResults, generation: int) -> None:
    conds = summarize(results, generation=generation, previous=[], now=T0)
    c = by_type(conds)
    ready, reconciling, stalled = c["Ready"]["status"], c["Reconciling"]["status"], c["Stalled"]["status"]
    assert not (reconciling == "True" and stalled == "True")
    assert not (ready == "True" and (reconciling == "True" or stalled == "True"))
    failures = [s for _, s in results.steps() if s is not None and s.ok is False]
    assert (stalled == "True") == any(s.terminal for s in failures)
    if failures:
        assert ready == "False"
    # kstatus agrees with the trio.
    expected = {"True": "Current", "False": "InProgress", "Unknown": "InProgress"}[ready]
    if stalled == "True":
        expected = "Failed"
    if reconciling == "True":
        expected = "InProgress"
    assert kstatus_status(obj(conds, generation=generation, observed=generation)) == expected
