"""Joining and agreeing, on real pysyncobj sockets, in-process (no Docker, no HTTP).

Pins down the store's side of issue #14: a joiner the leader has not admitted never
campaigns (its term stays 0 — and without the gate it would climb, so the test can
fail); the leader's admission adds a voter (1 -> 2 commits only with the joiner's
acknowledgement, so the joiner must already run) or turns the joiner into a
non-voting replica; and a replica whose pysyncobj truncated entries it had applied
rebuilds its machine from its journal, ending with the leader's digest.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from harness import free_ports, wait_until
from parts import raft_settings

from orion.domain.model import TaskSpec
from orion.raft.patches import TRUNCATION_MESSAGE
from orion.raft.store import RaftStore
from orion.state.commands import CreateTask
from orion.state.entries import ReplicatedMachine
from orion.store.admission import REPLICA, VOTER

SECRET = "test-secret"
ELECTION = {"election_min": 0.2, "election_max": 0.6}


@pytest.fixture
def start(tmp_path):
    stores: list[RaftStore] = []

    def start(addr: str, partners: list[str], joining: bool = False) -> RaftStore:
        settings = raft_settings(addr, str(tmp_path / addr.replace(":", "_")), SECRET, joining=joining, **ELECTION)
        stores.append(RaftStore(settings, partners, ReplicatedMachine()))
        return stores[-1]

    yield start
    for store in stores:
        store.close()


def _create(task_id: str) -> CreateTask:
    return CreateTask(request_id=uuid.uuid4().hex, task_id=task_id, spec=TaskSpec("orion/busybox:latest", 1 << 26))


def _agree(stores: list[RaftStore]) -> None:
    """Every replica reaches the same applied index and shows the same digest there."""
    index = max(s.status().applied_index for s in stores)
    for store in stores:
        assert store.wait_applied(index, 10)
    wait_until(lambda: len({s.digest() for s in stores}) == 1, 10, "equal digests at equal indexes")


def _seed(start, addr: str) -> RaftStore:
    seed = start(addr, [])
    wait_until(seed.is_leader, 10, "the seed to lead")
    seed.submit(_create("t0"), timeout=5)
    return seed


@pytest.mark.parametrize("gated", [True, False])
def test_a_joiner_not_admitted_never_campaigns(start, gated):
    """Gated: term 0 after ten election timeouts. Ungated (the old way), pre-vote holds it back
    too (patches.py rule 10; before it, its term climbed): each time its timer fires it asks
    first, and it is never answered — the joiner's address is the higher one, so it is the side
    that dials (transport.py:409), and each attempt is up only until the seed reads its unknown
    address and hangs up (:355-358)."""
    seed_addr, joiner_addr = (f"127.0.0.1:{p}" for p in sorted(free_ports(2)))
    seed = _seed(start, seed_addr)
    joiner = start(joiner_addr, [seed_addr], joining=gated)
    time.sleep(10 * ELECTION["election_max"])
    assert joiner.status().term == 0 and seed.status().term == 1 and seed.is_leader()


def test_the_leader_admits_a_second_voter_that_is_already_running(start):
    seed_addr, joiner_addr = (f"127.0.0.1:{p}" for p in free_ports(2))
    seed = _seed(start, seed_addr)
    joiner = start(joiner_addr, [seed_addr], joining=True)
    answer = seed.admit(joiner_addr, voter_cap=5, timeout=10)  # commits only with the joiner's ack
    assert answer.role == VOTER and seed.members() == sorted([seed_addr, joiner_addr])
    joiner.join_as(answer.role, seed.members())
    assert seed.admit(joiner_addr, voter_cap=1, timeout=10).role == VOTER  # asked again, even at the cap
    seed.submit(_create("t1"), timeout=5)
    _agree([seed, joiner])
    assert joiner.status().extra["admitted"] and joiner.voter
    assert RaftStore.has_state(joiner._settings.data_dir)


def test_beyond_the_cap_the_joiner_restarts_as_a_replica_and_catches_up(start):
    seed_addr, joiner_addr = (f"127.0.0.1:{p}" for p in free_ports(2))
    seed = _seed(start, seed_addr)
    joiner = start(joiner_addr, [seed_addr], joining=True)
    answer = seed.admit(joiner_addr, voter_cap=1, timeout=10)
    assert answer.role == REPLICA and seed.members() == [seed_addr]
    joiner.join_as(answer.role, seed.members())
    assert not joiner.voter and joiner.members() == [seed_addr]
    joiner.submit(_create("t1"), timeout=5)  # a replica forwards writes
    _agree([seed, joiner])
    assert joiner.read(lambda m: [t.id for t in m.tasks()])[0] == ["t0", "t1"]


def test_a_replica_that_truncated_applied_entries_rebuilds_its_machine(start):
    """A stale append_entries from the leader itself (prevLogIdx below what the replica
    applied, no entries) makes pysyncobj delete applied entries (syncobj.py:991-1004); the
    leader then sends them again. The watch hears the CRITICAL record, the replica restarts
    its engine from its journal, and ends where the leader is, with its digest."""
    seed_addr, replica_addr = (f"127.0.0.1:{p}" for p in free_ports(2))
    seed = _seed(start, seed_addr)
    replica = start(replica_addr, [seed_addr], joining=True)
    replica.join_as(seed.admit(replica_addr, voter_cap=1, timeout=10).role, seed.members())
    for i in range(5):
        seed.submit(_create(f"t{i + 1}"), timeout=5)
    _agree([seed, replica])
    applied = replica.status().applied_index
    heard: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = heard.append  # type: ignore[method-assign]
    logging.getLogger("pysyncobj.syncobj").addHandler(handler)
    try:
        engine = seed._syncobj
        transport = engine._SyncObj__transport
        stale = {"type": "append_entries", "term": engine.raftCurrentTerm, "commit_index": engine.raftCommitIndex,
                 "prevLogIdx": applied - 3, "prevLogTerm": engine.raftCurrentTerm, "entries": []}
        engine.call_on_tick(lambda: [transport.send(n, stale) for n in engine.readonlyNodes])
        wait_until(lambda: replica.resyncs == 1, 10, "the replica to resync")
    finally:
        logging.getLogger("pysyncobj.syncobj").removeHandler(handler)
    assert any(TRUNCATION_MESSAGE in str(r.msg) for r in heard)
    seed.submit(_create("t-after"), timeout=5)
    _agree([seed, replica])
    assert replica.status().applied_index > applied
