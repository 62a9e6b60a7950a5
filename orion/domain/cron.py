"""Cron schedules: ``"0 3 * * *"`` read once, and the next run time after a moment, in a zone.

Five fields (minute hour day-of-month month day-of-week) as cron writes them, or six with
seconds first (``"*/10 * * * * *"``, as Nomad's periodic jobs accept): ``*``, numbers, ranges
``1-5``, lists ``1,15``, steps ``*/15`` and ``10-50/20``, month and weekday names (``jan``,
``mon``), ``7`` for Sunday, and the shorthands ``@hourly``, ``@daily``/``@midnight``,
``@weekly``, ``@monthly``, ``@yearly``/``@annually``. Day-of-month and day-of-week follow
cron's rule: when both are restricted, a day matching either one runs.

Times are the zone's wall clock (``zoneinfo``; UTC unless the job names a zone). A wall time
the zone skips (the hour lost when clocks go forward) does not occur; one it repeats (the
hour gained when they go back) runs once, at its first occurrence. Moments are float UNIX
seconds, like every other time in Orion.

Pure: :func:`next_after` is a function of the schedule, the zone and a moment, checked in
``tests/unit/domain/test_cron.py`` against a second-by-second (minute-by-minute) scan.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MONTHS = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
_SHORTHANDS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
               "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
# (name, lowest, highest, names) per field, seconds first.
_FIELDS = (("second", 0, 59, {}), ("minute", 0, 59, {}), ("hour", 0, 23, {}),
           ("day of month", 1, 31, {}), ("month", 1, 12, _MONTHS), ("day of week", 0, 7, _DAYS))
# A schedule whose next time is further than this is refused as never running (Feb 30th).
_HORIZON_DAYS = 366 * 8 + 2


class CronError(ValueError):
    """A schedule or zone that cannot be read; the message names the field and the fix."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule: the allowed values of each field, and whether the day fields are ``*``."""

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is "*"
    any_weekday: bool  # day of week is "*"

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week  # cron: both restricted, either one


def _number(text: str, name: str, names: dict[str, int]) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a number" + (f" or a name ({', '.join(names)})" if names else ""))
    return int(text)


def _field(text: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _number(a, name, names), _number(b, name, names)
        else:
            first = _number(body, name, names)
            last = high if step_text else first
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise CronError(f"{name}: {part!r} is outside {low}-{high}")
        out.update(range(first, last + 1, step))
    return frozenset(out)


@cache
def parse(text: str) -> Schedule:
    """Read a schedule (module doc) or raise CronError naming the field."""
    source = " ".join(str(text).split())
    expanded = _SHORTHANDS.get(source.lower(), source)
    parts = expanded.split(" ")
    if len(parts) == 5:
        parts = ["0", *parts]
    if len(parts) != 6:
        raise CronError(f"{source!r} has {len(parts)} fields; a schedule has 5 (minute hour day month weekday) "
                        "or 6 (seconds first), e.g. \"0 3 * * *\"")
    values = [_field(p, name, low, high, names) for p, (name, low, high, names) in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in values[5])
    schedule = Schedule(source, values[0], values[1], values[2], values[3], values[4], weekdays,
                        parts[3] == "*", parts[5] == "*")
    if not any(schedule.day_matches(date(2000, 1, 1) + timedelta(days=i)) for i in range(366 * 4 + 1)):
        raise CronError(f"{source!r} never runs (no day matches it)")
    return schedule


@cache
def zone(name: str) -> ZoneInfo:
    """The zone ``name`` (IANA, like ``Europe/Paris``; "" is UTC) or CronError."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name!r}; use an IANA name like UTC or Europe/Paris") from exc


def _moment(day: date, hour: int, minute: int, second: int, tz: ZoneInfo) -> float | None:
    """The UNIX time of a wall time in ``tz``; None when the zone skips it, and the first of two
    when it repeats it (fold 0)."""
    wall = datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=tz)
    back = wall.astimezone(UTC).astimezone(tz)
    if back.replace(tzinfo=None) != wall.replace(tzinfo=None):
        return None  # a gap: clocks jumped over this wall time
    return wall.timestamp()


@cache
def _times(schedule: Schedule, reverse: bool) -> tuple[tuple[int, int, int], ...]:
    """Every (hour, minute, second) of a matching day, in order (built once per schedule)."""
    return tuple(sorted(((h, m, s) for h in schedule.hours for m in schedule.minutes for s in schedule.seconds),
                        reverse=reverse))


def next_after(schedule: Schedule, after: float, zone_name: str = "") -> float:
    """The first run time strictly after ``after`` (UNIX seconds), in zone ``zone_name``.

    On ``after``'s own day, wall times before its wall clock are skipped: a wall time earlier
    on one date is an earlier moment (the first of a repeated hour is taken), so this prunes
    nothing that could run, and a schedule with a run every second costs no day-long scan.
    """
    tz = zone(zone_name)
    start = datetime.fromtimestamp(math.floor(after), tz)
    first = (start.hour, start.minute, start.second)
    day = start.date()
    times = _times(schedule, reverse=False)
    for n in range(_HORIZON_DAYS):
        if schedule.day_matches(day):
            for hms in times:
                if n == 0 and hms < first:
                    continue
                at = _moment(day, *hms, tz)
                if at is not None and at > after:
                    return at
        day += timedelta(days=1)
    raise CronError(f"{schedule.text!r} does not run within {_HORIZON_DAYS} days")


def last_at_or_before(schedule: Schedule, now: float, zone_name: str = "") -> float | None:
    """The last run time at or before ``now`` (None: none within the horizon). On ``now``'s own
    day wall times more than two hours past its wall clock are skipped (no zone shifts its
    clock by more), the mirror of :func:`next_after`'s pruning."""
    tz = zone(zone_name)
    end = datetime.fromtimestamp(math.floor(now), tz)
    limit = (end.hour + 2, end.minute, end.second)
    day = end.date()
    times = _times(schedule, reverse=True)
    for n in range(_HORIZON_DAYS):
        if schedule.day_matches(day):
            for hms in times:
                if n == 0 and hms > limit:
                    continue
                at = _moment(day, *hms, tz)
                if at is not None and at <= now:
                    return at
        day -= timedelta(days=1)
    return None


def due_slot(schedule: Schedule, now: float, since: float, zone_name: str = "") -> float | None:
    """The last run time in (``since``, ``now``], or None: the one slot a planner that was away
    still runs (the earlier ones it missed are not caught up, as Kubernetes' CronJob and Nomad)."""
    found = last_at_or_before(schedule, now, zone_name)
    return found if found is not None and found > since else None
