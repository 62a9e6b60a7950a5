"""Durable acknowledgements: what a client was told is committed survives a power loss.

Three real RaftStores, each in its own process, over pysyncobj's TCP on
loopback (``durability_node.py``). One node writes from 16 threads and records
every acknowledged write while one of the two others lags (frozen). Then the
power goes on those two: the active one is frozen (SIGSTOP) at a moment its
journal has bytes it never synced, both are killed, and every byte after their
last sync point is cut from their journals — a power loss as the disk sees it
(the page cache, which survives a mere SIGKILL, is gone). The writer stays
down; the two come back, elect a leader, and every acknowledged write must be
there. With ``durability = "none"`` the same procedure loses them.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from harness import free_ports
from parts import raft_settings

from orion.domain.model import TaskSpec
from orion.metrics.registry import Metrics
from orion.raft.store import RaftStore
from orion.state.commands import CreateTask
from orion.state.entries import ReplicatedMachine

NODE = Path(__file__).resolve().parent / "durability_node.py"
SECRET = "durability-test"
WRITERS = 16


class NodeProcess:
    """A durability_node.py process: commands in, lines out (acks gathered apart)."""

    def __init__(self, addr: str, partners: list[str], data_dir: Path, durability: str) -> None:
        self.addr, self.data_dir = addr, data_dir
        self.acks: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen([sys.executable, str(NODE), addr, ",".join(partners), str(data_dir),
                                      durability, SECRET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()
        self.expect("ready", 30)

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("ack "):
                self.acks.append(line.split()[1])
            else:
                self._lines.put(line.strip())

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.addr}: no {prefix!r} line within {timeout}s") from None
            if line.startswith(prefix):
                return line[len(prefix):].strip()

    def ask(self, command: str, prefix: str, timeout: float = 30) -> object:
        self.send(command)
        return json.loads(self.expect(prefix, timeout))

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    @property
    def journal(self) -> Path:
        return self.data_dir / "raft.journal"

    def sync_point(self) -> int:
        data = (self.data_dir / "sync-point").read_bytes()
        return struct.unpack("<Q", data)[0] if len(data) == 8 else 0


def _start_cluster(tmp_path: Path, durability: str) -> tuple[list[str], dict[str, NodeProcess]]:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    nodes = {a: NodeProcess(a, [b for b in addrs if b != a], tmp_path / a.replace(":", "_"), durability)
             for a in addrs}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        views = [n.ask("status", "status") for n in nodes.values()]
        leaders = {v["leader"] for v in views}
        if len(leaders) == 1 and None not in leaders:
            return addrs, nodes
        time.sleep(0.1)
    raise AssertionError(f"no leader: {views}")


def _power_loss(active: NodeProcess, lagging: NodeProcess, durability: str) -> int:
    """Freeze ``active`` at a moment its journal has unsynced bytes (``lagging`` is frozen
    already), kill both, cut their journals at their sync points. Returns the bytes cut."""
    rng = random.Random()
    for _attempt in range(400):
        active.signal(signal.SIGSTOP)
        if durability == "none" or active.journal.stat().st_size > active.sync_point():
            break
        active.signal(signal.SIGCONT)
        time.sleep(rng.uniform(0.001, 0.01))
    cut = 0
    for node in (active, lagging):
        node.kill()
        size = node.journal.stat().st_size
        point = min(node.sync_point(), size)
        os.truncate(node.journal, point)
        cut += size - point
        if durability == "none":  # the term/vote file was never synced either
            Path(str(node.journal) + ".meta").unlink(missing_ok=True)
    return cut


@pytest.mark.parametrize("durability", ["fsync", "none"])
@pytest.mark.parametrize("power_lost_by", ["the leader and a lagging follower", "a follower and a lagging one"])
def test_acknowledged_writes_survive_a_majority_losing_every_unsynced_byte(tmp_path, durability, power_lost_by):
    """One of the two that lose power lags (frozen since before the writes), so every write
    is committed by the other one and the node that stays down: the two that come back hold
    each acknowledged write only if the active one synced it before it counted — the leader
    before it counted its own copy, a follower before it answered."""
    addrs, nodes = _start_cluster(tmp_path, durability)
    try:
        leader = nodes[nodes[addrs[0]].ask("status", "status")["leader"]]
        followers = [n for n in nodes.values() if n is not leader]
        if power_lost_by == "the leader and a lagging follower":
            active, lagging, writer = leader, followers[0], followers[1]
        else:
            active, lagging, writer = followers[0], followers[1], leader
        lagging.signal(signal.SIGSTOP)
        writer.send(f"write w {WRITERS}")
        deadline = time.monotonic() + 60
        while len(writer.acks) < 400 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(writer.acks) >= 400, f"only {len(writer.acks)} writes acknowledged in 60 s"

        cut = _power_loss(active, lagging, durability)
        time.sleep(0.5)  # answers already on their way still count as acknowledged
        writer.kill()  # and it stays down: the two that lost power must do without it
        acked = set(writer.acks)

        restarted = [NodeProcess(n.addr, [a for a in addrs if a != n.addr], n.data_dir, durability)
                     for n in (active, lagging)]
        nodes.update({n.addr: n for n in restarted})
        for node in restarted:
            present = set(node.ask("read", "tasks", timeout=60))
            lost = sorted(acked - present)
            if durability == "fsync":
                assert cut > 0, "the power loss cut nothing: the test proved nothing"
                assert not lost, f"{len(lost)} of {len(acked)} acknowledged writes lost on {node.addr}: {lost[:5]}"
            else:
                assert lost, "durability none kept every acknowledged write through a power loss"
    finally:
        for node in nodes.values():
            node.kill()


@pytest.mark.parametrize("durability", ["fsync", "none"])
def test_one_sync_covers_the_entries_of_concurrent_writers(tmp_path, durability):
    """16 writers at once on three in-process replicas: the leader syncs far less often than
    it appends (group commit), every replica counts its syncs in orion_raft_fsyncs_total,
    and with durability none nothing is ever synced."""
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    stores = [RaftStore(raft_settings(a, str(tmp_path / str(i)), SECRET, election_min=0.3, election_max=0.9,
                                      durability=durability), [b for b in addrs if b != a],
                        ReplicatedMachine())
              for i, a in enumerate(addrs)]
    try:
        deadline = time.monotonic() + 30
        while not all(s.has_leader() for s in stores) and time.monotonic() < deadline:
            time.sleep(0.05)
        leader = next(s for s in stores if s.is_leader())
        before = leader.status()
        writes = 800

        def write(i: int) -> None:
            stores[i % 3].submit(CreateTask(request_id=f"r{i}", task_id=f"t{i}",
                                            spec=TaskSpec(image="busybox", memory=1 << 20)), timeout=10)

        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(write, range(writes)))
        after = leader.status()
        appended = after.commit_index - before.commit_index  # fewer than the writes: batched writes (coalescer.py)
        syncs = after.extra["fsyncs"] - before.extra["fsyncs"]
        assert 0 < appended <= writes
        # No follower re-sent entries it had applied, so none rebuilt its engine (patches.py rule 1:
        # a success never winds the leader's next index back; before, 1-4 resyncs a run here).
        assert [store.resyncs for store in stores] == [0, 0, 0]
        if durability == "fsync":
            assert 0 < syncs < writes / 2, f"{syncs} syncs for {writes} writes ({appended} entries): no group commit"
        else:
            assert syncs == 0
        for store in stores:
            metrics = Metrics("n", store, process_metrics=False)
            sample = metrics.registry.get_sample_value("orion_raft_fsyncs_total")
            assert sample == store.status().extra["fsyncs"]
            assert (sample > 0) == (durability == "fsync")
    finally:
        for store in stores:
            store.close()
