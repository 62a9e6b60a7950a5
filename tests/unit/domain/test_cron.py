"""Cron schedules (orion/domain/cron.py): the forms cron and Nomad accept, the errors that name
the field, and next run times checked against the definition: a scan of every minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.domain import cron


def at(text: str, zone: str = "UTC") -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def test_the_forms_cron_writes():
    s = cron.parse("*/15 9-17 * * mon-fri")
    assert s.minutes == {0, 15, 30, 45} and s.hours == set(range(9, 18)) and s.weekdays == {1, 2, 3, 4, 5}
    assert cron.parse("@daily") == cron.parse("@daily") and cron.parse("@hourly").minutes == {0}
    assert cron.parse("0 0 * * 7").weekdays == {0}  # 7 is Sunday too
    assert cron.parse("*/10 * * * * *").seconds == {0, 10, 20, 30, 40, 50}  # six fields: seconds first
    assert cron.parse("10-50/20 * * * *").minutes == {10, 30, 50}


@pytest.mark.parametrize("text, error", [
    ("0 3 * *", "has 4 fields"),
    ("61 * * * *", "minute: '61' is outside 0-59"),
    ("* 24 * * *", "hour: '24' is outside 0-23"),
    ("* * * foo *", "month: 'foo' is not a number or a name"),
    ("*/0 * * * *", "minute: step '0' must be a positive number"),
    ("0 0 30 2 *", "never runs"),
])
def test_a_bad_schedule_is_refused_naming_the_field(text, error):
    with pytest.raises(cron.CronError, match=error):
        cron.parse(text)


def test_an_unknown_zone_is_refused():
    with pytest.raises(cron.CronError, match="unknown time zone 'Mars/Olympus'"):
        cron.zone("Mars/Olympus")


def test_both_day_fields_restricted_means_either():
    s = cron.parse("0 0 13 * fri")  # the 13th, and every Friday
    assert cron.next_after(s, at("2024-09-01T00:00")) == at("2024-09-06T00:00")  # a Friday
    assert cron.next_after(s, at("2024-09-10T00:00")) == at("2024-09-13T00:00")  # the 13th (a Friday too)
    assert cron.next_after(s, at("2024-09-14T00:00")) == at("2024-09-20T00:00")


def test_clocks_going_forward_skip_the_lost_hour_and_going_back_run_the_repeated_one_once():
    s = cron.parse("30 2 * * *")
    # 2024-03-31 02:30 does not exist in Paris: the next 02:30 is the day after.
    assert cron.next_after(s, at("2024-03-30T12:00", "Europe/Paris"), "Europe/Paris") == \
        at("2024-04-01T02:30", "Europe/Paris")
    # 2024-10-27 02:30 happens twice: it runs at the first, then the next day.
    first = cron.next_after(s, at("2024-10-27T00:00", "Europe/Paris"), "Europe/Paris")
    assert first == datetime(2024, 10, 27, 0, 30, tzinfo=UTC).timestamp()  # 02:30 CEST
    assert cron.next_after(s, first, "Europe/Paris") == at("2024-10-28T02:30", "Europe/Paris")


SCHEDULES = ["* * * * *", "*/7 * * * *", "0 3 * * *", "30 2 * * *", "15 1,2,3 * * *", "0 0 1 * *",
             "0 12 * * sun", "0 0 13 * fri", "45 23 31 * *", "0 */6 * * mon-fri"]
ZONES = ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe"]


def scan(schedule: cron.Schedule, after: float, zone: str, limit_days: int = 40) -> float | None:
    """The definition: the first minute after ``after`` whose wall time in ``zone`` matches (the first
    of a repeated wall time only)."""
    tz = ZoneInfo(zone)
    t = (int(after) // 60 + 1) * 60
    seen: set[datetime] = set()
    for _ in range(limit_days * 24 * 60):
        wall = datetime.fromtimestamp(t, tz)
        naive = wall.replace(tzinfo=None)
        first = naive not in seen and wall.fold == 0
        seen.add(naive)
        if (first and wall.minute in schedule.minutes and wall.hour in schedule.hours
                and schedule.day_matches(wall.date())):
            return float(t)
        t += 60
    return None


@settings(max_examples=120, deadline=None)
@given(text=st.sampled_from(SCHEDULES), zone=st.sampled_from(ZONES),
       start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31)))
def test_next_after_is_the_first_matching_minute_by_definition(text, zone, start):
    schedule = cron.parse(text)
    after = start.replace(tzinfo=UTC).timestamp()
    want = scan(schedule, after, zone)
    if want is not None:
        assert cron.next_after(schedule, after, zone) == want
        # and the last run at or before it is itself; before it, the previous one
        assert cron.last_at_or_before(schedule, want, zone) == want
        prev = cron.last_at_or_before(schedule, want - 1, zone)
        assert prev is None or prev <= after or cron.next_after(schedule, prev, zone) == want


@given(now=st.floats(1.7e9, 1.8e9), back=st.floats(0, 3 * 86400))
def test_due_slot_is_the_last_slot_in_the_window_or_none(now, back):
    schedule = cron.parse("*/5 * * * *")
    since = now - back
    slot = cron.due_slot(schedule, now, since)
    if slot is None:
        assert cron.next_after(schedule, since) > now
    else:
        assert since < slot <= now and cron.next_after(schedule, slot) > now
        assert timedelta(seconds=slot).total_seconds() % 300 == 0
