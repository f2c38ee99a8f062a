"""Backup schedules (`spec.backup.schedule`): cron expressions and fixed intervals. Pure.

What GitOps users already write for CronJobs and Velero schedules:

- five cron fields `minute hour day-of-month month day-of-week` (UTC) with `*`, `a-b`, `*/n`,
  `a-b/n` and comma lists; day-of-week 0-7 (0 and 7 are Sunday); when both day fields are
  restricted, either may match (as in cron);
- the macros `@yearly`/`@annually`, `@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly`;
- `@every <duration>` (`30s`, `6h`, `1h30m`): a fixed interval after the previous backup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS: Final = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_DURATION: Final = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SEARCH_LIMIT: Final = timedelta(days=366 * 5)


class ScheduleError(ValueError):
    """A schedule that is neither a cron expression nor `@every <duration>`; names the bad part."""


@dataclass(frozen=True)
class Schedule:
    text: str
    every: timedelta | None = None
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    days: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    weekdays: frozenset[int] = frozenset()
    any_day: bool = True
    any_weekday: bool = True

    def next_after(self, after: datetime) -> datetime:
        """The first time strictly after `after` that the schedule fires (UTC)."""
        after = after.astimezone(UTC)
        if self.every is not None:
            return after + self.every
        t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = after + _SEARCH_LIMIT
        while t <= end:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise ScheduleError(f"schedule {self.text!r} never fires")

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow


def parse_duration(text: str) -> timedelta:
    """`30s`, `5m`, `6h`, `1h30m` → a positive timedelta."""
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None:
        raise ScheduleError(f"{text!r} is not a duration such as 30s, 15m, 6h or 1h30m")
    h, mi, s = (int(g or 0) for g in m.groups())
    total = timedelta(hours=h, minutes=mi, seconds=s)
    if total <= timedelta(0):
        raise ScheduleError(f"duration {text!r} must be greater than zero")
    return total


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ScheduleError(f"{name} field {text!r}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if rng == "*":
            start, stop = low, high
        else:
            a, dash, b = rng.partition("-")
            if not a.isdigit() or (dash and not b.isdigit()):
                raise ScheduleError(f"{name} field {text!r}: {part!r} is not a number, range or */step")
            start, stop = int(a), int(b) if dash else (high if step_text else int(a))
        if not (low <= start <= high and low <= stop <= high) or start > stop:
            raise ScheduleError(f"{name} field {text!r}: values must be within {low}-{high}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


def parse_schedule(text: str) -> Schedule:
    """A cron expression, a macro or `@every <duration>`; ScheduleError names what is wrong."""
    source = text.strip()
    if source.startswith("@every"):
        return Schedule(source, every=parse_duration(source[len("@every") :]))
    expr = MACROS.get(source.lower(), source)
    if expr.startswith("@"):
        known = ", ".join([*MACROS, "@every <duration>"])
        raise ScheduleError(f"unknown schedule macro {source!r} (known: {known})")
    parts = expr.split()
    if len(parts) != 5:
        raise ScheduleError(
            f"schedule {source!r} needs 5 fields (minute hour day-of-month month day-of-week), "
            f"a macro such as @daily, or @every <duration>"
        )
    sets = [_field(p, name, low, high) for p, (name, low, high) in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Schedule(
        source,
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=weekdays,
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )


def parse_time(text: str) -> datetime | None:
    """An RFC 3339 UTC time as the operator writes it (`2026-01-02T03:04:05Z`); None if it is not one."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def format_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
