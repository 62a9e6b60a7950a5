"""The scheduling loop records a no-fit only when its cause changes, read from the typed kind.

The store is the in-process LocalStore over the real StateMachine, so "recorded"
means a MarkUnschedulable was committed; the log index tells how many were.
"""

from __future__ import annotations

import uuid

import pytest

from orion.control.placement_loop import PlacementLoop
from orion.model import NODE_DEAD, NodeInfo, NoFitKind, Resources, TaskSpec
from orion.state.commands import CreateTask, RegisterNode, SetNodeStatus
from orion.state.store import LocalStore

GiB = 1 << 30


def register(store: LocalStore, node_id: str, mem_gib: int = 4, cpus: int = 2) -> None:
    node = NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:7000", capacity=Resources(mem_gib * GiB, cpus * 1000))
    assert store.submit(RegisterNode(request_id=uuid.uuid4().hex, node=node), 1)["ok"]


def create(store: LocalStore, task_id: str, mem_gib: int, cpus: float = 0.5) -> None:
    spec = TaskSpec("img", mem_gib * GiB, int(cpus * 1000))
    assert store.submit(CreateTask(request_id=uuid.uuid4().hex, task_id=task_id, spec=spec), 1)["ok"]


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
    assert loop.run_once().unschedulable == 1
    assert why(store, "big") == (NoFitKind.MEMORY, "no node has 64.0 GiB free memory; largest free: n1 4.0 GiB")


def test_the_same_cause_with_new_figures_is_not_recorded_again(store, loop):
    loop.run_once()
    register(store, "n2", mem_gib=8)  # the largest free memory is now n2's 8 GiB: a live figure
    before = log_length(store)
    assert loop.run_once().unschedulable == 0
    assert log_length(store) == before
    assert why(store, "big")[1].endswith("largest free: n1 4.0 GiB")  # the first words stand


def test_a_new_kind_is_recorded_once(store, loop):
    loop.run_once()
    store.submit(SetNodeStatus(request_id="dead", node_id="n1", status=NODE_DEAD), 1)
    assert loop.run_once().unschedulable == 1
    assert why(store, "big") == (NoFitKind.NO_NODES, "no alive nodes (1 dead)")
    assert loop.run_once().unschedulable == 0


def test_a_no_fit_an_older_leader_recorded_gets_its_kind_once(store, loop):
    """Its entry had no kind (read as other), so the kind found now is news, once."""
    old = '{"reason":"no alive nodes","request_id":"r","task_id":"big","type":"mark_unschedulable","v":1}'
    store.submit(old, 1)  # type: ignore[arg-type]
    assert why(store, "big") == (NoFitKind.OTHER, "no alive nodes")
    assert loop.run_once().unschedulable == 1
    assert why(store, "big")[0] == NoFitKind.MEMORY
    assert loop.run_once().unschedulable == 0


def test_every_pass_reports_its_no_fits_to_the_metrics_hook(store):
    seen: list[NoFitKind] = []
    create(store, "cpu", mem_gib=1, cpus=8)
    loop = PlacementLoop(store, interval=1, write_timeout=1, on_no_fit=seen.append)
    loop.run_once(), loop.run_once()
    assert sorted(seen) == sorted([NoFitKind.MEMORY, NoFitKind.CPU] * 2)
