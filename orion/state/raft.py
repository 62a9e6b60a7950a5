"""The pysyncobj backend of :class:`orion.state.store.Store`.

Everything pysyncobj-specific lives here and in the journal it writes through
(``journal.py``, ``group_commit.py``). Measured facts that shape it (0.3.17,
three processes on loopback):

* ``appendEntriesUseBatch`` (the default) pins each write to the 100 ms append
  period; off, a write commits in well under a millisecond. It is off.
* Log compaction forks a process that has threads: ``useFork=False``.
* A command sent to a leader that then dies is never answered: every write has
  a deadline, is retried within it, and carries a request id so that a retry
  which races the first attempt is applied once (the state machine dedupes).
* A leader cut off from its quorum keeps believing it leads for
  ``leaderFallbackTimeout`` (30 s by default); we shorten that so a minority
  refuses writes within seconds instead of timing every client out.
* Every Raft frame is unpickled: the transport is encrypted and authenticated
  with the shared secret (``password``), and the agent refuses to run without
  one except on loopback.
* A leader that stops on purpose hands over first (``transferLeadership``,
  Raft's TimeoutNow): the most caught-up follower starts its election at once,
  so nobody waits out an election timeout. That call touches the transport,
  which only the tick thread may, so it is queued onto that thread.
* pysyncobj's journal is never synced: ours (``journal.py``) takes its place
  and, with ``durability="fsync"``, is fdatasync'd once per pass of pysyncobj's
  loop, before the leader counts its entries and before a follower answers
  (``group_commit.py``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObjConf, SyncObjConsumer, replicated

from orion.state.commands import Command, encode
from orion.state.group_commit import GroupCommitSyncObj
from orion.state.journal import RaftJournal
from orion.state.machine import StateMachine
from orion.state.store import MembershipAction, NoLeader, RaftStatus, StoreError, WriteTimeout

log = logging.getLogger("orion.raft")

# Failure reasons after which the same command may safely be sent again: it was
# not committed (or, with LEADER_CHANGED, may have been: request ids dedupe it).
_RETRYABLE = {FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED,
              FAIL_REASON.NOT_LEADER, FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME}


@dataclass(frozen=True)
class RaftSettings:
    """What the backend needs from the agent's config."""

    self_addr: str
    bind_addr: str
    data_dir: str
    secret: str | None
    # The agent's raft_election_min/max and raft_compaction_entries (reasons in orion/defaults.py).
    election_min: float
    election_max: float
    compaction_entries: int
    # "fsync": the journal is on disk before an entry counts toward a commit; "none": never
    # synced (the agent's durability setting; what each promises is in orion/defaults.py).
    durability: str
    # False: a non-voting replica (pysyncobj "readonly" node) — it receives the log and
    # forwards writes, but neither votes nor counts for quorum (beyond the voter cap).
    voter: bool = True


class _Replicated(SyncObjConsumer):
    """The one replicated method. Snapshots are the machine's plain-data form,
    not a pickle of our classes, so a newer node can restore an older dump."""

    def __init__(self, on_apply: Callable[[str], dict], dump: Callable[[], dict],
                 load: Callable[[dict], None]) -> None:
        super().__init__()
        self._on_apply, self._dump, self._load = on_apply, dump, load

    @replicated
    def apply_command(self, text: str) -> dict:
        return self._on_apply(text)

    def _serialize(self) -> dict:
        return self._dump()

    def _deserialize(self, data: dict) -> None:
        self._load(data)


class _SyncObj(GroupCommitSyncObj):
    """pysyncobj's engine with our journal (``group_commit.py``), plus calls queued from other
    threads that run on its tick thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._tick_calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        super().__init__(*args, **kwargs)

    def call_on_tick(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the tick thread before its next tick (within ``autoTickPeriod``)."""
        self._tick_calls.put(fn)

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802, N803 - pysyncobj's names
        while True:
            try:
                fn = self._tick_calls.get_nowait()
            except queue.Empty:
                break
            try:
                fn()
            except Exception:  # a queued call must never stop the engine
                log.exception("call on the Raft tick thread failed")
        super()._onTick(timeToWait)


class RaftStore:
    """A node's replica: pysyncobj underneath, the Store protocol on top."""

    def __init__(self, settings: RaftSettings, partners: list[str],
                 on_apply_seconds: Callable[[float], None] | None = None) -> None:
        """``on_apply_seconds`` is told how long each apply took (the agent's metrics)."""
        self._settings = settings
        self._machine = StateMachine()
        self._lock = threading.RLock()
        self._applied_cond = threading.Condition(self._lock)
        self._applied = 0
        self._listeners: list[Callable[[int], None]] = []
        self._on_apply_seconds = on_apply_seconds or (lambda _seconds: None)
        self._consumer = _Replicated(self._apply, self._dump, self._load)
        data = Path(settings.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self._members_file = data / "members.json"
        stored = self._read_members()
        self.restored = stored is not None
        partners = stored if stored is not None else [p for p in partners if p != settings.self_addr]
        self.voter = self._stored_voter() if stored is not None else settings.voter
        self.journal = RaftJournal(str(data / "raft.journal"), str(data / "raft.dump"),
                                   fsync=settings.durability == "fsync")
        conf = SyncObjConf(
            password=settings.secret or None,
            appendEntriesUseBatch=False,
            # Heartbeat period: pysyncobj requires it below a third of the election timeout.
            appendEntriesPeriod=min(0.1, settings.election_min / 4),
            useFork=False,
            dynamicMembershipChange=True,
            journalFile=None,  # the journal is self.journal (GroupCommitSyncObj installs it)
            fullDumpFile=str(data / "raft.dump"),
            raftMinTimeout=settings.election_min,
            raftMaxTimeout=settings.election_max,
            leaderFallbackTimeout=max(3.0, 3 * settings.election_max),
            logCompactionMinEntries=settings.compaction_entries,
            bindAddress=settings.bind_addr,
            connectionRetryTime=1.0,
            commandsWaitLeader=True,
        )
        self._syncobj = _SyncObj(self.journal, settings.self_addr if self.voter else None, partners, conf,
                                 [self._consumer])
        self._write_members()
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch_members, name="raft-members", daemon=True)
        self._watcher.start()

    # -- replicated side (pysyncobj's thread) -------------------------------------
    def _apply(self, text: str) -> dict:
        index = self._syncobj.raftLastApplied + 1
        started = time.perf_counter()
        with self._applied_cond:
            result = self._machine.apply(text, index)  # the machine decodes (and refuses what it cannot)
            self._applied = index
            self._applied_cond.notify_all()
        if result.get("unreadable"):
            # A newer node wrote it during a rolling upgrade: refused here, never a crash.
            log.error("refusing log entry %d: %s", index, result["error"])
        self._on_apply_seconds(time.perf_counter() - started)
        for fn in list(self._listeners):
            try:
                fn(index)
            except Exception:  # a listener must never break the replica
                log.exception("apply listener failed")
        return result

    def _dump(self) -> dict:
        with self._lock:
            return {"machine": self._machine.snapshot(), "applied": self._applied}

    def _load(self, data: dict) -> None:
        with self._applied_cond:
            self._machine = StateMachine.restore(data["machine"])
            self._applied = int(data.get("applied", 0))
            self._applied_cond.notify_all()

    # -- Store protocol -------------------------------------------------------------
    def submit(self, command: Command, timeout: float) -> Any:
        text = encode(command)
        deadline = time.monotonic() + timeout
        last = "no leader"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if last == "no leader":
                    raise NoLeader("no Raft leader: the cluster has no quorum (or is electing); "
                                   "writes are refused until a majority of nodes is reachable")
                raise WriteTimeout(f"write not committed within {timeout:.1f}s ({last}); it may still apply")
            if not self.has_leader():
                time.sleep(min(0.05, remaining))
                continue
            done = threading.Event()
            box: dict[str, Any] = {}

            def callback(result: Any, error: int, box: dict = box, done: threading.Event = done) -> None:
                box["result"], box["error"] = result, error
                done.set()

            self._consumer.apply_command(text, callback=callback)
            if not done.wait(remaining):
                last = "no answer from the leader"
                continue
            if box["error"] == FAIL_REASON.SUCCESS:
                return box["result"]
            if box["error"] in _RETRYABLE:
                last = f"leader changed (reason {box['error']})"
                time.sleep(0.02)
                continue
            raise StoreError(f"write refused by Raft (reason {box['error']})")

    def read(self, fn: Callable[[StateMachine], Any]) -> tuple[Any, int]:
        with self._lock:
            return fn(self._machine), self._applied

    def has_leader(self) -> bool:
        """A leader this node can actually reach, and that can reach a majority.

        pysyncobj keeps a follower's last leader while it has no connections at
        all (it starts no election then), so "a leader is set" is not enough.
        """
        sync = self._syncobj
        leader = sync._getLeader()
        if leader is None:
            return False
        if sync.selfNode is not None and leader == sync.selfNode:
            return sync.hasQuorum
        return any(n == leader and sync.isNodeConnected(n) for n in sync.otherNodes)

    def is_leader(self) -> bool:
        leader = self._syncobj._getLeader()
        return leader is not None and self.voter and leader == self._syncobj.selfNode

    def status(self) -> RaftStatus:
        sync = self._syncobj
        leader = sync._getLeader()
        members = self.members()
        return RaftStatus(
            self_addr=self._settings.self_addr,
            leader=leader.address if leader is not None else None,
            is_leader=self.is_leader(),
            term=sync.raftCurrentTerm,
            commit_index=sync.raftCommitIndex,
            applied_index=self._applied,
            members=tuple(members),
            extra={"has_quorum": sync.hasQuorum, "voter": self.voter,
                   "connected": sorted(n.address for n in sync.otherNodes if sync.isNodeConnected(n)),
                   "durability": self._settings.durability, "fsyncs": self.journal.fsyncs},
        )

    def wait_applied(self, index: int, timeout: float) -> bool:
        with self._applied_cond:
            return self._applied_cond.wait_for(lambda: self._applied >= index, timeout)

    def add_listener(self, fn: Callable[[int], None]) -> None:
        self._listeners.append(fn)

    # -- membership -------------------------------------------------------------------
    def members(self) -> list[str]:
        sync = self._syncobj
        own = [sync.selfNode.address] if sync.selfNode is not None else []
        return sorted(own + [n.address for n in sync.otherNodes])

    def change_membership(self, action: MembershipAction, addr: str, timeout: float) -> None:
        """Add or remove a voter; any member may ask (pysyncobj forwards to the leader)."""
        if action == "add" and addr in self.members():
            return
        if action == "remove" and addr not in self.members():
            return
        done = threading.Event()
        box: dict[str, Any] = {}

        def callback(result: Any, error: int) -> None:
            box["error"] = error
            done.set()

        fn = self._syncobj.addNodeToCluster if action == "add" else self._syncobj.removeNodeFromCluster
        fn(addr, callback=callback)
        if not done.wait(timeout):
            raise WriteTimeout(f"membership change ({action} {addr}) not committed within {timeout:.1f}s")
        if box["error"] != FAIL_REASON.SUCCESS:
            raise StoreError(f"membership change ({action} {addr}) refused (reason {box['error']})")

    def transfer_leadership(self, timeout: float | None = None) -> str:
        """On the leader: hand leadership to the most caught-up follower and wait until
        another node leads; say what happened. Elsewhere: nothing to do.

        Bounded by one maximal election timeout (default): past that, the ordinary
        election that follows our departure would have been as quick.
        """
        if not self.is_leader():
            return "not the leader: no leadership to hand over"
        sync = self._syncobj
        deadline = time.monotonic() + (self._settings.election_max if timeout is None else timeout)
        last = "no answer"
        while time.monotonic() < deadline:
            done = threading.Event()
            box: dict[str, Any] = {}

            def callback(result: Any, error: int, box: dict = box, done: threading.Event = done) -> None:
                box["error"] = error
                done.set()

            sync.call_on_tick(lambda callback=callback: sync.transferLeadership(callback=callback))
            if not done.wait(max(0.0, deadline - time.monotonic())):
                break
            if box["error"] == FAIL_REASON.SUCCESS:
                while time.monotonic() < deadline:
                    leader = sync._getLeader()
                    if leader is not None and leader != sync.selfNode:
                        return f"leadership handed to {leader.address}"
                    time.sleep(0.005)
                return "leadership transfer sent, but no other leader within the timeout"
            if box["error"] == FAIL_REASON.NOT_LEADER:
                return "not the leader any more: no leadership to hand over"
            # REQUEST_DENIED: no follower connected, or none caught up to the last entry yet.
            last = f"refused (reason {box['error']}): no caught-up follower"
            time.sleep(0.02)
        return f"leadership not handed over ({last}); an election follows"

    @staticmethod
    def has_state(data_dir: str) -> bool:
        """True when this data dir already belongs to a cluster (restart, not first join)."""
        return (Path(data_dir) / "members.json").exists()

    def _read_members(self) -> list[str] | None:
        try:
            members = json.loads(self._members_file.read_text())["members"]
        except (FileNotFoundError, ValueError, KeyError):
            return None
        return [m for m in members if m != self._settings.self_addr]

    def _stored_voter(self) -> bool:
        try:
            return bool(json.loads(self._members_file.read_text()).get("voter", True))
        except (FileNotFoundError, ValueError):
            return True

    def _write_members(self) -> None:
        tmp = self._members_file.with_suffix(".tmp")
        with open(tmp, "w") as f:
            f.write(json.dumps({"members": self.members(), "voter": self.voter}))
            if self._settings.durability == "fsync":  # rare (membership changes): a torn file would orphan the node
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self._members_file)

    def _watch_members(self) -> None:
        """Persist the member list when it changes, so a restart dials the right peers."""
        known = self.members()
        while not self._stop.wait(0.5):
            current = self.members()
            if current != known:
                known = current
                self._write_members()
                log.info("raft members now %s", ", ".join(current))

    def close(self) -> None:
        self._stop.set()
        self._syncobj.destroy()
