"""A status patch that would change only times is not written (core.status.write_needed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from vnf_operator.core.status import merge_patch, parse_time, write_needed

NOW = datetime(2026, 11, 22, 12, 0, 0, tzinfo=UTC)


def stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def status(at: datetime, *, latency: int = 12, create: int = 0, ready: str = "True") -> dict[str, Any]:
    return {
        "observedGeneration": 3,
        "conditions": [{"type": "Ready", "status": ready, "reason": "InSync", "lastTransitionTime": "x"}],
        "health": {
            "phases": [{"name": "api", "status": "Passed", "latencyMs": latency}],
            "checkedAt": stamp(at),
        },
        "services": {"rules": {"desired": 2, "lastPlan": {"create": create}, "lastSyncTime": stamp(at)}},
        "lastSyncTime": stamp(at),
    }


def needed(current: dict[str, Any], patch: dict[str, Any], heartbeat: float = 900) -> bool:
    return write_needed(current, patch, now=NOW, heartbeat_seconds=heartbeat)


def test_only_times_and_latencies_changed_is_not_written() -> None:
    current = status(NOW - timedelta(seconds=300))
    assert not needed(current, status(NOW, latency=40))


def test_anything_else_is_written() -> None:
    current = status(NOW - timedelta(seconds=10))
    assert needed(current, status(NOW, create=1))
    assert needed(current, status(NOW, ready="False"))
    assert needed(current, {**status(NOW), "observedGeneration": 4})
    assert needed(current, {**status(NOW), "lastHandledReconcileAt": "abc"})


def test_a_removed_field_is_a_change() -> None:
    current = {**status(NOW - timedelta(seconds=10)), "plan": ["create rule a"]}
    assert needed(current, {**status(NOW), "plan": None})


def test_heartbeat_refreshes_the_times() -> None:
    assert needed(status(NOW - timedelta(seconds=901)), status(NOW))
    assert not needed(status(NOW - timedelta(seconds=899)), status(NOW))
    assert needed(status(NOW - timedelta(seconds=5)), status(NOW), heartbeat=0)


def test_first_status_and_unreadable_times_are_written() -> None:
    assert needed({}, status(NOW))
    assert needed({**status(NOW), "lastSyncTime": "yesterday"}, status(NOW))
    # A patch without a sync time (not synced: paused, unhealthy) over the same status: nothing new.
    no_sync = {k: v for k, v in status(NOW).items() if k != "lastSyncTime"}
    assert not needed(no_sync, no_sync)


def test_parse_time() -> None:
    assert parse_time("2026-11-22T12:00:00Z") == NOW
    assert parse_time("2026-11-22T12:00:00") == NOW
    assert parse_time(None) is None and parse_time("") is None and parse_time("soon") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@given(objects, objects)
def test_merge_patch_follows_rfc7386(target: dict[str, Any], patch: dict[str, Any]) -> None:
    merged = merge_patch(target, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in merged
        elif not isinstance(value, dict):
            assert merged[key] == value
    for key in target.keys() - patch.keys():
        assert merged[key] == target[key]
    assert merge_patch(merged, patch) == merged  # idempotent
