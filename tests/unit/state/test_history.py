"""The state machine's bounded memory (orion/state/history.py), as logs and as properties.

Each example is a small log applied to a real machine; the properties check the
limits after every entry and that a replica restored from a snapshot forgets
exactly what a replica that applied the whole log forgot.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from result_kit import accepted

from orion.defaults import FINISHED_TASKS_PER_GROUP, FINISHED_TASKS_TOTAL
from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.domain.replicas import group_of
from orion.state.commands import (
    CreateTask,
    Placement,
    PlaceTasks,
    RegisterNode,
    ReportTaskState,
    RestartTask,
    ScaleTask,
    StopTask,
)
from orion.state.history import MAX_FAILURES_KEPT, History, finished
from orion.state.machine import StateMachine
from orion.state.results import Result

GiB = 1 << 30


class Log:
    """A machine with one big node and a running Raft index."""

    def __init__(self, history: History | None = None) -> None:
        self.m = StateMachine(history)
        self.index = 0
        self.entries: list = []  # the log as applied, to replay on another replica
        self(RegisterNode(node=NodeInfo("n1", "n1:8000", "n1:7000", capacity=Resources(64 * GiB, 64_000))))

    def __call__(self, command) -> Result:
        self.index += 1
        self.entries.append(command)
        return self.m.apply(command, self.index)

    def create(self, task_id: str, policy: str = "never", key: str = "", group: str = "") -> None:
        spec = TaskSpec("img", GiB // 8, 10, restart_policy=policy, group=group)
        accepted(self(CreateTask(task_id=task_id, spec=spec, idempotency_key=key)))

    def run(self, task_id: str) -> None:
        task = self.m.task(task_id)
        if task.state == "pending":
            assert self(PlaceTasks(placements=(Placement(task_id, "n1", task.generation),))).placed
            task = self.m.task(task_id)
        accepted(self(ReportTaskState(task_id=task_id, node_id="n1", generation=task.generation, state="running",
                                      container_id=f"c{self.index}")))

    def report(self, task_id: str, state: str) -> None:
        task = self.m.task(task_id)
        accepted(self(ReportTaskState(task_id=task_id, node_id="n1", generation=task.generation, state=state,
                                      exit_code=1 if state == "failed" else 0)))

    def ids(self) -> list[str]:
        return [t.id for t in self.m.tasks()]


def terminal(m: StateMachine) -> list[str]:
    return [t.id for t in m.tasks() if t.state in ("failed", "completed", "stopped", "lost")]


# -- scenarios ------------------------------------------------------------------------------------


def test_twenty_restarts_of_a_crashing_task_keep_one_record_and_the_last_failures():
    """Restarts reuse the task (a new generation), so a crash loop adds no records; its
    failure list, what the restart policy reads, keeps the last MAX_FAILURES_KEPT."""
    log = Log()
    log.create("crash", policy="always")
    for attempt in range(25):
        log.run("crash")
        log.report("crash", "failed")
        task = log.m.task("crash")
        accepted(log(RestartTask(task_id="crash", generation=task.generation, node_id="n1", at=float(attempt))))
        assert len(terminal(log.m)) <= FINISHED_TASKS_PER_GROUP
    assert log.ids() == ["crash"] and log.m.task("crash").restarts == 25
    failures = log.m.failures("crash")
    assert len(failures) == MAX_FAILURES_KEPT == 20 and failures[-1] == ("n1", 24.0) and failures[0] == ("n1", 5.0)


def test_stopped_one_off_tasks_are_purged_oldest_first_beyond_the_total():
    log = Log(History(total=3))
    for i in range(5):
        log.create(f"t{i}", key=f"key{i}")
        log.run(f"t{i}")
        accepted(log(StopTask(task_id=f"t{i}")))
        log.report(f"t{i}", "stopped")
    assert log.ids() == ["t2", "t3", "t4"]
    # Everything kept about a purged task goes with it: its idempotency key now makes a new task.
    assert log.m.task_for_key("key0") is None and log.m.task_for_key("key2").id == "t2"
    assert log(CreateTask(task_id="again", spec=TaskSpec("img", GiB // 8), idempotency_key="key0")).created
    assert log.m.task_for_key("key0").id == "again"


def test_a_stopped_task_still_stopping_is_not_history_yet():
    log = Log(History(total=0))
    log.create("web")
    log.run("web")
    log(StopTask(task_id="web"))
    assert log.m.task("web").state == "stopping"  # its container still runs: the node must see it
    log.report("web", "stopped")
    assert log.ids() == []


def test_what_may_still_run_again_is_never_purged():
    """A failed task under a restart policy may be restarted (the leader decides when), a lost
    task that is wanted is placed again: neither is history, whatever the limits."""
    log = Log(History(per_group=0, total=0))
    log.create("retry", policy="on-failure")
    log.run("retry")
    log.report("retry", "failed")
    log.create("moved")
    log.run("moved")
    log.report("moved", "lost")
    log.create("batch", policy="on-failure")
    log.run("batch")
    log.report("batch", "completed")  # on-failure does not restart a clean exit: finished
    assert log.ids() == ["retry", "moved"]
    log(StopTask(task_id="retry"))  # the user gives up on it: now it is history
    assert log.ids() == ["moved"]


def test_a_service_keeps_its_last_finished_replicas_and_its_first_task():
    """Scaling up and down replaces replicas; at most per_group finished ones stay, always
    including the service's first task, the id `orion scale` is usually given."""
    log = Log(History(per_group=2))
    log.create("web")
    fresh = iter(f"r{i}" for i in range(100))
    for count in (4, 0, 3, 0, 5, 1):
        result = log(ScaleTask(task_id="web", count=count, new_task_ids=tuple(next(fresh) for _ in range(count))))
        accepted(result)
        done = [t for t in log.m.group_members("web") if finished(t)]
        assert len(done) <= 2
    assert log.m.task("web") is not None and log.m.task("web").state == "stopped"
    accepted(log(ScaleTask(task_id="web", count=2, new_task_ids=("x1", "x2"))))


def test_the_shipped_total_bounds_one_off_tasks():
    log = Log()
    for i in range(FINISHED_TASKS_TOTAL + 10):
        log.create(f"t{i:05d}")
        log(StopTask(task_id=f"t{i:05d}"))  # never placed: stopped at once
    assert len(log.m.tasks()) == FINISHED_TASKS_TOTAL
    assert log.ids()[0] == "t00010"


def test_a_snapshot_carries_the_limits_it_was_written_with():
    log = Log(History(per_group=2, total=7, remembered_requests=50))
    restored = StateMachine.restore(json.loads(json.dumps(log.m.snapshot())))
    data = restored.snapshot()
    assert (data["finished_per_group"], data["finished_total"], data["remembered_requests"]) == (2, 7, 50)


def test_a_snapshot_from_before_the_limits_is_trimmed_at_the_next_entry():
    old = Log(History(total=100))
    for i in range(6):
        old.create(f"t{i}")
        old(StopTask(task_id=f"t{i}"))
    data = json.loads(json.dumps(old.m.snapshot()))
    del data["finished_per_group"], data["finished_total"]
    data["remembered_requests"] = 10
    restored = StateMachine.restore(data)
    assert len(restored.tasks()) == 6  # restoring changes nothing by itself
    limits = restored.snapshot()
    assert (limits["finished_per_group"], limits["finished_total"]) == (FINISHED_TASKS_PER_GROUP, FINISHED_TASKS_TOTAL)


# -- properties -----------------------------------------------------------------------------------

TASK_IDS = [f"t{i}" for i in range(16)]
GROUPS = ["", "svc"]
ids = st.sampled_from(TASK_IDS)
creates = st.builds(lambda i, p, g: ("create", i, p, g), ids, st.sampled_from(["never", "on-failure", "always"]),
                    st.sampled_from(GROUPS))
# Creates and stops weigh double: the limits only bite once more tasks have finished than they keep.
commands = st.one_of(
    creates, creates, st.builds(lambda i: ("stop", i), ids),
    st.builds(lambda i: ("run", i), ids),
    st.builds(lambda i, s: ("report", i, s), ids, st.sampled_from(["failed", "completed", "stopped", "lost"])),
    st.builds(lambda i: ("stop", i), ids),
    st.builds(lambda i: ("restart", i), ids),
    st.builds(lambda i, c: ("scale", i, c), ids, st.integers(0, 4)),
)


def play(log: Log, step: tuple, fresh: list[int]) -> None:
    """One step as the cluster would log it; steps that do not apply are simply refused."""
    kind, task_id = step[0], step[1]
    task = log.m.task(task_id)
    if kind == "create":
        if task is None:
            log.create(task_id, policy=step[2], group=step[3])
    elif task is None:
        return
    elif kind == "run":
        if task.state in ("pending", "lost"):
            log(PlaceTasks(placements=(Placement(task_id, "n1", task.generation),)))
        elif task.state == "assigned":
            log(ReportTaskState(task_id=task_id, node_id="n1", generation=task.generation, state="running"))
    elif kind == "report":
        log(ReportTaskState(task_id=task_id, node_id="n1", generation=task.generation, state=step[2]))
    elif kind == "stop":
        log(StopTask(task_id=task_id))
    elif kind == "restart":
        log(RestartTask(task_id=task_id, generation=task.generation, node_id="n1", at=float(log.index)))
    else:
        new = []
        for _ in range(step[2]):
            fresh[0] += 1
            new.append(f"s{fresh[0]}")
        log(ScaleTask(task_id=task_id, count=step[2], new_task_ids=tuple(new)))


@settings(max_examples=200, deadline=None)
@given(st.lists(commands, min_size=30, max_size=80), st.integers(0, 200))
def test_the_limits_hold_after_every_entry_and_a_restored_replica_forgets_the_same(steps, cut):
    limits = {"per_group": 2, "total": 4}
    live, fresh = Log(History(**limits)), [0]
    for step in steps:
        play(live, step, fresh)
        done = [t for t in live.m.tasks() if finished(t)]
        assert len(done) <= limits["total"]
        per_group: dict[str, int] = {}
        for t in done:
            per_group[group_of(t)] = per_group.get(group_of(t), 0) + 1
        assert all(n <= limits["per_group"] for n in per_group.values()), per_group
    # A replica that starts from a snapshot taken at entry `cut` and applies the rest of the log.
    cut = min(cut, len(live.entries))
    early = StateMachine(History(**limits))
    for index, command in enumerate(live.entries[:cut], start=1):
        early.apply(command, index)
    joined = StateMachine.restore(json.loads(json.dumps(early.snapshot())))
    for index, command in enumerate(live.entries[cut:], start=cut + 1):
        joined.apply(command, index)
    assert joined.snapshot() == live.m.snapshot()
