"""Orphaned containers: the pure planner as a transcript of passes, and the reconcile loop
removing one after the grace period (and only on a current view), with its sentence and metric
event. The loop runs against the real state machine and test_reconcile's fake runtime."""

from __future__ import annotations

from parts import reconcile_loop
from test_reconcile import NODE, SPEC, FakeRuntime, _store_with

from orion.node.orphans import plan
from orion.runtime import ContainerState
from orion.state.commands import StopTask


def c(tid: str, cid: str = "", status: str = "running") -> ContainerState:
    return ContainerState(cid or f"c-{tid}", tid, 1, status)


def test_a_container_of_a_known_task_is_never_a_candidate():
    assert plan([c("t1")], {"t1"}, {}, now=100.0, grace=30.0, current=True).unknown_since == {}


def test_an_unknown_task_starts_the_clock_and_goes_only_after_the_grace():
    first = plan([c("gone")], set(), {}, now=100.0, grace=30.0, current=True)
    assert first.remove == () and first.unknown_since == {"c-gone": 100.0}
    early = plan([c("gone")], set(), first.unknown_since, now=129.9, grace=30.0, current=True)
    assert early.remove == () and early.unknown_since == {"c-gone": 100.0}
    due = plan([c("gone")], set(), early.unknown_since, now=130.0, grace=30.0, current=True)
    assert due.remove == (c("gone"),) and due.unknown_since == {}


def test_a_node_that_is_not_current_starts_no_clock_and_removes_nothing():
    behind = plan([c("gone")], set(), {}, now=100.0, grace=30.0, current=False)
    assert behind.remove == () and behind.unknown_since == {}
    waiting = plan([c("gone")], set(), {"c-gone": 10.0}, now=500.0, grace=30.0, current=False)
    assert waiting.remove == () and waiting.unknown_since == {"c-gone": 10.0}  # kept for the next current pass


def test_a_task_known_again_drops_its_candidate():
    back = plan([c("t1")], {"t1"}, {"c-t1": 100.0}, now=200.0, grace=30.0, current=True)
    assert back.remove == () and back.unknown_since == {}


def test_a_container_being_removed_and_one_gone_are_forgotten():
    found = plan([c("x", status="removing")], set(), {"c-x": 1.0, "c-vanished": 1.0}, now=99.0, grace=30.0,
                 current=True)
    assert found.remove == () and found.unknown_since == {}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_loop_removes_an_orphan_after_the_grace_with_a_sentence_and_an_event():
    store = _store_with(("t1", SPEC))
    rt, clock, events = FakeRuntime(), Clock(), []
    r = reconcile_loop(NODE, store, rt, orphan_grace=30.0, mono=clock, on_event=events.append)
    r.run_once()
    rt.containers["c-purged"] = ContainerState("c-purged", "purged-task", 3, "running")
    assert r.run_once().sentence == "in sync: 1 tasks, 1 running containers, 1 orphan candidates"
    clock.now += 29.0
    assert r.run_once().sentence.endswith("1 orphan candidates")
    store.leader = False  # cut off from the leader: not a current view
    clock.now += 60.0
    assert r.run_once().sentence.endswith("1 orphan candidates") and "c-purged" in rt.containers
    store.leader = True
    assert r.run_once().sentence == "removed orphaned purged-task (c-purged)"
    assert "c-purged" not in rt.containers and rt.calls[-2:] == ["stop c-purged", "remove c-purged"]
    assert events == ["start", "orphan"]
    assert r.run_once().sentence == "in sync: 1 tasks, 1 running containers"


def test_containers_of_known_tasks_stay_the_reconcilers_and_stop_at_once():
    store = _store_with(("t1", SPEC))
    rt = FakeRuntime()
    r = reconcile_loop(NODE, store, rt, orphan_grace=30.0, mono=Clock())
    r.run_once()
    store.submit(StopTask(task_id="t1"), 1)
    assert r.run_once().sentence == "stopped t1; removed 1 container; reported t1 stopped"
