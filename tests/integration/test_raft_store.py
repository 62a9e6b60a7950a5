"""RaftStore over real pysyncobj TCP sockets on loopback, three replicas in-process.

No Docker and no HTTP: this pins down the store's own promises — writes from
any replica, one result per request id, a restart that keeps state, and a
refusal (never a silent success) without quorum.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from harness import free_ports, wait_until
from parts import raft_settings
from result_kit import accepted

from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.raft.store import RaftStore
from orion.state.commands import CreateTask, RegisterNode
from orion.state.entries import ReplicatedMachine
from orion.state.results import RefusalKind, Refused
from orion.store.port import NoLeader, StoreError

SECRET = "test-secret"


@pytest.fixture
def replicas(tmp_path):
    ports = free_ports(3)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    stores: dict[str, RaftStore] = {}

    def start(addr: str) -> RaftStore:
        settings = raft_settings(addr, str(tmp_path / addr.replace(":", "_")), SECRET,
                                 election_min=0.2, election_max=0.6)
        stores[addr] = RaftStore(settings, [a for a in addrs if a != addr], ReplicatedMachine())
        return stores[addr]

    for addr in addrs:
        start(addr)
    wait_until(lambda: all(s.has_leader() for s in stores.values()), 15, "a leader")
    yield stores, start
    for store in stores.values():
        try:
            store.close()
        except Exception:
            pass


def _create(task_id: str, request_id: str = "") -> CreateTask:
    return CreateTask(request_id=request_id or uuid.uuid4().hex, task_id=task_id,
                      spec=TaskSpec(image="orion/busybox:latest", memory=64 << 20))


def test_write_through_a_follower_reaches_every_replica(replicas):
    stores, _ = replicas
    follower = next(s for s in stores.values() if not s.is_leader())
    result = follower.submit(_create("t1"), timeout=5)
    assert accepted(result).task.id == "t1"
    index = follower.status().commit_index
    for store in stores.values():
        assert store.wait_applied(index, 5)
        task, _ = store.read(lambda m: m.task("t1"))
        assert task is not None and task.state == "pending"


def test_a_repeated_request_id_applies_once(replicas):
    stores, _ = replicas
    store = next(iter(stores.values()))
    first = store.submit(_create("t-once", "req-1"), timeout=5)
    second = store.submit(_create("t-once", "req-1"), timeout=5)
    assert first == second
    count, _ = store.read(lambda m: len(m.tasks()))
    assert count == 1


def test_concurrent_writes_share_entries_and_each_gets_its_own_answer(replicas):
    """Batched writes (orion/store/coalescer.py): 48 writers at once on a follower and the leader,
    a third of them duplicates; fewer log entries than writes, one answer each, and every
    replica applies the same."""
    stores, _ = replicas
    leader = next(s for s in stores.values() if s.is_leader())
    follower = next(s for s in stores.values() if not s.is_leader())
    start_index = leader.status().commit_index
    answers: dict[int, dict] = {}
    go = threading.Barrier(48)

    def write(i: int) -> None:
        go.wait()
        store = follower if i % 2 else leader
        answers[i] = store.submit(_create(f"t{i % 32}"), timeout=10)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 48
    created = sorted(int(a.task.id[1:]) for a in answers.values() if not isinstance(a, Refused))
    assert created == list(range(32))  # each id created once; its duplicate refused
    assert all(a.kind == RefusalKind.EXISTS for a in answers.values() if isinstance(a, Refused))
    entries = leader.status().commit_index - start_index
    assert entries < 48, f"{entries} log entries for 48 writes: nothing was coalesced"
    index = leader.status().commit_index
    views = []
    for store in stores.values():
        assert store.wait_applied(index, 5)
        views.append(store.read(lambda m: [t.to_dict() for t in m.tasks()])[0])
    assert views[0] == views[1] == views[2] and len(views[0]) == 32


def test_while_a_registered_node_cannot_read_batches_no_batch_is_written(replicas):
    """A rolling upgrade from a release without batches: while a node of it is registered,
    every write goes as its own entry (the old node reads each), and once it registers
    upgraded, writes share entries again (orion/store/coalescer.py, BATCH_LOG_VERSION in orion/state/entries.py)."""
    stores, _ = replicas
    leader = next(s for s in stores.values() if s.is_leader())
    old = NodeInfo("old", "127.0.0.1:1", "127.0.0.1:2", capacity=Resources(1 << 30, 1000), log_version=0)
    accepted(leader.submit(RegisterNode(request_id="reg-old", node=old), timeout=5))

    def wave(prefix: str) -> int:
        """24 writers at once; how many log entries they took."""
        start_index = leader.status().commit_index
        go = threading.Barrier(24)
        answers: list[dict] = []

        def write(i: int) -> None:
            go.wait()
            answers.append(leader.submit(_create(f"{prefix}{i}"), timeout=10))

        threads = [threading.Thread(target=write, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answers) == 24 and not any(isinstance(a, Refused) for a in answers), answers
        return leader.status().commit_index - start_index

    assert wave("old-era-") == 24  # one entry per write: no Batch an old node would refuse
    upgraded = NodeInfo("old", "127.0.0.1:1", "127.0.0.1:2", capacity=Resources(1 << 30, 1000))
    accepted(leader.submit(RegisterNode(request_id="reg-new", node=upgraded), timeout=5))
    assert wave("new-era-") < 24


def test_restart_from_journal_keeps_state(replicas):
    stores, start = replicas
    leader = next(s for s in stores.values() if s.is_leader())
    node = NodeInfo("n1", "127.0.0.1:1", "127.0.0.1:2", capacity=Resources(1 << 30, 2000))
    leader.submit(RegisterNode(request_id="r", node=node), timeout=5)
    leader.submit(_create("t-durable"), timeout=5)
    victim_addr = next(a for a, s in stores.items() if not s.is_leader())
    stores[victim_addr].close()
    time.sleep(0.5)
    again = start(victim_addr)
    wait_until(lambda: again.read(lambda m: m.task("t-durable"))[0] is not None, 15, "state back after restart")
    assert again.read(lambda m: m.node("n1"))[0].capacity.memory == 1 << 30


def test_without_quorum_writes_are_refused_not_lost(replicas):
    stores, _ = replicas
    addrs = list(stores)
    survivor = stores[addrs[0]]
    for addr in addrs[1:]:
        stores[addr].close()
    wait_until(lambda: not survivor.has_leader(), 15, "the survivor to lose its leader")
    with pytest.raises(StoreError) as info:
        survivor.submit(_create("t-lost"), timeout=1.5)
    assert isinstance(info.value, NoLeader) or "committed" in str(info.value)
    assert survivor.read(lambda m: m.task("t-lost"))[0] is None


def test_the_leader_hands_over_to_a_caught_up_follower_without_an_election_timeout(replicas):
    """Raft's TimeoutNow (pysyncobj transferLeadership, run on the tick thread): another replica
    leads within one election timeout, and a write through the old leader then commits."""
    stores, _ = replicas
    leader = next(s for s in stores.values() if s.is_leader())
    leader.submit(_create("before"), timeout=5)
    started = time.monotonic()
    said = leader.transfer_leadership()
    assert said.startswith("leadership handed to "), said
    assert time.monotonic() - started < 0.6  # election_max: no timeout was waited out
    new = stores[said.removeprefix("leadership handed to ")]
    wait_until(new.is_leader, 2, "the new leader to know it leads")
    assert not leader.is_leader()
    accepted(leader.submit(_create("after"), timeout=5))
    assert next(s for s in stores.values() if s is not leader and s is not new).transfer_leadership() \
        == "not the leader: no leadership to hand over"



def test_a_lone_voter_leads_without_sitting_out_its_election_timeout(tmp_path):
    """A one-voter configuration (fresh bootstrap, then a restart) campaigns at once: with a
    3-3.4 s election timeout it leads before the shortest one could have run out
    (orion/raft/patches.py, rule 6: ElectionGate). pysyncobj wants its connection timeout (3.5 s) above it."""
    addr = f"127.0.0.1:{free_ports(1)[0]}"
    settings = raft_settings(addr, str(tmp_path / "lone"), SECRET, election_min=3.0, election_max=3.4)
    for start in ("fresh", "restart"):
        store = RaftStore(settings, [], ReplicatedMachine())
        try:
            assert store._syncobj.conf.raftMinTimeout == 0.0  # alone: "now"
            wait_until(store.is_leader, 2.5, f"the lone voter leading ({start})")
        finally:
            store.close()


def test_voters_with_peers_keep_their_randomized_timeouts(replicas):
    stores, _ = replicas
    for store in stores.values():
        conf = store._syncobj.conf
        assert (conf.raftMinTimeout, conf.raftMaxTimeout) == (0.2, 0.6)
