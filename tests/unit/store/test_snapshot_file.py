"""The snapshot file: what is written reads back the same, and any damage is refused with a
sentence (never accepted, never a traceback)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.state.canonical import state_digest
from orion.state.commands import CreateTask, NameCluster, RegisterNode
from orion.state.machine import StateMachine
from orion.store.snapshot_file import FORMAT, SnapshotFileError, SnapshotMeta, read_snapshot, write_snapshot


def machine(tasks: int = 3) -> StateMachine:
    m = StateMachine()
    m.apply(NameCluster(cluster_id="c-1"), 1)
    m.apply(RegisterNode(node=NodeInfo("n1", "a:1", "a:2", capacity=Resources(1 << 30, 1000))), 2)
    for i in range(tasks):
        m.apply(CreateTask(request_id=f"r{i}", task_id=f"t{i}", spec=TaskSpec("app:1", 1 << 20)), 3 + i)
    return m


META = SnapshotMeta(cluster_id="c-1", index=5, term=2, created=1700000000.5, node="n1", orion_version="0.1.0")
FILE = write_snapshot(machine().snapshot(), META)


def test_a_file_reads_back_as_written():
    state = machine().snapshot()
    snap = read_snapshot(write_snapshot(state, META))
    assert snap.meta == META
    assert snap.state == state
    assert snap.digest == state_digest(state)
    assert snap.summary() | {"size": 0} == {
        "clusterId": "c-1", "index": 5, "term": 2, "created": 1700000000.5, "node": "n1", "orionVersion": "0.1.0",
        "format": FORMAT, "stateVersion": 1, "nodes": 1, "tasks": 3, "services": 0, "size": 0,
        "digest": state_digest(state), "checksumOk": True}


def test_the_state_restores_into_the_machine_it_was():
    m = machine()
    assert StateMachine.restore(read_snapshot(write_snapshot(m.snapshot(), META)).state).snapshot() == m.snapshot()


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(FILE) - 1), st.integers(1, 255))
def test_any_changed_byte_is_refused(at, delta):
    spoiled = bytearray(FILE)
    spoiled[at] = (spoiled[at] + delta) % 256
    with pytest.raises(SnapshotFileError):
        read_snapshot(bytes(spoiled))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(FILE) - 1))
def test_a_truncated_file_is_refused(length):
    with pytest.raises(SnapshotFileError):
        read_snapshot(FILE[:length])


@pytest.mark.parametrize("data, words", [
    (b"", "not an Orion snapshot file"),
    (b"PK\x03\x04 a zip file", "not an Orion snapshot file"),
    (FILE.replace(b"orion-snapshot 1", b"orion-snapshot 9", 1), "format v9, newer than this Orion reads (v1)"),
    (FILE + b"x", "truncated or corrupted"),
])
def test_each_refusal_says_what_is_wrong(data, words):
    with pytest.raises(SnapshotFileError, match=words.replace("(", r"\(").replace(")", r"\)")):
        read_snapshot(data)
