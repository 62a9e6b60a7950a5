"""Naming a cluster and restoring a saved state, as logs: what the machine accepts, what it
refuses (and that a refusal changes nothing), and that replicas applying one log with a
restore in it agree."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from result_kit import accepted, refused

from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.domain.service import ServiceSpec
from orion.state.canonical import compress, pack, state_digest
from orion.state.commands import (
    CreateTask,
    NameCluster,
    Placement,
    PlaceTasks,
    PutService,
    RegisterNode,
    RestoreSnapshot,
    StopTask,
    decode,
    encode,
)
from orion.state.machine import SNAPSHOT_VERSION, StateMachine
from orion.state.results import RefusalKind

GiB = 1 << 30


class Log:
    def __init__(self, machine: StateMachine | None = None) -> None:
        self.m = machine or StateMachine()
        self.index = 0

    def __call__(self, command) -> dict:
        self.index += 1
        return self.m.apply(encode(command), self.index)  # as the log carries it

    def digest(self) -> str:
        return state_digest(self.m.snapshot())


def busy(cluster_id: str, tasks: int = 5) -> Log:
    log = Log()
    log(NameCluster(cluster_id=cluster_id))
    log(RegisterNode(request_id="r-n1", node=NodeInfo("n1", "127.0.0.1:1", "127.0.0.1:2",
                                                      capacity=Resources(8 * GiB, 4000))))
    for i in range(tasks):
        log(CreateTask(request_id=f"c{i}", task_id=f"t{i}", spec=TaskSpec("app:1", 64 << 20)))
        log(PlaceTasks(placements=(Placement(f"t{i}", "n1", 0),)))
    log(StopTask(request_id="s0", task_id="t0"))
    log(PutService(request_id="svc", spec=ServiceSpec("web", TaskSpec("app:1", 32 << 20), count=2), at=1.0))
    return log


def restore(state: dict, force: bool = False, digest: str | None = None) -> RestoreSnapshot:
    return RestoreSnapshot(body=pack(compress(state)[0]), digest=state_digest(state) if digest is None else digest,
                           force=force)


def test_a_cluster_is_named_once():
    log = Log()
    accepted(log(NameCluster(cluster_id="c-1")))
    refused(log(NameCluster(cluster_id="c-2")), RefusalKind.EXISTS)  # already named c-1
    assert log.m.cluster_id == "c-1"
    assert StateMachine.restore(log.m.snapshot()).cluster_id == "c-1"


def test_an_unnamed_machine_snapshots_as_before_cluster_ids():
    assert "cluster_id" not in StateMachine().snapshot()


def test_a_restore_makes_the_state_the_saved_one_digest_and_all():
    saved = busy("c-1")
    state = saved.m.snapshot()
    target = busy("c-1", tasks=2)
    target(CreateTask(request_id="later", task_id="later", spec=TaskSpec("app:2", 1 << 20)))
    result = accepted(target(restore(state)))
    assert result.digest == state_digest(state) == target.digest()
    assert result.tasks == 5 and result.nodes == 1 and result.services == 1
    assert target.m.task("later") is None
    assert target.m.usage("n1") == saved.m.usage("n1")  # reservations recomputed from the tasks


def test_a_restored_machine_keeps_working_like_the_original():
    saved = busy("c-1")
    target = busy("c-1", tasks=1)
    target(restore(saved.m.snapshot()))
    target.index = saved.index = max(target.index, saved.index)
    for log in (saved, target):
        log(CreateTask(request_id="after", task_id="after", spec=TaskSpec("app:3", 1 << 20)))
        log(StopTask(request_id="s1", task_id="t1"))
    assert saved.digest() == target.digest()


def test_a_repeated_request_id_from_before_the_snapshot_is_still_answered_once():
    saved = busy("c-1")
    target = busy("c-1", tasks=0)
    target(restore(saved.m.snapshot()))
    again = target(CreateTask(request_id="c1", task_id="t1-again", spec=TaskSpec("app:1", 1)))
    assert again.task.id == "t1"  # the saved answer, not a second task


@pytest.mark.parametrize("spoil, kind", [
    (lambda s: s["tasks"][0].update(id="forged"), RefusalKind.INVALID),  # does not match its checksum
    (lambda s: s.update(v=SNAPSHOT_VERSION + 1), RefusalKind.UNREADABLE),  # newer than this cluster reads
    (lambda s: s.update(cluster_id="c-other"), RefusalKind.WRONG_STATE),  # another cluster's
    (lambda s: s.pop("cluster_id"), RefusalKind.WRONG_STATE),  # an unnamed cluster's
])
def test_a_bad_restore_is_refused_and_changes_nothing(spoil, kind):
    state = busy("c-1").m.snapshot()
    original_digest = state_digest(state)
    spoil(state)
    target = busy("c-1", tasks=3)
    before = target.digest()
    digest = original_digest if kind == RefusalKind.INVALID else None  # a corrupted file keeps its old checksum
    refused(target(restore(state, digest=digest)), kind)
    assert target.digest() == before


def test_a_refused_restore_names_the_fix():
    """The sentence is what the operator reads (the API answers it as is)."""
    state = busy("c-other").m.snapshot()
    why = refused(busy("c-1")(restore(state)), RefusalKind.WRONG_STATE).detail
    assert why == ("the snapshot is of cluster c-other, this is cluster c-1: "
                   "restore it with --force to replace this cluster's state with another's")


def test_another_clusters_state_is_restored_when_forced_and_brings_its_id():
    other = busy("c-other")
    target = busy("c-1", tasks=1)
    assert accepted(target(restore(other.m.snapshot(), force=True))).cluster_id == "c-other"
    assert target.digest() == other.digest()


def test_force_does_not_pass_a_corrupted_state():
    state = busy("c-1").m.snapshot()
    digest = state_digest(state)
    state["nodes"][0]["id"] = "n9"
    refused(busy("c-1")(restore(state, force=True, digest=digest)), RefusalKind.INVALID)  # the checksum


def test_a_body_that_is_not_a_packed_state_is_refused():
    log = busy("c-1")
    before = log.digest()
    state = busy("c-1").m.snapshot()
    for body in ("not base64!", pack(b"not gzip"), pack(compress({"v": 1})[0][:-3])):
        refused(log(RestoreSnapshot(body=body, digest=state_digest(state))), RefusalKind.INVALID)  # cannot be read
    assert log.digest() == before


def test_a_restore_survives_the_log_encoding():
    state = busy("c-1").m.snapshot()
    cmd = restore(state)
    assert decode(encode(cmd)) == cmd


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(["create", "stop", "restore", "snapshot"]), max_size=12), st.integers(1, 6))
def test_replicas_applying_one_log_with_restores_agree(steps, tasks):
    """Two replicas, one starting from the other's pysyncobj snapshot halfway (as a follower
    that installed one), apply the same entries: their digests agree after every entry."""
    saved = busy("c-1", tasks=tasks).m.snapshot()
    a = busy("c-1", tasks=2)
    b = Log(StateMachine.restore(copy.deepcopy(a.m.snapshot())))
    b.index = a.index
    for i, step in enumerate(steps):
        if step == "create":
            cmd = CreateTask(request_id=f"x{i}", task_id=f"x{i}", spec=TaskSpec("app:1", 1 << 20))
        elif step == "stop":
            cmd = StopTask(request_id=f"y{i}", task_id="t1")
        elif step == "restore":
            cmd = restore(saved)
        else:
            b = Log(StateMachine.restore(copy.deepcopy(b.m.snapshot())))
            b.index = a.index
            continue
        assert a(cmd) == b(cmd)
        assert a.digest() == b.digest()
