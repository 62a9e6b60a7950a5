"""The scheduling loop records a no-fit only when its cause changes, read from the typed kind.

The store is the in-process LocalStore over the real StateMachine, so "recorded"
means a MarkUnschedulable was committed; the log index tells how many were.
"""

from __future__ import annotations

import uuid

import pytest
from result_kit import accepted

from orion.control.placement_loop import PlacementLoop
from orion.domain.model import NODE_DEAD, NodeInfo, NoFitKind, Resources, TaskSpec
from orion.state.commands import CreateTask, RegisterNode, SetNodeStatus
from orion.store.local import LocalStore

GiB = 1 << 30


def register(store: LocalStore, node_id: str, mem_gib: int = 4, cpus: int = 2) -> None:
    node = NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:7000", capacity=Resources(mem_gib * GiB, cpus * 1000))
    accepted(store.submit(RegisterNode(request_id=uuid.uuid4().hex, node=node), 1))


def create(store: LocalStore, task_id: str, mem_gib: int, cpus: float = 0.5) -> None:
    spec = TaskSpec("img", mem_gib * GiB, int(cpus * 1000))
    accepted(store.submit(CreateTask(request_id=uuid.uuid4().hex, task_id=task_id, spec=spec), 1))


def why(store: LocalStore, task_id: str) -> tuple[NoFitKind | None, str]:
    task = store.read(lambda m: m.task(task_id))[0]
    return task.reason_kind, task.reason


def log_length(store: LocalStore) -> int:
    return store.read(lambda m: None)[1]


@pytest.fixture
def store() -> LocalStore:
    s = LocalStore()
    register(s, "n1", mem_gib=4)
    create(s, "big", mem_gib=64)
    return s


@pytest.fixture
def loop(store: LocalStore) -> PlacementLoop:
    return PlacementLoop(store, interval=1, write_timeout=1)


def test_a_no_fit_is_recorded_with_its_kind_and_sentence(store, loop):
    assert loop.run_once().detail.unschedulable == 1
    assert why(store, "big") == (NoFitKind.MEMORY, "no node has 64.0 GiB free memory; largest free: n1 4.0 GiB")


def test_the_same_cause_with_new_figures_is_not_recorded_again(store, loop):
    loop.run_once()
    register(store, "n2", mem_gib=8)  # the largest free memory is now n2's 8 GiB: a live figure
    before = log_length(store)
    assert loop.run_once().detail.unschedulable == 0
    assert log_length(store) == before
    assert why(store, "big")[1].endswith("largest free: n1 4.0 GiB")  # the first words stand


def test_a_new_kind_is_recorded_once(store, loop):
    loop.run_once()
    store.submit(SetNodeStatus(request_id="dead", node_id="n1", status=NODE_DEAD), 1)
    assert loop.run_once().detail.unschedulable == 1
    assert why(store, "big") == (NoFitKind.NO_NODES, "no alive nodes (1 dead)")
    assert loop.run_once().detail.unschedulable == 0


def test_a_no_fit_an_older_leader_recorded_gets_its_kind_once(store, loop):
    """Its entry had no kind (read as other), so the kind found now is news, once."""
    old = '{"reason":"no alive nodes","request_id":"r","task_id":"big","type":"mark_unschedulable","v":1}'
    store.submit(old, 1)  # type: ignore[arg-type]
    assert why(store, "big") == (NoFitKind.OTHER, "no alive nodes")
    assert loop.run_once().detail.unschedulable == 1
    assert why(store, "big")[0] == NoFitKind.MEMORY
    assert loop.run_once().detail.unschedulable == 0


def test_every_pass_reports_its_no_fits_to_the_metrics_hook(store):
    seen: list[NoFitKind] = []
    create(store, "cpu", mem_gib=1, cpus=8)
    loop = PlacementLoop(store, interval=1, write_timeout=1, on_no_fit=seen.append)
    loop.run_once(), loop.run_once()
    assert sorted(seen) == sorted([NoFitKind.MEMORY, NoFitKind.CPU] * 2)


# -- placing at create time ----------------------------------------------------------------


def new(task_id: str, mem_gib: int, key: str = "") -> CreateTask:
    return CreateTask(request_id=uuid.uuid4().hex, task_id=task_id, spec=TaskSpec("img", mem_gib * GiB),
                      idempotency_key=key)


def test_a_create_that_fits_is_committed_placed_in_one_entry(store, loop):
    seen: list[tuple[float, int]] = []
    loop = PlacementLoop(store, interval=1, write_timeout=1, observe=lambda s, n: seen.append((s, n)))
    before = log_length(store)
    result = loop.submit_create(new("t1", 1))
    assert accepted(result).created
    assert log_length(store) == before + 1
    task = store.read(lambda m: m.task("t1"))[0]
    assert (task.state, task.node_id, task.generation) == ("assigned", "n1", 1)
    assert [n for _, n in seen] == [1]  # counted as a placement, like the leader's pass


def test_a_create_that_fits_nowhere_is_created_alone_and_left_to_the_leaders_pass(store, loop):
    result = loop.submit_create(new("t9", 64))
    accepted(result)
    assert store.read(lambda m: m.task("t9"))[0].state == "pending"
    loop.run_once()
    assert why(store, "t9")[0] == NoFitKind.MEMORY  # the pass says why, as for any create


def test_a_placement_planned_on_a_stale_view_is_refused_and_the_task_waits():
    """Another writer fills the node between the plan and the commit: the machine's re-check
    refuses the placement, the create still stands, and the leader's pass places it later."""
    store = LocalStore()
    register(store, "n1", mem_gib=4)
    loop = PlacementLoop(store, interval=1, write_timeout=1)
    submit = store.submit

    def racing_submit(command, timeout):  # noqa: ANN001, ANN202 - the store, with a rival write first
        store.submit = submit  # type: ignore[method-assign]
        accepted(loop.submit_create(new("rival", 3)))
        return submit(command, timeout)

    store.submit = racing_submit  # type: ignore[method-assign]
    accepted(loop.submit_create(new("t1", 2)))
    assert store.read(lambda m: m.task("t1"))[0].state == "pending"
    register(store, "n2", mem_gib=4)
    assert loop.run_once().detail.placed == 1


def test_a_repeated_idempotency_key_returns_the_first_task_and_places_nothing_new(store, loop):
    first = loop.submit_create(new("t1", 1, key="k"))
    again = loop.submit_create(new("t2", 1, key="k"))
    assert again.created is False and again.task.id == first.task.id == "t1"
    assert store.read(lambda m: m.task("t2"))[0] is None
