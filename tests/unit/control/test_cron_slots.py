"""Scheduled jobs (``job.schedule``) as the leader's real JobLoop runs them on a LocalStore, its
``now`` a clock the test controls (the state machine's only time input: the commands the leader
stamps). Issue #22: each slot runs once across a leader change, never twice; ``forbid`` skips a
slot while the previous run still goes; missed slots are not caught up.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st
from result_kit import refused
from workload_world import WorkloadWorld, node

from orion.control import periodic
from orion.control.job_loop import JobLoop, _jobs
from orion.domain import cron
from orion.domain.job import SLOT_REPLACE, SLOT_SKIP, SLOT_START, JobPolicy
from orion.domain.model import TaskSpec
from orion.domain.service import JOB, ServiceSpec
from orion.state.commands import RunCronSlot
from orion.state.results import RefusalKind

MiB = 1 << 20
T0 = datetime(2024, 3, 1, 2, 59, 30, tzinfo=UTC).timestamp()  # half a minute before 03:00 UTC


def nightly(schedule: str = "* * * * *", **policy: object) -> ServiceSpec:
    return ServiceSpec("nightly", TaskSpec("backup:1", 32 * MiB), mode=JOB,
                       job=JobPolicy(schedule=schedule, **policy))


def slots(world: WorkloadWorld) -> list[tuple[str, str]]:
    record = world.read(lambda m: m.jobs.get("nightly"))
    return [(datetime.fromtimestamp(r.slot, UTC).strftime("%H:%M"), r.state) for r in record.runs]


def test_a_job_every_minute_runs_once_per_slot():
    world = WorkloadWorld([node("n1")], now=T0)
    world.put(nightly())
    for _ in range(5 * 60 // 5):
        world.step(5.0)
    assert slots(world) == [("03:00", "succeeded"), ("03:01", "succeeded"), ("03:02", "succeeded"),
                            ("03:03", "succeeded"), ("03:04", "succeeded")]


def test_across_a_leader_change_each_slot_runs_once_never_twice():
    """Two leaders over one replicated state: the old one decided slot 03:01 and lost its lead before
    its command landed; the new one decides and commits the same slot; the old command lands late
    and is refused, so the slot has one run. Then the old one leads again: slots go on once each."""
    world = WorkloadWorld([node("n1")], now=T0)
    other = JobLoop(world.store, interval=0.5, write_timeout=5.0, clock=world.clock)
    world.put(nightly())
    while world.now < T0 + 61:
        world.step(5.0)
    world.now = T0 + 91  # 03:01:01
    late = other.decide(world.read(_jobs), world.now)
    world.step(5.0)  # the new leader's pass commits 03:01
    (command, _), = late
    assert isinstance(command, RunCronSlot) and command.action == SLOT_START
    refused(world.submit(command), RefusalKind.STALE)
    for _ in range(30):  # the old leader leads again
        other.run_once()
        world.placement.run_once()
        world._play_nodes()
        world.now += 5.0
    runs = slots(world)
    assert [slot for slot, _ in runs] == ["03:00", "03:01", "03:02", "03:03"]
    assert len(set(runs)) == len(runs)


def test_forbid_skips_a_slot_while_the_previous_run_still_goes():
    world = WorkloadWorld([node("n1")], now=T0)
    world.attempt_seconds = 90.0  # each run takes a minute and a half
    world.put(nightly(overlap="forbid"))
    for _ in range(4 * 60 // 5):
        world.step(5.0)
    assert slots(world) == [("03:00", "succeeded"), ("03:01", "skipped"), ("03:02", "running"),
                            ("03:03", "skipped")]
    skipped = world.read(lambda m: m.jobs.get("nightly")).runs[1]
    assert skipped.reason == "run 1 still running (overlap forbid)"


def test_replace_cancels_the_run_that_goes_and_allow_runs_beside_it():
    for overlap, want in (("replace", [("03:00", "cancelled"), ("03:01", "running")]),
                          ("allow", [("03:00", "running"), ("03:01", "running")])):
        world = WorkloadWorld([node("n1")], now=T0)
        world.attempt_seconds = 600.0
        world.put(nightly(overlap=overlap))
        for _ in range(90 // 5 + 1):
            world.step(5.0)
        assert slots(world) == want, overlap


def test_missed_slots_are_not_caught_up_only_the_latest_runs():
    world = WorkloadWorld([node("n1")], now=T0)
    world.put(nightly())
    world.step(5.0)
    world.now = T0 + 5 * 60 + 40  # 03:05:10: the leader was away five minutes, 03:00 .. 03:05 were due
    world.step(5.0)
    assert slots(world) == [("03:05", "running")]
    assert any("(5 earlier slot(s) missed)" in line for line in world.log), world.log


def test_a_schedule_in_a_zone_runs_at_that_zones_wall_time():
    paris_3am_winter = datetime(2024, 3, 1, 2, 0, tzinfo=UTC).timestamp()  # 03:00 CET
    switch_day = datetime(2024, 3, 31, 1, 0, tzinfo=UTC).timestamp()  # 03:00 CEST, the day clocks go forward
    paris_3am_summer = datetime(2024, 4, 1, 1, 0, tzinfo=UTC).timestamp()  # 03:00 CEST
    policy = JobPolicy(schedule="0 3 * * *", zone="Europe/Paris")
    decided = periodic.plan("nightly", policy, paris_3am_winter - 60, None, 0, paris_3am_winter + 1)
    assert decided is not None and decided.slot == paris_3am_winter
    day_before = datetime(2024, 3, 30, 2, 0, tzinfo=UTC).timestamp()  # 03:00 CET
    assert periodic.next_run(policy, paris_3am_winter - 60, day_before, switch_day - 7200) == switch_day
    assert periodic.next_run(policy, paris_3am_winter - 60, switch_day, switch_day + 60) == paris_3am_summer


def test_the_planner_decides_the_action_from_the_overlap_policy_and_never_a_slot_before_the_version():
    policy = JobPolicy(schedule="* * * * *")
    assert periodic.plan("j", policy, T0 + 40, None, 0, T0 + 50) is None  # 03:00 was before the job existed
    assert periodic.plan("j", policy, T0, None, 1, T0 + 31).action == SLOT_SKIP
    assert periodic.plan("j", JobPolicy(schedule="* * * * *", overlap="replace"), T0, None, 1, T0 + 31).action == \
        SLOT_REPLACE
    assert periodic.plan("j", policy, T0, T0 + 30, 0, T0 + 89) is None  # 03:00 recorded, 03:01 not yet due


@given(since=st.floats(T0 - 3600, T0 + 3600), ahead=st.floats(0, 7200), running=st.integers(0, 2),
       overlap=st.sampled_from(["forbid", "allow", "replace"]),
       schedule=st.sampled_from(["* * * * *", "*/5 * * * *", "0 * * * *", "*/10 * * * * *"]))
def test_a_decided_slot_is_a_schedule_time_after_the_last_and_not_after_now(since, ahead, running, overlap, schedule):
    policy = JobPolicy(schedule=schedule, overlap=overlap)
    now = since + ahead
    decided = periodic.plan("j", policy, T0 - 7200, since, running, now)
    parsed = cron.parse(schedule)
    if decided is None:
        assert cron.next_after(parsed, since) > now
        return
    assert since < decided.slot <= now and cron.next_after(parsed, decided.slot) > now  # the latest due
    assert cron.last_at_or_before(parsed, decided.slot) == decided.slot
    assert decided.action == (SLOT_START if not running or overlap == "allow" else
                              SLOT_SKIP if overlap == "forbid" else SLOT_REPLACE)
