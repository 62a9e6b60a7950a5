"""Idle heartbeats to non-voting replicas are thinned; nothing a replica needs is held back
(orion/raft/replica_heartbeats.py). Time is a value here: no clock, no sockets."""

from __future__ import annotations

import inspect

from hypothesis import given
from hypothesis import strategies as st
from pysyncobj import SyncObj

from orion.raft.replica_heartbeats import ReplicaHeartbeats, is_heartbeat


def beat(term: int = 3, commit: int = 10) -> dict:
    return {"type": "append_entries", "term": term, "commit_index": commit, "entries": [],
            "prevLogIdx": commit, "prevLogTerm": term}


def test_an_idle_replica_hears_once_per_period_instead_of_every_tick():
    hb = ReplicaHeartbeats(period=0.5)
    sent = [now / 10 for now in range(0, 20) if hb.due("r1", beat(), now / 10)]  # pysyncobj: every 0.1 s
    assert sent == [0.0, 0.5, 1.0, 1.5]
    assert hb.skipped == 16


def test_a_new_commit_index_or_term_goes_out_at_once():
    hb = ReplicaHeartbeats(period=0.5)
    assert hb.due("r1", beat(commit=10), 0.0)
    assert hb.due("r1", beat(commit=11), 0.1)  # something was committed: the replica applies it now
    assert hb.due("r1", beat(term=4, commit=11), 0.2)  # a new leader's term
    assert not hb.due("r1", beat(term=4, commit=11), 0.3)
    assert hb.due("r1", {**beat(term=4, commit=11), "prevLogIdx": 8}, 0.35)  # a log position: pysyncobj's probe


def test_entries_and_snapshots_are_never_held_and_count_as_contact():
    hb = ReplicaHeartbeats(period=0.5)
    entries = {**beat(), "entries": [(b"x", 11, 3)]}
    snapshot = {"type": "append_entries", "term": 3, "commit_index": 10, "serialized": (b"", 0, True)}
    assert hb.due("r1", entries, 0.0) and hb.due("r1", entries, 0.01)
    assert not hb.due("r1", beat(), 0.1)  # same term, commit index and position, heard 0.09 s ago
    assert hb.due("r1", snapshot, 0.12) and hb.due("r1", snapshot, 0.13)
    assert hb.due("r1", beat(), 0.2)  # after a snapshot part: the position is news again


def test_each_replica_has_its_own_period_and_a_reconnect_hears_at_once():
    hb = ReplicaHeartbeats(period=0.5)
    assert hb.due("r1", beat(), 0.0) and hb.due("r2", beat(), 0.05)
    assert not hb.due("r1", beat(), 0.1) and not hb.due("r2", beat(), 0.1)
    hb.forget("r1")
    assert hb.due("r1", beat(), 0.2)


def test_other_messages_pass():
    hb = ReplicaHeartbeats(period=0.5)
    for message in ({"type": "request_vote", "term": 3}, {"type": "apply_command_response", "error": 0}, "readonly"):
        assert hb.due("r1", message, 0.0) and hb.due("r1", message, 0.0)


@given(st.lists(st.tuples(st.floats(0, 0.2), st.booleans()), max_size=60))
def test_a_replica_never_waits_longer_than_a_period_nor_misses_a_commit(steps):
    """Fed pysyncobj's stream (a heartbeat per tick, sometimes a new commit index): every new
    commit index is sent when first seen, and no gap between sends exceeds period + one tick."""
    hb = ReplicaHeartbeats(period=0.5)
    now, commit, last_sent, seen = 0.0, 0, None, set()
    for gap, committed in steps:
        now += gap
        commit += committed
        if hb.due("r1", beat(commit=commit), now):
            seen.add(commit)
            assert last_sent is None or now - last_sent <= 0.5 + 0.2
            last_sent = now
        else:
            assert commit in seen and now - last_sent < 0.5
    assert commit in seen or not steps


def test_pysyncobj_still_sends_heartbeats_in_the_shape_we_recognize():
    source = inspect.getsource(SyncObj)
    assert "for node in self.__otherNodes | self.__readonlyNodes:" in source
    assert "'entries': entries," in source and "'serialized': transmissionData," in source
    assert is_heartbeat(beat()) and not is_heartbeat({**beat(), "entries": [(b"x", 1, 1)]})
