"""The replicated state machine, command by command, then as properties.

Each example reads as a small log: the commands applied, in order, and what the
replicated state must be afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from result_kit import accepted, refused

from orion.control.placement import plan
from orion.domain.container import ContainerSettings, Device
from orion.domain.model import (
    DESIRED_RUN,
    NODE_STATES,
    NodeInfo,
    NodeUsage,
    NoFitKind,
    PortBinding,
    Resources,
    Task,
    TaskSpec,
    Volume,
)
from orion.state.commands import (
    Command,
    CreateTask,
    MarkUnschedulable,
    Placement,
    PlaceTasks,
    RegisterNode,
    ReportTaskState,
    SetNodeStatus,
    StopTask,
    encode,
)
from orion.state.history import History
from orion.state.machine import StateMachine
from orion.state.results import Placed, RefusalKind, Refused, Result, TaskChanged, TaskCreated

GiB = 1 << 30


class Log:
    """A machine plus a running Raft index, so examples read as a log."""

    def __init__(self, machine: StateMachine | None = None) -> None:
        self.m = machine or StateMachine()
        self.index = 0

    def __call__(self, command: Command | str) -> Result:
        self.index += 1
        return self.m.apply(command, self.index)


def node(node_id: str, mem_gib: int = 8, cpus: int = 4, **labels: str) -> RegisterNode:
    return RegisterNode(node=NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:9000",
                                      capacity=Resources(mem_gib * GiB, cpus * 1000),
                                      labels=tuple(sorted(labels.items()))))


def create(task_id: str, mem_gib: float = 1, cpus: float = 0.5, host_port: int | None = None, key: str = "",
           rid: str = "", **selectors: str) -> CreateTask:
    ports = (PortBinding(80, "tcp", host_port),) if host_port else ()
    spec = TaskSpec("orion/busybox:latest", int(mem_gib * GiB), int(cpus * 1000), ports=ports,
                    node_selectors=tuple(sorted(selectors.items())))
    return CreateTask(request_id=rid, task_id=task_id, spec=spec, idempotency_key=key)


def place(*triples: tuple[str, str, int]) -> PlaceTasks:
    return PlaceTasks(placements=tuple(Placement(*t) for t in triples))


def report(task_id: str, node_id: str, gen: int, state: str, **kw) -> ReportTaskState:
    return ReportTaskState(task_id=task_id, node_id=node_id, generation=gen, state=state, **kw)


def refusals(result: Placed) -> dict[str, RefusalKind]:
    """The kind of each placement a plan's result refused."""
    return {task_id: why.kind for task_id, why in result.refused.items()}


@pytest.fixture
def log() -> Log:
    log = Log()
    accepted(log(node("n1"))), accepted(log(node("n2", 4, 2, disk="ssd")))
    return log


# -- creating ------------------------------------------------------------------------


def test_create_task_is_pending_and_remembers_its_index(log):
    result = log(create("t1"))
    assert isinstance(result, TaskCreated) and result.created and result.task.state == "pending"
    task = log.m.task("t1")
    assert (task.state, task.desired, task.node_id, task.created_index) == ("pending", "run", None, 3)
    assert log.m.pending_tasks() == [task]


def test_an_idempotency_key_returns_the_first_task(log):
    first = log(create("t1", key="k"))
    again = log(create("t2", mem_gib=2, key="k"))
    assert again == TaskCreated(first.task, created=False)
    assert [t.id for t in log.m.tasks()] == ["t1"] and log.m.task_for_key("k").id == "t1"


def test_a_repeated_request_id_is_applied_once_and_answered_the_same(log):
    first = log(create("t1", rid="r1"))
    before = log.m.snapshot()
    assert log(create("t2", rid="r1")) == first  # a retry that raced the first commit
    assert log.m.task("t2") is None and log.m.snapshot() == before


def test_request_memory_is_bounded_and_forgets_the_oldest_first():
    log = Log(StateMachine(History(remembered_requests=2)))
    for i in range(3):
        log(create(f"t{i}", rid=f"r{i}"))
    refused(log(create("t0", rid="r0")), RefusalKind.EXISTS)  # forgotten: applied again, refused as a duplicate id
    assert log(create("x", rid="r2")).task.id == "t2"  # still remembered


@pytest.mark.parametrize("command", [
    create(""), CreateTask(task_id="t9", spec=TaskSpec("", GiB)), create("t9", mem_gib=-1),
    CreateTask(task_id="t9", spec=TaskSpec("img", GiB, ports=(PortBinding(80, "tcp", 81),
                                                                PortBinding(90, "tcp", 81)))),
])
def test_unsound_specs_are_refused(log, command):
    refused(log(command), RefusalKind.INVALID)
    assert log.m.task("t9") is None


def test_a_duplicate_task_id_is_refused(log):
    log(create("t1"))
    assert log(create("t1")) == Refused(RefusalKind.EXISTS, "task t1 already exists")


# -- commands this version cannot read ------------------------------------------------


@dataclass(frozen=True)
class FromTheFuture(Command):
    TYPE: ClassVar[str] = "evict_everything"


@pytest.mark.parametrize("entry", [
    "not json", '{"type": "evict_everything", "v": 1}', '{"type": "stop_task", "v": 7, "task_id": "t1"}',
    '{"type": "stop_task", "v": 1}', FromTheFuture(),
])
def test_unknown_commands_are_refused_and_change_nothing(log, entry):
    log(create("t1"))
    before = log.m.snapshot()
    assert refused(log(entry), RefusalKind.UNREADABLE).detail
    assert log.m.snapshot() == before


def test_a_log_entry_as_text_is_decoded_and_applied(log):
    assert log(encode(create("t1"))).created is True


# -- placing -------------------------------------------------------------------------


def test_an_accepted_placement_assigns_and_reserves(log):
    log(create("t1", 2, 1, host_port=8080))
    log(MarkUnschedulable(task_id="t1", reason="no alive nodes"))
    assert log(place(("t1", "n1", 0))) == Placed(("t1",), {})
    task = log.m.task("t1")
    assert (task.state, task.node_id, task.generation, task.reason) == ("assigned", "n1", 1, "")
    assert log.m.usage("n1") == NodeUsage(Resources(2 * GiB, 1000), frozenset({(8080, "tcp")}))
    assert log.m.tasks_on("n1") == [task] and log.m.pending_tasks() == []


def test_a_batch_cannot_over_commit_a_node(log):
    log(create("t1", 5)), log(create("t2", 5))
    result = log(place(("t1", "n1", 0), ("t2", "n1", 0)))
    assert result.placed == ("t1",)
    # The sentence says what the node has and what the task needs, in figures for people.
    assert result.refused == {"t2": Refused(RefusalKind.NO_FIT, "node n1 has 3.0 GiB free memory, task needs 5.0 GiB")}
    assert log.m.task("t2").state == "pending"


def test_placements_are_rechecked_across_batches(log):
    log(create("a", 0.5, 1.5)), log(create("b", 0.5, 1.5))
    log(place(("a", "n2", 0)))
    assert log(place(("b", "n2", 0))).refused == {"b": Refused(RefusalKind.NO_FIT,
                                                               "node n2 has 0.5 CPUs free, task needs 1.5 CPUs")}


@pytest.mark.parametrize("placement, why", [
    (("t1", "n1", 1), RefusalKind.STALE),
    (("nope", "n1", 0), RefusalKind.NOT_FOUND),
    (("t1", "n9", 0), RefusalKind.NOT_FOUND),
    (("t1", "n3", 0), RefusalKind.NO_FIT),  # n3 is dead
    (("t1", "n1", 0), RefusalKind.NO_FIT),  # n1 does not match selector disk=ssd
])
def test_placements_that_no_longer_hold_are_refused(log, placement, why):
    log(node("n3")), log(SetNodeStatus(node_id="n3", status="dead"))
    log(create("t1", disk="ssd"))
    assert refusals(log(place(placement))) == {placement[0]: why}
    assert log.m.task("t1").state == "pending" if placement[0] == "t1" else True


def test_a_taken_host_port_is_refused(log):
    log(create("t1", host_port=8080)), log(create("t2", host_port=8080))
    result = log(place(("t1", "n1", 0), ("t2", "n1", 0)))
    assert refusals(result) == {"t2": RefusalKind.NO_FIT}
    assert result.refused["t2"].detail == "host port 8080/tcp already taken on node n1"


def test_a_node_without_the_host_volume_is_refused(log):
    """The re-check refuses what the scheduler would not have chosen: a node that does not
    declare every host volume the task mounts (a docker named volume needs no declaration)."""
    log(RegisterNode(node=NodeInfo("v1", "v1:8000", "v1:9000", capacity=Resources(8 * GiB, 4000),
                                   host_volumes=("data",))))
    mounts = (Volume("data", "/data"), Volume("pg", "/pg"), Volume("cache", "/cache", type="volume"))
    log(CreateTask(task_id="t1", spec=TaskSpec("img", GiB, 500, volumes=mounts)))
    assert refusals(log(place(("t1", "v1", 0)))) == {"t1": RefusalKind.NO_FIT}  # no pg on v1
    log(CreateTask(task_id="t2", spec=TaskSpec("img", GiB, 500, volumes=mounts[::2])))
    assert refusals(log(place(("t2", "n1", 0)))) == {"t2": RefusalKind.NO_FIT}  # no data on n1
    assert log(place(("t2", "v1", 0))).placed == ("t2",)


def test_a_node_without_the_device_or_the_privilege_is_refused(log):
    """The re-check refuses a node that does not hand out a device the task asks for, or does not
    allow privileged containers, as it refuses one without a host volume."""
    node_json = NodeInfo("d1", "d1:8000", "d1:9000", capacity=Resources(8 * GiB, 4000),
                         host_devices=("/dev/fuse",), allow_privileged=True).to_dict()
    log(RegisterNode(node=NodeInfo.from_dict(node_json)))  # as the log carries it
    fuse = ContainerSettings(devices=(Device("/dev/fuse", "/dev/fuse"),))
    log(CreateTask(task_id="t1", spec=TaskSpec("img", GiB, 500, container=fuse)))
    assert refusals(log(place(("t1", "n1", 0)))) == {"t1": RefusalKind.NO_FIT}  # no /dev/fuse on n1
    log(CreateTask(task_id="t2", spec=TaskSpec("img", GiB, 500, container=ContainerSettings(privileged=True))))
    assert refusals(log(place(("t2", "n1", 0)))) == {"t2": RefusalKind.NO_FIT}  # n1 allows no privileged one
    assert log(place(("t1", "d1", 0), ("t2", "d1", 0))).placed == ("t1", "t2")


def test_a_placed_task_cannot_be_placed_again(log):
    log(create("t1")), log(place(("t1", "n1", 0)))
    assert refusals(log(place(("t1", "n2", 1)))) == {"t1": RefusalKind.WRONG_STATE}


def test_mark_unschedulable_only_touches_waiting_tasks(log):
    log(create("t1"))
    result = log(MarkUnschedulable(task_id="t1", reason="no node matches"))
    assert result.task.reason == "no node matches"
    log(place(("t1", "n1", 0)))
    refused(log(MarkUnschedulable(task_id="t1", reason="late")), RefusalKind.WRONG_STATE)


def test_the_no_fit_kind_is_kept_while_the_reason_is_a_no_fit(log):
    log(create("t1"))
    marked = log(MarkUnschedulable(task_id="t1", reason="no node has 1.0 GiB free memory; largest free: n1 0 B",
                                   kind=NoFitKind.MEMORY))
    assert (marked.task.reason_kind, log.m.task("t1").reason_kind) == (NoFitKind.MEMORY, NoFitKind.MEMORY)
    # The same sentence with another kind is a change: the kind is what code reads.
    index = log.m.task("t1").updated_index
    log(MarkUnschedulable(task_id="t1", reason=log.m.task("t1").reason, kind=NoFitKind.CPU))
    assert (log.m.task("t1").reason_kind, log.m.task("t1").updated_index) == (NoFitKind.CPU, index + 1)
    log(place(("t1", "n1", 0)))
    assert (log.m.task("t1").reason, log.m.task("t1").reason_kind) == ("", None)
    log(report("t1", "n1", 1, "failed", reason="exited with code 1"))
    assert (log.m.task("t1").reason, log.m.task("t1").reason_kind) == ("exited with code 1", None)


def test_an_old_mark_unschedulable_entry_applies_with_kind_other(log):
    log(create("t1"))
    old = '{"reason":"no alive nodes","request_id":"r","task_id":"t1","type":"mark_unschedulable","v":1}'
    assert isinstance(log(old), TaskChanged)
    assert (log.m.task("t1").reason, log.m.task("t1").reason_kind) == ("no alive nodes", NoFitKind.OTHER)


# -- what nodes report -----------------------------------------------------------------


def test_running_then_completed_releases_the_node(log):
    log(create("t1", 2, 1, host_port=8080)), log(place(("t1", "n1", 0)))
    r = log(report("t1", "n1", 1, "running", container_id="c1", host_ports=(("80/tcp", 8080),)))
    assert r.task.state == "running" and r.task.host_ports == (("80/tcp", 8080),)
    log(report("t1", "n1", 1, "completed", exit_code=0))
    task = log.m.task("t1")
    assert (task.state, task.container_id, task.exit_code) == ("completed", "c1", 0)
    assert log.m.usage("n1") == NodeUsage() and log.m.tasks_on("n1") == []
    refused(log(report("t1", "n1", 1, "running")), RefusalKind.WRONG_STATE)  # already completed


def test_a_report_from_an_old_placement_is_refused(log):
    log(create("t1")), log(place(("t1", "n1", 0))), log(report("t1", "n1", 1, "lost", reason="node died"))
    assert log(place(("t1", "n2", 1))).placed == ("t1",)
    refused(log(report("t1", "n1", 1, "failed")), RefusalKind.STALE)
    assert (log.m.task("t1").state, log.m.task("t1").generation) == ("assigned", 2)
    assert log.m.usage("n1") == NodeUsage() and log.m.usage("n2").used == Resources(GiB, 500)


def test_a_new_container_counts_as_a_restart(log):
    log(create("t1")), log(place(("t1", "n1", 0)))
    log(report("t1", "n1", 1, "running", container_id="c1"))
    log(report("t1", "n1", 1, "running", container_id="c1"))
    log(report("t1", "n1", 1, "running", container_id="c2"))
    assert log.m.task("t1").restarts == 1


@pytest.mark.parametrize("state", ["pending", "assigned", "stopping", "exploded"])
def test_nodes_may_only_report_what_they_observe(log, state):
    log(create("t1")), log(place(("t1", "n1", 0)))
    assert isinstance(log(report("t1", "n1", 1, state)), Refused)


# -- stopping --------------------------------------------------------------------------


def test_stopping_a_pending_task_stops_it_at_once(log):
    log(create("t1"))
    assert log(StopTask(task_id="t1")).task.state == "stopped"
    assert log.m.pending_tasks() == []


def test_stopping_a_running_task_waits_for_its_node(log):
    log(create("t1")), log(place(("t1", "n1", 0))), log(report("t1", "n1", 1, "running"))
    assert log(StopTask(task_id="t1")).task == log.m.task("t1") and log.m.task("t1").state == "stopping"
    log(report("t1", "n1", 1, "running"))  # the container is not down yet
    assert log.m.task("t1").state == "stopping" and log.m.usage("n1").used == Resources(GiB, 500)
    log(report("t1", "n1", 1, "stopped"))
    assert (log.m.task("t1").state, log.m.task("t1").desired) == ("stopped", "stop")
    assert log.m.usage("n1") == NodeUsage()


def test_a_task_wanted_stopped_is_not_placed(log):
    log(create("t1")), log(place(("t1", "n1", 0))), log(report("t1", "n1", 1, "lost"))
    log(StopTask(task_id="t1"))
    assert refusals(log(place(("t1", "n2", 1)))) == {"t1": RefusalKind.WRONG_STATE}  # wanted stopped
    refused(log(StopTask(task_id="nope")), RefusalKind.NOT_FOUND)


# -- nodes -------------------------------------------------------------------------------


def test_re_registering_a_node_keeps_its_reservations(log):
    log(create("t1")), log(place(("t1", "n1", 0)))
    result = log(node("n1", 16, 8, zone="a"))
    assert accepted(result).created is False
    assert log.m.node("n1").capacity == Resources(16 * GiB, 8000)
    assert log.m.usage("n1").used == Resources(GiB, 500)


def test_node_status_changes_record_their_index(log):
    assert log(SetNodeStatus(node_id="n1", status="suspect")).changed is True
    assert log.m.node("n1").status_index == log.index
    assert log(SetNodeStatus(node_id="n1", status="suspect")).changed is False
    refused(log(SetNodeStatus(node_id="n1", status="sleepy")), RefusalKind.INVALID)
    refused(log(SetNodeStatus(node_id="n7", status="dead")), RefusalKind.NOT_FOUND)
    assert [n.id for n in log.m.nodes()] == ["n1", "n2"]


def test_an_announced_restart_keeps_the_nodes_tasks_and_takes_nothing_new(log):
    """SetNodeStatus(restarting): the agent of n1 goes away for a moment. Its task stays
    placed and running with its reservation; nothing new is placed there; registering
    again makes it alive."""
    log(create("web")), log(place(("web", "n1", 0)))
    log(report("web", "n1", 1, "running", container_id="c1"))
    assert log(SetNodeStatus(node_id="n1", status="restarting")).changed is True
    web = log.m.task("web")
    assert (web.state, web.node_id, web.container_id) == ("running", "n1", "c1")
    assert log.m.usage("n1").used == Resources(GiB, 500)
    log(create("new"))
    assert refusals(log(place(("new", "n1", 0)))) == {"new": RefusalKind.NO_FIT}  # n1 is restarting
    accepted(log(node("n1")))
    assert log.m.node("n1").status == "alive"
    assert log(place(("new", "n1", 0))).placed == ("new",)


def test_only_a_node_the_cluster_counts_on_can_announce_a_restart(log):
    accepted(log(SetNodeStatus(node_id="n1", status="suspect")))
    accepted(log(SetNodeStatus(node_id="n1", status="restarting")))
    assert log(SetNodeStatus(node_id="n1", status="restarting")).changed is False
    for gone in ("left", "dead"):
        accepted(log(SetNodeStatus(node_id="n2", status=gone)))
        refused(log(SetNodeStatus(node_id="n2", status="restarting")), RefusalKind.WRONG_STATE)
        assert log.m.node("n2").status == gone


def test_a_restarting_node_survives_a_snapshot(log):
    log(SetNodeStatus(node_id="n2", status="restarting"))
    restored = StateMachine.restore(json.loads(json.dumps(log.m.snapshot())))
    assert restored.node("n2").status == "restarting"


def test_counts_by_state(log):
    log(create("a")), log(create("b")), log(create("c"))
    log(place(("a", "n1", 0))), log(StopTask(task_id="c"))
    assert log.m.counts_by_state() == {"assigned": 1, "pending": 1, "stopped": 1}


def test_snapshot_survives_json_and_restores_the_same_machine(log):
    log(create("t1", host_port=8080, key="k", rid="r1")), log(create("t2")), log(place(("t1", "n2", 0)))
    data = json.loads(json.dumps(log.m.snapshot()))
    restored = StateMachine.restore(data)
    assert_same(log.m, restored)
    assert restored.apply(create("zzz", rid="r1"), 99).task.id == "t1"  # request memory survives too


def test_a_snapshot_carries_the_no_fit_kind(log):
    log(create("t1", 100)), log(create("t2"))
    log(MarkUnschedulable(task_id="t1", reason="no node has 100.0 GiB free memory", kind=NoFitKind.MEMORY))
    restored = StateMachine.restore(json.loads(json.dumps(log.m.snapshot())))
    assert_same(log.m, restored)
    assert (restored.task("t1").reason_kind, restored.task("t2").reason_kind) == (NoFitKind.MEMORY, None)


def test_a_task_from_a_snapshot_written_before_kinds_has_none():
    """The next scheduling pass records the kind again (the loop sees None differ)."""
    raw = Task("t1", TaskSpec("img", GiB), reason="no alive nodes").to_dict()
    del raw["reason_kind"]
    assert Task.from_dict(raw).reason_kind is None


def assert_same(a: StateMachine, b: StateMachine) -> None:
    assert a.snapshot() == b.snapshot()
    assert a.tasks() == b.tasks() and a.nodes() == b.nodes() and a.usages() == b.usages()
    assert a.pending_tasks() == b.pending_tasks() and a.counts_by_state() == b.counts_by_state()
    assert all(a.tasks_on(n.id) == b.tasks_on(n.id) for n in a.nodes())


# -- properties ----------------------------------------------------------------------------

NODE_IDS = ["n0", "n1", "n2"]
TASK_IDS = [f"t{i}" for i in range(6)]
CAPACITY = {"n0": Resources(2 * GiB, 1000), "n1": Resources(4 * GiB, 2000), "n2": Resources(GiB, 4000)}
LABELS = {"n0": (("disk", "ssd"),), "n1": (), "n2": (("disk", "hdd"),)}

task_ids, node_ids = st.sampled_from(TASK_IDS), st.sampled_from(NODE_IDS)
specs = st.builds(
    TaskSpec, image=st.just("img"), memory=st.sampled_from([0, GiB // 2, GiB, 3 * GiB]),
    cpu_millis=st.sampled_from([0, 500, 1000]),
    ports=st.sampled_from([(), (PortBinding(80, "tcp", 8080),), (PortBinding(53, "udp", 53),)]),
    node_selectors=st.sampled_from([(), (("disk", "ssd"),)]),
)
random_commands = st.one_of(
    st.builds(lambda i: RegisterNode(node=NodeInfo(i, "", "", capacity=CAPACITY[i], labels=LABELS[i])),
              node_ids),
    st.builds(lambda i, s: SetNodeStatus(node_id=i, status=s), node_ids, st.sampled_from(NODE_STATES)),
    st.builds(lambda i, s, k: CreateTask(task_id=i, spec=s, idempotency_key=k), task_ids, specs,
              st.sampled_from(["", "k1", "k2"])),
    st.builds(lambda ps: PlaceTasks(placements=tuple(ps)),
              st.lists(st.builds(Placement, task_ids, node_ids, st.integers(0, 3)), max_size=4)),
    st.builds(lambda i, k: MarkUnschedulable(task_id=i, reason="full", kind=k), task_ids, st.sampled_from(NoFitKind)),
    st.builds(lambda t, n, g, s: ReportTaskState(task_id=t, node_id=n, generation=g, state=s),
              task_ids, node_ids, st.integers(0, 3), st.sampled_from(["running", "failed", "completed",
                                                                      "stopped", "lost"])),
    st.builds(lambda i: StopTask(task_id=i), task_ids),
    st.just("the scheduler"),  # placeholder, replaced below by a plan made on the current state
)


def scheduled(m: StateMachine) -> PlaceTasks:
    placements, _ = plan(m.pending_tasks(), m.nodes(), m.usages())
    return PlaceTasks(placements=tuple(placements))


def recomputed_usage(m: StateMachine, node_id: str) -> NodeUsage:
    usage = NodeUsage()
    for t in m.tasks():
        if t.node_id == node_id and t.state in ("assigned", "running", "stopping"):
            assert t.spec.static_host_ports.isdisjoint(usage.ports), "a host port is reserved twice"
            usage = usage.plus(t.spec)
    return usage


@settings(max_examples=300, deadline=None)
@given(st.lists(random_commands, max_size=40))
def test_no_sequence_of_commands_over_commits_a_node(commands):
    log = Log()
    for command in commands:
        if command == "the scheduler":
            command = scheduled(log.m)
            result = log(command)
            assert result.refused == {}, "a plan made on the current state must be accepted whole"
        else:
            log(command)
        for n in log.m.nodes():
            usage = log.m.usage(n.id)
            assert usage.used.fits_in(n.capacity), f"{n.id} over-committed: {usage}"
            assert usage == recomputed_usage(log.m, n.id)
            holding = {t.id for t in log.m.tasks()
                       if t.node_id == n.id and t.state in ("assigned", "running", "stopping")}
            assert {t.id for t in log.m.tasks_on(n.id)} == holding
            # kept incrementally (reservations.py): the same tasks, values and order as a full scan
            assert log.m.tasks_on(n.id) == [t for t in log.m.tasks() if t.id in holding]
        assert log.m.placeable_tasks() == [t for t in log.m.tasks()
                                           if t.state in ("pending", "lost") and t.desired == DESIRED_RUN]
        tasks = log.m.tasks()  # every task once, its current value, in creation order
        assert tasks == sorted(tasks, key=lambda t: (t.created_index, t.id))
        assert all(log.m.task(t.id) is t for t in tasks)
        assert len(tasks) == sum(log.m.counts_by_state().values())
    assert_same(log.m, StateMachine.restore(json.loads(json.dumps(log.m.snapshot()))))


@settings(max_examples=100, deadline=None)
@given(st.lists(random_commands.filter(lambda c: c != "the scheduler"), max_size=30))
def test_replicas_applying_the_same_log_agree(commands):
    a, b = Log(), Log()
    for command in commands:
        assert a(command) == b(encode(command))  # one applies objects, the other the log text
    assert_same(a.m, b.m)
