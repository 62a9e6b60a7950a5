"""The pysyncobj backend of :class:`orion.store.port.Store`.

Everything pysyncobj-specific lives in ``orion/raft/``: this store, the engine
as we run it (``engine.py``), every change to pysyncobj's behaviour
(``patches.py``), the journal it writes through (``journal.py``) and the
membership changes (``membership.py``, ``members_file.py``). The store is
handed the state machine it replicates (``application.py``; Orion's is
``orion/state/entries.py``) and builds none itself. Measured facts that shape
it (0.3.17, three processes on loopback):

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
  (group commit, ``patches.py``).
* Membership changes run on the leader only, one at a time, each waited for
  until committed (``_membership``): pysyncobj itself does not serialize them.
  The leader, not the joiner, decides voter or replica (``admit``), and a
  joining voter holds its elections back until admitted; why and how, and the
  guard against truncated applied entries: ``patches.py``, ``membership.py``.
* pysyncobj makes every command its own log entry and sends an
  ``append_entries`` per command: writes are batched first
  (``orion/store/coalescer.py``),
  flushed by the tick thread on each turn and when a pipe in its poller says
  a write is waiting.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from pysyncobj import FAIL_REASON
from pysyncobj.pipe_notifier import PipeNotifier

from orion.raft.application import Application
from orion.raft.engine import RaftSettings, Replicated, build_engine, hand_over
from orion.raft.journal import RaftJournal
from orion.raft.members_file import MembersFile
from orion.raft.membership import RaftMembership, members_of
from orion.raft.patches import TruncationWatch
from orion.raft.read_barrier import ReadBarrier
from orion.raft.replica import Replica
from orion.store.admission import VOTER, Admission, Role
from orion.store.coalescer import Coalescer
from orion.store.digest import DigestCache
from orion.store.port import LeaderContact, MembershipAction, NoLeader, RaftStatus, StoreError, WriteTimeout

__all__ = ["RaftSettings", "RaftStore"]

M = TypeVar("M")

log = logging.getLogger("orion.raft")

# Failure reasons after which the same command may safely be sent again: it was
# not committed (or, with LEADER_CHANGED, may have been: request ids dedupe it).
_RETRYABLE = {FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED,
              FAIL_REASON.NOT_LEADER, FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME}


class RaftStore(Generic[M]):
    """A node's replica: pysyncobj underneath, the Store protocol on top, the machine handed in."""

    def __init__(self, settings: RaftSettings, partners: list[str], application: Application[M],
                 on_apply_seconds: Callable[[float], None] | None = None) -> None:
        """``application`` makes, restores, snapshots and applies the machine this store
        replicates; ``on_apply_seconds`` is told how long each apply took (the agent's
        metrics; may be set later)."""
        self._settings = settings
        self._app = application
        self._replica = Replica(application)  # the machine readers see (and one a resync rebuilds)
        self._lock = threading.RLock()
        self._applied_cond = threading.Condition(self._lock)
        self._listeners: list[Callable[[int], None]] = []
        self.on_apply_seconds = on_apply_seconds or (lambda _seconds: None)
        self._engine_lock = threading.RLock()  # held while the engine is swapped
        self._membership = RaftMembership(lambda: self._syncobj, self._engine_lock, self.is_leader)
        data = Path(settings.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self._members_file = MembersFile(data, settings.self_addr)
        stored = self._members_file.load()
        if stored is not None and not stored.admitted and not settings.joining:
            raise StoreError(f"{data} holds a join the leader never answered: start with --join to ask again")
        self.restored = stored is not None and stored.admitted
        partners = stored.partners if stored is not None and self.restored else \
            [p for p in partners if p != settings.self_addr]
        self.voter = stored.voter if stored is not None and self.restored else settings.voter
        self.admitted = self.restored or not settings.joining
        self.resyncs = 0
        self._resync_asked = threading.Event()
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # Batched writes: submit() queues, the running engine's tick thread sends the queue as one entry.
        self._coalescer = Coalescer(lambda text, done: self._consumer.apply_command(text, callback=done),
                                    FAIL_REASON.SUCCESS,
                                    batches_read=lambda: application.batches_read(self._replica.machine),
                                    combine=application.combine, results=application.results)
        self._start_engine(partners, gated=not self.admitted)
        self._reads = ReadBarrier(lambda: self._syncobj, self._view_current, self.has_leader)
        self._digests = DigestCache(self.read, snapshot=application.snapshot)
        self._write_members()
        self._stop = threading.Event()
        # Persists the member list and runs engine restarts: pysyncobj's tick thread stops when
        # the thread that built its engine ends, so every restart is built by this long-lived one.
        self._watcher = threading.Thread(target=self._watch_members, name="raft-members", daemon=True)
        self._watcher.start()

    def _start_engine(self, partners: list[str], gated: bool) -> None:
        """Build and start pysyncobj from the journal and snapshot in the data dir."""
        with self._engine_lock:
            self._consumer = Replicated(self._apply, self._dump, self._load)
            self._syncobj = build_engine(self._settings, self.voter, partners, gated, self._consumer)
            self._truncation_watch = TruncationWatch(self._syncobj, self._on_truncation)
            # Woken when a write waits; and each turn, as an answer frees room (coalescer.py).
            self._flush_soon = PipeNotifier(self._syncobj._poller, self._coalescer.flush)
            self._syncobj.addOnTickCallback(self._coalescer.flush)

    # -- replicated side (pysyncobj's thread) -------------------------------------
    def _apply(self, text: str, index: int) -> Any:
        started = time.perf_counter()
        with self._applied_cond:
            result, shown = self._replica.apply(text, index)
            if not shown:
                return result
            self._applied_cond.notify_all()
        for why in self._app.unreadable(result):
            # A newer node wrote it during a rolling upgrade: refused here, never a crash.
            log.error("refusing log entry %d: %s", index, why)
        self.on_apply_seconds(time.perf_counter() - started)
        for fn in list(self._listeners):
            try:
                fn(index)
            except Exception:  # a listener must never break the replica
                log.exception("apply listener failed")
        return result

    def _dump(self) -> dict:
        with self._lock:
            return self._replica.dump()

    def _load(self, data: dict) -> None:
        with self._applied_cond:
            self._replica.load(data)
            self._applied_cond.notify_all()

    # -- Store protocol -------------------------------------------------------------
    def submit(self, command: Any, timeout: float) -> Any:
        text = self._app.encode(command)
        deadline = time.monotonic() + timeout
        last = "no leader"
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if last == "no leader":
                    raise NoLeader("no Raft leader: the cluster has no quorum (or is electing); "
                                   "writes are refused until a majority of nodes is reachable")
                raise WriteTimeout(f"write not committed within {timeout:.1f}s ({last}); it may still apply")
            if not self.has_leader() or self._syncobj.handing_over:  # a handover takes no new writes
                time.sleep(min(0.02, remaining))
                continue
            done = threading.Event()
            box: dict[str, Any] = {}

            def callback(result: Any, error: int, box: dict = box, done: threading.Event = done) -> None:
                box["result"], box["error"] = result, error
                done.set()

            if self._coalescer.add(text, callback):
                self._flush_soon.notify()
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

    def read(self, fn: Callable[[M], Any]) -> tuple[Any, int]:
        with self._lock:
            return fn(self._replica.machine), self._replica.applied

    def barrier(self, timeout: float) -> None:
        """Linearizable read point (Raft's ReadIndex, ``patches.py`` rule 9; ``read_barrier.py``),
        skipped while a node of a release without it may lead (``reads_confirmed``)."""
        if self.read(self._app.reads_confirmed)[0]:
            self._reads.wait(timeout)

    def leader_contact(self) -> LeaderContact:
        return self._reads.contact()

    def _view_current(self, timeout: float) -> bool:
        """Readers see the machine the engine applies to (not the old view kept during a resync)."""
        with self._applied_cond:
            return self._applied_cond.wait_for(lambda: self._replica.rebuilding is None, timeout)

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

    def ready(self) -> bool:
        """A reachable leader with a quorum, and caught up: pysyncobj's ``isReady`` (once per
        engine) says this replica applied up to the commit index the leader first sent it."""
        return self.has_leader() and self._syncobj.isReady()

    @property
    def journal(self) -> RaftJournal:
        """The running engine's journal (``journal.py``): its sync points and fsync count."""
        return self._syncobj.journal

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
            applied_index=self._replica.applied,
            members=tuple(members),
            extra={"has_quorum": sync.hasQuorum, "voter": self.voter, "admitted": self.admitted,
                   "resyncs": self.resyncs,
                   "connected": sorted(n.address for n in sync.otherNodes if sync.isNodeConnected(n)),
                   "durability": self._settings.durability, "fsyncs": sync.journal.fsyncs,
                   "batched_writes": {"entries": self._coalescer.entries, "commands": self._coalescer.commands},
                   "read_index": {"rounds": sync.reads.leader.rounds_started,  # patches.py rule 9
                                  "asked_leader": sync.reads.forwarded.requests_sent}},
        )

    def wait_applied(self, index: int, timeout: float) -> bool:
        with self._applied_cond:
            return self._applied_cond.wait_for(lambda: self._replica.applied >= index, timeout)

    def add_listener(self, fn: Callable[[int], None]) -> None:
        self._listeners.append(fn)

    def digest(self) -> tuple[str, int]:
        return self._digests.get()

    # -- membership -------------------------------------------------------------------
    def members(self) -> list[str]:
        return members_of(self._syncobj)

    def admit(self, addr: str, voter_cap: int, timeout: float) -> Admission:
        """On the leader: voter or replica for ``addr`` (``membership.py``)."""
        return self._membership.admit(addr, voter_cap, timeout)

    def change_membership(self, action: MembershipAction, addr: str, timeout: float) -> None:
        """On the leader: add or remove a voter, waited for until committed."""
        self._membership.change(action, addr, timeout)

    def join_as(self, role: Role, members: list[str]) -> None:
        """The leader's answer to this joining node: a voter opens its election gate (the
        leader's heartbeats re-arm an ordinary timeout); a replica restarts its engine as a
        non-voting node dialling ``members`` (the leader's voters). Either way this node is
        admitted, and a restart will say so."""
        if role == VOTER:
            self._syncobj.conf.open()
        elif self.voter:
            done = threading.Event()
            failed: list[BaseException] = []

            def become_replica() -> None:
                try:
                    partners = [m for m in members if m != self._settings.self_addr]
                    self._restart_engine(voter=False, partners=partners, keep_view=False)
                except BaseException as exc:
                    failed.append(exc)
                    raise
                finally:
                    done.set()

            self._jobs.put(become_replica)
            done.wait()
            if failed:
                raise StoreError(f"could not restart as a non-voting replica: {failed[0]}")
        self.admitted = True
        self._write_members()

    # -- engine restarts (on the raft-members thread) --------------------------------
    def _on_truncation(self, from_index: int, last_applied: int) -> None:
        """pysyncobj's tick thread: it truncated applied entries. Record; the watcher resyncs."""
        log.error("Raft truncated entries %d..%d that this replica had applied: rebuilding its "
                  "state machine from the journal", from_index, last_applied)
        if not self._resync_asked.is_set():  # one restart covers every record before it
            self._resync_asked.set()
            self._jobs.put(self._resync)

    def _resync(self) -> None:
        self._resync_asked.clear()
        self.resyncs += 1
        self._restart_engine(voter=self.voter, partners=self.members(), keep_view=True)

    def _restart_engine(self, voter: bool, partners: list[str], keep_view: bool) -> None:
        """Stop pysyncobj and start it again from the journal and snapshot on disk: the machine
        is rebuilt from what the log holds now. ``keep_view``: readers see the old machine until
        the new one has caught up (a reconciler must never see an empty state)."""
        with self._engine_lock:
            self._truncation_watch.close()
            self._syncobj.destroy_synchronous()
            self._coalescer.abandon(FAIL_REASON.DISCARDED)  # its writers retry on the new engine
            with self._applied_cond:
                self._replica.restart(keep_view)
            self.voter = voter
            self._start_engine(partners, gated=False)

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
        sync.handing_over = True  # no new writes meanwhile (patches.py, rule 2): the target catches up
        try:
            return hand_over(sync, deadline)
        finally:
            sync.handing_over = False

    @staticmethod
    def has_state(data_dir: str) -> bool:
        """True when this data dir belongs to a cluster that admitted it (restart, not first join)."""
        return MembersFile.admitted(data_dir)

    def _write_members(self) -> None:
        # fsync: rare (membership changes), and a torn file would orphan the node.
        self._members_file.save(self.members(), self.voter, self.admitted,
                                fsync=self._settings.durability == "fsync")

    def _watch_members(self) -> None:
        """Persist the member list when it changes, so a restart dials the right peers; run
        the engine restarts asked for (a resync, a joiner turned replica)."""
        known = self.members()
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.5)
            except queue.Empty:
                job = None
            try:
                if job is not None:
                    job()
                with self._applied_cond:  # a rebuild whose log no longer reaches the old index
                    if self._replica.rebuilding is not None and self._syncobj.isReady():
                        self._replica.swap_rebuilt(True)
                current = self.members()
                if current != known:
                    known = current
                    self._write_members()
                    log.info("raft members now %s", ", ".join(current))
            except Exception:  # this thread owns the engine: it must outlive any one failure
                log.exception("raft-members pass failed")

    def close(self) -> None:
        with self._engine_lock:
            self._truncation_watch.close()
            if self._syncobj.tick_thread_alive():
                self._syncobj.destroy_synchronous()
        self._stop.set()
