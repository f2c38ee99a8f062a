"""Backup schedules (cron, macros, `@every`) and which backups are kept (pure)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from vnf_operator.core import revisions as rv
from vnf_operator.core.schedule import ScheduleError, format_time, parse_schedule, parse_time

pytestmark = pytest.mark.unit


def at(text: str) -> datetime:
    t = parse_time(text)
    assert t is not None
    return t


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        ("0 3 * * *", "2026-01-01T02:59:59Z", "2026-01-01T03:00:00Z"),
        ("0 3 * * *", "2026-01-01T03:00:00Z", "2026-01-02T03:00:00Z"),
        ("*/15 * * * *", "2026-01-01T10:07:00Z", "2026-01-01T10:15:00Z"),
        ("30 1-3/2 * * *", "2026-01-01T01:31:00Z", "2026-01-01T03:30:00Z"),
        ("0 0 1 * *", "2026-01-31T12:00:00Z", "2026-02-01T00:00:00Z"),
        ("0 0 29 2 *", "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"),
        ("0 12 * * 1,5", "2026-01-01T00:00:00Z", "2026-01-02T12:00:00Z"),  # Thursday → Friday
        ("0 12 * * 7", "2026-01-01T00:00:00Z", "2026-01-04T12:00:00Z"),  # 7 is Sunday too
        ("0 0 13 * 5", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),  # either day field matches
        ("@daily", "2026-12-31T23:00:00Z", "2027-01-01T00:00:00Z"),
        ("@hourly", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z"),
        ("@weekly", "2026-01-01T00:00:00Z", "2026-01-04T00:00:00Z"),
        ("@every 90s", "2026-01-01T00:00:00Z", "2026-01-01T00:01:30Z"),
        ("@every 1h30m", "2026-01-01T00:00:00Z", "2026-01-01T01:30:00Z"),
    ],
)
def test_next_run(schedule: str, after: str, expected: str) -> None:
    assert format_time(parse_schedule(schedule).next_after(at(after))) == expected


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        ("every day", "needs 5 fields"),
        ("0 3 * *", "needs 5 fields"),
        ("60 * * * *", "minute field '60': values must be within 0-59"),
        ("0 24 * * *", "hour field"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("a * * * *", "is not a number, range or"),
        ("5-1 * * * *", "values must be within"),
        ("@fortnightly", "unknown schedule macro"),
        ("@every", "is not a duration"),
        ("@every 0s", "must be greater than zero"),
        ("@every 1d", "is not a duration"),
        ("0 0 31 2 *", "never fires"),
    ],
)
def test_bad_schedules_name_the_problem(schedule: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem):
        parse_schedule(schedule).next_after(datetime(2026, 1, 1, tzinfo=UTC))


def test_times_round_trip_and_reject_other_formats() -> None:
    assert format_time(at("2026-05-06T07:08:09Z")) == "2026-05-06T07:08:09Z"
    assert parse_time("yesterday") is None


def test_the_newest_backups_are_kept_and_the_last_scheduled_one_is_found() -> None:
    backups = [
        rv.BackupInfo("fw-backup-0", "2026-01-02T00:00:00Z", "scheduled (@daily)"),
        rv.BackupInfo("fw-backup-1", "2026-01-03T00:00:00Z", "before upgrading from 25.1 to 25.7"),
        rv.BackupInfo("fw-backup-2", "2026-01-01T00:00:00Z", "scheduled (@daily)"),
    ]
    assert [b.name for b in rv.backups_to_prune(backups, 2)] == ["fw-backup-2"]
    assert rv.backups_to_prune(backups, 0) == rv.newest_first(backups)[1:]  # at least one stays
    assert rv.last_scheduled(backups) == "2026-01-02T00:00:00Z"
    assert rv.last_scheduled(backups[1:2]) == ""
    assert backups[1].status() == {
        "name": "fw-backup-1",
        "created": "2026-01-03T00:00:00Z",
        "reason": "before upgrading from 25.1 to 25.7",
    }
