"""Revisions of desired state: hashing, pruning, choosing what to apply, backup slots (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from vnf_operator.core import revisions as rv

pytestmark = pytest.mark.unit

APPLIANCE: dict[str, Any] = {
    "apiVersion": "vnf.operators.dev/v1alpha1",
    "kind": "VnfAppliance",
    "metadata": {"name": "fw", "namespace": "net", "uid": "1234-abcd", "generation": 7},
}


def rev(number: int, digest: str | None = None, **kw: Any) -> rv.RevisionInfo:
    return rv.RevisionInfo(name=f"fw-{number}", number=number, hash=digest or f"h{number}", **kw)


# --------------------------------------------------------------------------- hashing


def test_desired_state_keeps_only_provider_and_services() -> None:
    spec = {
        "providerRef": {"name": "opnsense"},
        "services": {"firewall_rules": {"items": [{"description": "a"}]}},
        "management": {"host": "10.0.0.1"},
        "paused": False,
    }
    assert rv.desired_state(spec) == {
        "providerRef": {"name": "opnsense"},
        "services": {"firewall_rules": {"items": [{"description": "a"}]}},
    }
    assert rv.desired_state({}) == {"providerRef": {}, "services": {}}


def test_hash_ignores_key_order_but_not_values_or_item_order() -> None:
    a = {"providerRef": {"name": "p"}, "services": {"s": {"policy": "replaced", "items": [{"x": 1, "y": 2}]}}}
    b = {"services": {"s": {"items": [{"y": 2, "x": 1}], "policy": "replaced"}}, "providerRef": {"name": "p"}}
    assert rv.state_hash(a) == rv.state_hash(b)
    c = {"providerRef": {"name": "p"}, "services": {"s": {"policy": "replaced", "items": [{"x": 1, "y": 3}]}}}
    assert rv.state_hash(a) != rv.state_hash(c)
    two = {"providerRef": {}, "services": {"s": {"items": [{"k": 1}, {"k": 2}]}}}
    swapped = {"providerRef": {}, "services": {"s": {"items": [{"k": 2}, {"k": 1}]}}}
    assert rv.state_hash(two) != rv.state_hash(swapped)  # order is desired state (ordered rules)
    pinned = {"providerRef": {"name": "p", "version": "1.0.0"}, "services": a["services"]}
    assert rv.state_hash(pinned) != rv.state_hash(a)
    assert len(rv.state_hash(a)) == 64


def test_revision_object_is_owned_and_labelled() -> None:
    state = {"providerRef": {"name": "p"}, "services": {}}
    digest = rv.state_hash(state)
    obj = rv.controller_revision(APPLIANCE, state, digest, 3)
    meta = obj["metadata"]
    assert obj["apiVersion"] == "apps/v1" and obj["kind"] == "ControllerRevision"
    assert obj["revision"] == 3 and obj["data"] == state
    assert meta["name"] == f"fw-{digest[:10]}" and meta["namespace"] == "net"
    assert meta["labels"][rv.APPLIANCE_UID_LABEL] == "1234-abcd"
    assert meta["annotations"][rv.HASH_ANNOTATION] == digest
    assert meta["annotations"][rv.GENERATION_ANNOTATION] == "7"
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "VnfAppliance",
        "fw",
        "1234-abcd",
        True,
    )
    info = rv.RevisionInfo.from_object(obj)
    assert info == rv.RevisionInfo(name=meta["name"], number=3, hash=digest, generation=7)


def test_revision_info_reads_failure_marks_and_rejects_foreign_objects() -> None:
    obj = {
        "metadata": {
            "name": "fw-abc",
            "annotations": {
                rv.HASH_ANNOTATION: "abc",
                rv.FAILED_ANNOTATION: "health check 'x' failed",
                rv.FAILED_GENERATION_ANNOTATION: "4",
                rv.FAILED_REQUEST_ANNOTATION: "r1",
            },
        },
        "revision": 2,
    }
    info = rv.RevisionInfo.from_object(obj)
    assert info is not None
    assert (info.failed, info.failed_generation, info.failed_request) == ("health check 'x' failed", 4, "r1")
    assert rv.RevisionInfo.from_object({"metadata": {"name": "x"}, "revision": 1}) is None
    assert (
        rv.RevisionInfo.from_object({"metadata": {"name": "x", "annotations": {rv.HASH_ANNOTATION: "h"}}})
        is None
    )


def test_long_names_fit_the_limits() -> None:
    long = "a" * 253
    assert len(rv.revision_name(long, "f" * 64)) <= 253
    assert rv.label_value("fw") == "fw"
    hashed = rv.label_value("x" * 100)
    assert len(hashed) <= 63 and hashed.startswith("h-")
    assert rv.label_value("a.b-c_d") == "a.b-c_d"


# --------------------------------------------------------------------------- history


def test_next_number_and_lookups() -> None:
    revs = [rev(1), rev(3), rev(2)]
    assert rv.next_number(revs) == 4
    assert rv.next_number([]) == 1
    assert rv.by_number(revs, 3) == rev(3)
    assert rv.by_hash(revs, "h2") == rev(2)
    assert rv.by_number(revs, 9) is None


@pytest.mark.parametrize(
    ("ref", "expected"),
    [(2, 2), ("2", 2), ("fw-3", 3), (None, None), ("", None), (9, None), (True, None), ("nope", None)],
)
def test_resolve_status_reference(ref: Any, expected: int | None) -> None:
    revs = [rev(1), rev(2), rev(3)]
    found = rv.resolve_ref(revs, ref)
    assert (found.number if found else None) == expected


def test_prune_drops_the_oldest_beyond_the_limit() -> None:
    revs = [rev(n) for n in range(1, 14)]
    assert [r.number for r in rv.prune(revs, 10)] == [1, 2, 3]
    assert rv.prune(revs[:10], 10) == []


def test_prune_never_drops_current_or_last_good() -> None:
    revs = [rev(n) for n in range(1, 13)]
    doomed = rv.prune(revs, 10, keep=[1, 12])
    assert [r.number for r in doomed] == [2, 3]
    # Everything protected: nothing goes, even beyond the limit.
    assert rv.prune(revs[:3], 1, keep=[1, 2, 3]) == []
    # A limit below one still keeps one.
    assert [r.number for r in rv.prune(revs[:3], 0)] == [1, 2]


# --------------------------------------------------------------------------- what to apply


def test_the_spec_is_applied_by_default() -> None:
    choice = rv.choose(spec_hash="h9", annotations={}, revisions=[rev(1)], last_good=1)
    assert (choice.mode, choice.revision, choice.problem) == ("spec", None, "")
    again = rv.choose(spec_hash="h1", annotations={}, revisions=[rev(1)], last_good=1)
    assert (again.mode, again.revision) == ("spec", rev(1))


def test_rollback_to_pins_a_revision() -> None:
    revs = [rev(1), rev(2), rev(3)]
    choice = rv.choose(spec_hash="h3", annotations={rv.ROLLBACK_TO: "1"}, revisions=revs, last_good=3)
    assert (choice.mode, choice.revision) == ("pinned", rev(1))
    spaced = rv.choose(spec_hash="h3", annotations={rv.ROLLBACK_TO: " 2 "}, revisions=revs, last_good=3)
    assert spaced.revision == rev(2)


@pytest.mark.parametrize(
    ("value", "reason", "text"),
    [
        ("abc", "InvalidRollbackTarget", "'abc' is not a revision number"),
        ("0", "InvalidRollbackTarget", "not a revision number"),
        ("-1", "InvalidRollbackTarget", "not a revision number"),
        ("7", "RollbackTargetNotFound", "revision 7 does not exist (revisions: 1, 2)"),
    ],
)
def test_bad_rollback_to_is_a_terminal_problem(value: str, reason: str, text: str) -> None:
    choice = rv.choose(
        spec_hash="h2", annotations={rv.ROLLBACK_TO: value}, revisions=[rev(2), rev(1)], last_good=2
    )
    assert choice.reason == reason
    assert text in choice.problem
    assert rv.ROLLBACK_TO in choice.problem


def test_an_empty_rollback_to_is_ignored() -> None:
    choice = rv.choose(spec_hash="h1", annotations={rv.ROLLBACK_TO: ""}, revisions=[rev(1)], last_good=1)
    assert choice.mode == "spec"


def test_a_failed_spec_keeps_the_last_good_revision() -> None:
    bad = rev(3, failed="health check 'firmware_status' (phase api) failed: 503", failed_generation=5)
    revs = [rev(1), rev(2), bad]
    choice = rv.choose(spec_hash="h3", annotations={}, revisions=revs, last_good=2)
    assert (choice.mode, choice.revision, choice.failed, choice.problem) == ("rolledBack", rev(2), bad, "")
    message = rv.failure_message(bad, rev(2))
    assert "firmware_status" in message
    assert "revision 3 (generation 5)" in message and "rolled back to revision 2" in message
    # A changed spec is applied again (the failure mark belongs to the old hash).
    assert rv.choose(spec_hash="h4", annotations={}, revisions=revs, last_good=2).mode == "spec"


def test_a_new_reconcile_request_retries_a_failed_spec() -> None:
    bad = rev(3, failed="unhealthy", failed_request="a")
    revs = [rev(2), bad]
    same = rv.choose(spec_hash="h3", annotations={rv.RECONCILE_REQUESTED: "a"}, revisions=revs, last_good=2)
    assert same.mode == "rolledBack"
    retried = rv.choose(
        spec_hash="h3", annotations={rv.RECONCILE_REQUESTED: "b"}, revisions=revs, last_good=2
    )
    assert (retried.mode, retried.revision) == ("spec", bad)


def test_a_failed_spec_without_a_good_revision_stalls() -> None:
    bad = rev(1, failed="unhealthy")
    choice = rv.choose(spec_hash="h1", annotations={}, revisions=[bad], last_good=None)
    assert choice.mode == "rolledBack" and choice.revision is None
    assert choice.reason == "UnhealthyAfterApply"
    assert "no earlier good revision" in choice.problem
    # The last good revision being the failed one itself does not count.
    same = rv.choose(spec_hash="h1", annotations={}, revisions=[bad], last_good=1)
    assert same.problem


def test_the_pin_wins_over_a_failed_spec() -> None:
    revs = [rev(1), rev(2, failed="unhealthy")]
    choice = rv.choose(spec_hash="h2", annotations={rv.ROLLBACK_TO: "1"}, revisions=revs, last_good=1)
    assert (choice.mode, choice.revision) == ("pinned", rev(1))


# --------------------------------------------------------------------------- backups


def test_backup_slots_fill_then_overwrite_the_oldest() -> None:
    assert rv.backup_slot("fw", [], 3) == "fw-backup-0"
    have = [rv.BackupInfo("fw-backup-0", "2026-01-01T00:00:00Z")]
    assert rv.backup_slot("fw", have, 3) == "fw-backup-1"
    full = [
        rv.BackupInfo("fw-backup-0", "2026-01-03T00:00:00Z"),
        rv.BackupInfo("fw-backup-1", "2026-01-01T00:00:00Z"),
        rv.BackupInfo("fw-backup-2", "2026-01-02T00:00:00Z"),
    ]
    assert rv.backup_slot("fw", full, 3) == "fw-backup-1"
    # A smaller limit later: only the first slots are used again.
    assert rv.backup_slot("fw", full, 2) == "fw-backup-1"
    assert len(rv.backup_slot("x" * 253, [], 5)) <= 253
