"""The Raft backend (orion/raft/) with a toy machine: a key-value dict, nothing of Orion's state.

RaftStore is handed its machine (orion/raft/application.py), as etcd-raft's
application owns its state machine. Three replicas over real pysyncobj sockets
on loopback: writes from any replica, concurrent writes batched into shared
entries with one answer each, equal dicts everywhere, and a restart that
restores the machine from pysyncobj's snapshot and our journal.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from harness import free_ports
from parts import raft_settings

from orion.raft.store import RaftStore

SECRET = "toy-secret"


class KeyValue:
    """The toy application: entries are JSON ``{"key", "value"}`` (or a list of them, batched);
    applying one answers the value it replaced."""

    def fresh(self) -> dict[str, Any]:
        return {}

    def restore(self, data: Any) -> dict[str, Any]:
        return dict(data)

    def snapshot(self, machine: dict[str, Any]) -> Any:
        return dict(machine)

    def encode(self, command: tuple[str, Any]) -> str:
        return json.dumps({"key": command[0], "value": command[1]})

    def apply(self, machine: dict[str, Any], entry: str, index: int) -> Any:
        body = json.loads(entry)
        if isinstance(body, list):
            return {"results": [self.apply(machine, part, index) for part in body]}
        old = machine.get(body["key"])
        machine[body["key"]] = body["value"]
        return {"replaced": old, "index": index}

    def unreadable(self, result: Any) -> list[str]:
        return []

    def reads_confirmed(self, machine: dict[str, Any]) -> bool:
        return True

    def batches_read(self, machine: dict[str, Any]) -> bool:
        return True

    def combine(self, entries: list[str]) -> str:
        return json.dumps(entries)

    def results(self, result: Any, count: int) -> list[Any] | None:
        parts = result.get("results") if isinstance(result, dict) else None
        return parts if isinstance(parts, list) and len(parts) == count else None


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def cluster(tmp_path):
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    stores: dict[str, RaftStore] = {}

    def start(addr: str) -> RaftStore:
        settings = raft_settings(addr, str(tmp_path / addr.replace(":", "_")), SECRET, election_min=0.2,
                                 election_max=0.6, compaction_entries=50)
        stores[addr] = RaftStore(settings, [a for a in addrs if a != addr], KeyValue())
        return stores[addr]

    for addr in addrs:
        start(addr)
    _wait(lambda: all(s.has_leader() for s in stores.values()), 15, "a leader")
    yield stores, start
    for store in stores.values():
        store.close()


def test_a_toy_machine_replicates_writes_from_any_replica(cluster):
    stores, _ = cluster
    leader = next(s for s in stores.values() if s.is_leader())
    follower = next(s for s in stores.values() if not s.is_leader())
    assert follower.submit(("a", 1), timeout=5)["replaced"] is None
    assert leader.submit(("a", 2), timeout=5)["replaced"] == 1
    index = leader.status().commit_index
    assert all(s.wait_applied(index, 5) for s in stores.values())
    assert {addr: s.read(dict)[0] for addr, s in stores.items()} == {addr: {"a": 2} for addr in stores}


def test_concurrent_writes_share_entries_and_each_gets_its_own_answer(cluster):
    stores, _ = cluster
    follower = next(s for s in stores.values() if not s.is_leader())
    answers: dict[int, Any] = {}

    def write(i: int) -> None:
        answers[i] = follower.submit((f"k{i}", i), timeout=10)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == list(range(48)) and all(a["replaced"] is None for a in answers.values())
    batched = follower.status().extra["batched_writes"]
    assert batched["commands"] >= 48 and batched["entries"] < batched["commands"]  # shared entries
    index = max(s.status().commit_index for s in stores.values())
    assert all(s.wait_applied(index, 5) for s in stores.values())
    digests = {s.digest()[0] for s in stores.values() if s.digest()[1] == index}
    assert len(digests) <= 1  # equal machines at equal indexes


def test_a_restarted_replica_restores_the_toy_machine_from_its_snapshot_and_journal(cluster, tmp_path):
    stores, start = cluster
    follower_addr = next(a for a, s in stores.items() if not s.is_leader())
    leader = next(s for s in stores.values() if s.is_leader())
    for i in range(120):  # past compaction_entries: pysyncobj writes a snapshot of the dict
        leader.submit(("n", i), timeout=5)
    index = leader.status().commit_index
    assert stores[follower_addr].wait_applied(index, 10)
    assert (tmp_path / follower_addr.replace(":", "_") / "raft.dump").exists()  # restore() will run
    stores[follower_addr].close()
    restarted = start(follower_addr)
    _wait(lambda: restarted.read(lambda m: m.get("n"))[0] == 119, 15, "the restarted replica's dict")
