"""Restart policy: rules first, then properties over random failure histories."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from orion.control import restart
from orion.control.restart import GiveUp, NoRestart, Reschedule, RestartConfig, RestartHere, Wait
from orion.domain.model import COMPLETED, FAILED, RUNNING, Task, TaskSpec

CFG = RestartConfig(delay=1.0, max_delay=30.0, limit=10, window=300.0, local_attempts=3)


def task(policy: str = "on-failure", state: str = FAILED, node: str = "n1") -> Task:
    return Task(id="t1", spec=TaskSpec(image="img", memory=1, restart_policy=policy), state=state,
                node_id=node, generation=1)


# -- rules ---------------------------------------------------------------------------------


def test_never_means_a_failed_task_stays_failed():
    assert isinstance(restart.decide(task("never"), (), 0.0, 100.0, CFG), NoRestart)


def test_on_failure_restarts_a_crash_but_not_a_clean_exit():
    assert isinstance(restart.decide(task("on-failure", FAILED), (), 0.0, 100.0, CFG), RestartHere)
    assert isinstance(restart.decide(task("on-failure", COMPLETED), (), 0.0, 100.0, CFG), NoRestart)


def test_always_restarts_a_clean_exit_too():
    assert isinstance(restart.decide(task("always", COMPLETED), (), 0.0, 100.0, CFG), RestartHere)


def test_the_first_restart_waits_one_delay():
    assert restart.decide(task(), (), ended_at=50.0, now=50.5, cfg=CFG) == Wait(51.0)
    assert isinstance(restart.decide(task(), (), ended_at=50.0, now=51.0, cfg=CFG), RestartHere)


def test_each_recent_failure_doubles_the_wait_up_to_the_cap():
    assert [restart.backoff(n, CFG) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    two_before = (("n1", 90.0), ("n1", 95.0))
    assert restart.decide(task(), two_before, ended_at=100.0, now=103.0, cfg=CFG) == Wait(104.0)


def test_restarts_stay_on_the_node_three_times_in_a_row_then_move():
    three_here = (("n1", 10.0), ("n1", 20.0), ("n1", 30.0))
    assert isinstance(restart.decide(task(), three_here[:2], 40.0, 100.0, CFG), RestartHere)
    decision = restart.decide(task(), three_here, 40.0, 100.0, CFG)
    assert isinstance(decision, Reschedule) and "4 times in a row on n1" in decision.reason


def test_a_failure_elsewhere_resets_the_local_streak():
    history = (("n1", 10.0), ("n1", 20.0), ("n1", 30.0), ("n2", 35.0))
    assert isinstance(restart.decide(task(node="n1"), history, 40.0, 100.0, CFG), RestartHere)


def test_the_limit_gives_up_within_the_window_but_old_failures_are_forgiven():
    ten = tuple(("n1", float(t)) for t in range(10))
    assert isinstance(restart.decide(task(), ten, 10.0, 100.0, CFG), GiveUp)
    assert not isinstance(restart.decide(task(), ten, 10.0, 400.0, CFG), GiveUp)


def test_a_node_failing_a_task_five_times_in_five_minutes_is_down_ranked():
    history = tuple(("n1", float(t)) for t in range(5)) + (("n2", 1.0),)
    assert restart.down_ranked(history, now=100.0) == {"n1"}
    assert restart.down_ranked(history, now=400.0) == set()


def test_a_task_sent_away_by_its_streak_avoids_that_node():
    history = (("n1", 1.0),) * 4
    assert restart.avoid_nodes(history, 10.0, CFG) == {"n1"}
    assert restart.avoid_nodes(history[:3], 10.0, CFG) == set()


# -- properties ------------------------------------------------------------------------------

histories = st.lists(st.tuples(st.sampled_from(["n1", "n2", "n3"]), st.floats(0, 1000)), max_size=15).map(
    lambda h: tuple(sorted(h, key=lambda f: f[1])))


@given(histories, st.floats(0, 1000), st.floats(0, 2000), st.sampled_from(["never", "on-failure", "always"]),
       st.sampled_from([FAILED, COMPLETED]))
def test_decisions_are_consistent_with_the_policy(history, ended, now, policy, state):
    t = replace(task(policy, state), state=state)
    decision = restart.decide(t, history, ended, now, CFG)
    if not restart.wants_restart(policy, state):
        assert isinstance(decision, NoRestart)
    elif isinstance(decision, RestartHere | Reschedule):
        # A restart is never early and never past the limit.
        assert now >= ended + restart.backoff(len(restart.recent(history, now, CFG.window)), CFG)
        assert len(restart.recent(history, now, CFG.window)) + 1 <= CFG.limit
    if isinstance(decision, RestartHere):
        assert decision.node_id == "n1" and restart.local_streak(history, "n1") < CFG.local_attempts


@given(st.integers(0, 100))
def test_backoff_never_exceeds_the_cap_and_never_shrinks(n):
    assert restart.backoff(n, CFG) <= CFG.max_delay
    assert restart.backoff(n + 1, CFG) >= restart.backoff(n, CFG)


def test_a_running_task_is_not_restarted():
    assert isinstance(restart.decide(task(state=RUNNING), (), 0.0, 10.0, CFG), NoRestart)
