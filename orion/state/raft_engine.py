"""pysyncobj 0.3.17 as Orion runs it: its configuration, the engine, the consumer, two guards.

Everything here is worn on the outside of pysyncobj: it is neither vendored
nor patched. :func:`build_engine` makes one engine from :class:`RaftSettings`;
``RaftStore`` (``raft.py``) may build several in a row (a joiner turned
replica, a resync), each from the journal and snapshot on disk.

**No elections before admission** (:class:`ElectionGate`). A joining voter must
run before the leader admits it: adding the second voter to a one-node cluster
commits only once the newcomer acknowledges the entry. But a pysyncobj node
with a Raft address and partners starts its election timer at once
(``syncobj.py:162``) and, as soon as any connection is up, campaigns with a
higher term whenever it hears no leader (``:634-650``); an unadmitted node
hears none (members refuse its connections, ``transport.py:355-358``). The
issue's hundred-agent start shows what that costs: nodes outside the
configuration at terms up to 251, each of them disrupting the cluster once it
is let in. pysyncobj has no pre-vote. Its election timeout, though, is drawn
from its configuration object each time it is armed (``__generateRaftTimeout``,
``:1108-1111``: at start, on every granted vote and every ``append_entries``,
``:939``, ``:952``).
So the joiner's configuration answers "never" (a deadline 30 years away) until
the leader's answer says it is admitted; then the next heartbeat of the leader,
which by then sends them to it, re-arms an ordinary timeout. A node outside the
configuration never campaigns and never raises a term; it still follows a
leader and votes, as Raft's non-voting catch-up phase would. The alternatives
were weighed: starting the joiner only after admission deadlocks the 1 → 2
step; starting it read-only cannot acknowledge as the new voter, and
pysyncobj cannot promote a read-only node in place.

**No wait when alone.** A voter that is the only one in its configuration (a
fresh bootstrap, a one-node cluster restarting) would still sit out a whole
randomized timeout (0.4-1.4 s) before it campaigns and wins with its own vote:
most of a fresh node's start (issue #14). The timeout's value never decides
Raft's safety — terms and votes do; randomizing it only keeps several
candidates from splitting the vote, and a voter alone has no rival. So while
the engine's configuration holds no other voter the gate answers "now"; once
one is added, the very next draw is an ordinary randomized one again. A node
with peers, or gated, never takes this path.

**Truncation of applied entries** (:class:`TruncationWatch`). A follower
handling ``append_entries`` deletes everything after ``prevLogIdx`` whenever
it holds more, not only on a conflicting term (``:991-1004``), and logs
``CRITICAL truncating already-applied log entries`` when that reaches entries
its state machine already applied. ``raftLastApplied`` is not wound back, so
they are not applied again. A duplicate or reordered ``append_entries`` of the
same leader re-sends the same entries: harmless. But when the entries that
replace them differ — a configuration that let two leaders commit (unserialized
membership changes: pysyncobj never sets ``__changeClusterIDx``, ``:1356-1369``,
so it does not enforce one change at a time; and nodes campaigning from a
member list nobody agreed to) — the machine has applied commands the cluster
does not have: it has diverged, and nothing in pysyncobj notices. The watch
hears the record (routed by the tick thread that logged it) and the store
rebuilds its machine from the journal and snapshot as they are now
(``RaftStore._resync``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, SyncObjConsumer, replicated

from orion.defaults import RAFT_CONNECT_RETRY
from orion.state.group_commit import GroupCommitSyncObj
from orion.state.journal import RaftJournal

log = logging.getLogger("orion.raft")

# An election deadline no process lives to see (seconds).
_NEVER = 1e9
# The record pysyncobj logs (syncobj.py:999-1003); tests/unit/state/test_raft_engine.py
# checks that the installed version still writes it.
TRUNCATION_MESSAGE = "truncating already-applied log entries"


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
    # True for a node joining a cluster: a voter-to-be that holds its elections back until
    # the leader's answer admits it (ElectionGate), or restarts as a replica.
    joining: bool = False


class Replicated(SyncObjConsumer):
    """The one replicated method. Snapshots are the machine's plain-data form,
    not a pickle of our classes, so a newer node can restore an older dump."""

    def __init__(self, on_apply: Callable[[str, int], dict], dump: Callable[[], dict],
                 load: Callable[[dict], None]) -> None:
        super().__init__()
        self._on_apply, self._dump, self._load = on_apply, dump, load

    @replicated
    def apply_command(self, text: str) -> dict:
        # The index comes from the engine applying it (after a restart, the new one).
        return self._on_apply(text, self._syncObj.raftLastApplied + 1)

    def _serialize(self) -> dict:
        return self._dump()

    def _deserialize(self, data: dict) -> None:
        self._load(data)


class Engine(GroupCommitSyncObj):
    """pysyncobj's engine with our journal (``journal.py``, synced once per loop pass by
    ``group_commit.py``), plus calls queued from other threads that run on its tick thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._tick_calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # Set while this leader hands leadership over: it takes no new commands (group_commit.py).
        self.handing_over = False
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


def build_engine(settings: RaftSettings, voter: bool, partners: list[str], gated: bool,
                 consumer: Replicated) -> Engine:
    """Start one engine on the data dir's journal and snapshot. ``gated``: no elections
    until ``engine.conf.open()`` (a joiner not admitted yet)."""
    data = Path(settings.data_dir)
    # Alone: a voter whose configuration holds no other voter (a fresh bootstrap, a one-node
    # cluster restarting) campaigns at once instead of after a randomized timeout (see below).
    alone_at_start = voter and not [p for p in partners if p != settings.self_addr]
    conf = ElectionGate(
        closed=gated,
        alone=lambda: alone_at_start,
        password=settings.secret or None,
        appendEntriesUseBatch=False,
        # Heartbeat period: pysyncobj requires it below a third of the election timeout.
        appendEntriesPeriod=min(0.1, settings.election_min / 4),
        useFork=False,
        dynamicMembershipChange=True,
        journalFile=None,  # ours, below (GroupCommitSyncObj installs it)
        fullDumpFile=str(data / "raft.dump"),
        raftMinTimeout=settings.election_min,
        raftMaxTimeout=settings.election_max,
        leaderFallbackTimeout=max(3.0, 3 * settings.election_max),
        logCompactionMinEntries=settings.compaction_entries,
        bindAddress=settings.bind_addr,
        connectionRetryTime=RAFT_CONNECT_RETRY,
        commandsWaitLeader=True,
    )
    journal = RaftJournal(str(data / "raft.journal"), str(data / "raft.dump"),
                          fsync=settings.durability == "fsync")
    engine = Engine(journal, settings.self_addr if voter else None, partners, conf, [consumer])
    # From here on the configuration itself says: a voter added later (or a removal that
    # leaves this one alone) changes the next timeout drawn.
    conf.watch_alone(lambda: engine.selfNode is not None and not engine.otherNodes)
    return engine


class ElectionGate(SyncObjConf):
    """pysyncobj's configuration, whose election timeout is "never" while the gate is closed,
    and "now" while this voter is alone in its configuration (``alone``)."""

    def __init__(self, closed: bool, alone: Callable[[], bool] | None = None, **kwargs: Any) -> None:
        self._closed = False
        self._alone: Callable[[], bool] = lambda: False
        super().__init__(**kwargs)
        self._closed = closed
        if alone is not None:
            self._alone = alone

    @property
    def closed(self) -> bool:
        return self._closed

    def open(self) -> None:
        """Admitted: the next timeout pysyncobj arms is an ordinary one."""
        self._closed = False

    def watch_alone(self, alone: Callable[[], bool]) -> None:
        """From now on ask ``alone`` (read on the tick thread, at each draw) whether this
        voter is the only one in its configuration."""
        self._alone = alone

    def _override(self) -> float | None:
        if self._closed:
            return _NEVER
        if self._alone():
            return 0.0
        return None

    @property
    def raftMinTimeout(self) -> float:  # noqa: N802 - pysyncobj's name
        override = self._override()
        return self._min_timeout if override is None else override

    @raftMinTimeout.setter
    def raftMinTimeout(self, value: float) -> None:  # noqa: N802
        self._min_timeout = value

    @property
    def raftMaxTimeout(self) -> float:  # noqa: N802
        override = self._override()
        return self._max_timeout if override is None else override

    @raftMaxTimeout.setter
    def raftMaxTimeout(self, value: float) -> None:  # noqa: N802
        self._max_timeout = value

    def validate(self) -> None:
        """pysyncobj's own checks, against the ordinary timeouts."""
        closed, alone = self._closed, self._alone
        self._closed, self._alone = False, lambda: False
        try:
            super().validate()
        finally:
            self._closed, self._alone = closed, alone


class _Router(logging.Filter):
    """One filter on pysyncobj's logger: hands each truncation record to the watch of the
    engine whose tick thread wrote it (several engines may share a process, in tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._by_thread: dict[int, Callable[[int, int], None]] = {}

    def route(self, thread: int, fn: Callable[[int, int], None] | None) -> None:
        with self._lock:
            if fn is None:
                self._by_thread.pop(thread, None)
            else:
                self._by_thread[thread] = fn

    def filter(self, record: logging.LogRecord) -> bool:
        if TRUNCATION_MESSAGE in str(record.msg):
            with self._lock:
                fn = self._by_thread.get(record.thread or 0)
            args = record.args if isinstance(record.args, tuple) else ()
            if fn is not None and len(args) >= 2:
                fn(int(args[0]), int(args[1]))
        return True


_ROUTER = _Router()
logging.getLogger("pysyncobj.syncobj").addFilter(_ROUTER)


class TruncationWatch:
    """Calls ``on_truncation(from_index, last_applied)`` when this engine truncates applied entries.

    It runs on the engine's tick thread and must only record: the store acts on another thread.
    """

    def __init__(self, engine: SyncObj, on_truncation: Callable[[int, int], None]) -> None:
        self._on_truncation = on_truncation
        self._thread: int | None = None
        self._engine = engine
        engine.addOnTickCallback(self._learn_thread)

    def _learn_thread(self) -> None:
        """An on-tick callback: the first tick names the thread whose records are ours."""
        if self._thread is None:
            self._thread = threading.get_ident()
            _ROUTER.route(self._thread, self._on_truncation)

    def close(self) -> None:
        self._engine.removeOnTickCallback(self._learn_thread)
        if self._thread is not None:
            _ROUTER.route(self._thread, None)


def hand_over(sync: Engine, deadline: float) -> str:
    """Ask ``sync`` (the leader) to pass leadership to its most caught-up follower (Raft's
    TimeoutNow) until one leads or ``deadline`` (monotonic) passes; say what happened.
    pysyncobj refuses while no follower has every entry, so it is asked again meanwhile."""
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
