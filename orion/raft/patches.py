"""Every change Orion makes to pysyncobj 0.3.17's behaviour, in one place.

pysyncobj is neither vendored nor forked: it is configured, subclassed and its
transport wrapped, here and nowhere else. Each rule below names the upstream
line it changes (``pysyncobj/syncobj.py`` unless said otherwise, as installed)
and is proven by a test that drives the exact message sequence through real
pysyncobj engines on an in-memory network (``tests/unit/raft/test_patches.py``);
a test there also fails if an upgrade moves the code a rule relies on.

1. **next index never wound back** (:class:`PatchedTransport`). On a success the
   leader sets ``nextIndex`` to the answer's index (``:1079-1082``) even when it
   has sent beyond it since: with two ``append_entries`` in flight, the answer
   to the first makes it send the second's entries again, and a follower that
   applied them meanwhile truncates applied entries (``:991-1004``, rule 7).
   Under 16 writing clients that was 1-7 resyncs a run and a p99 of 0.7-1 s
   (bench/write_path.py). etcd's raft never lowers Next on a success either
   (``Progress.MaybeUpdate``); a refusal (``reset``) still resets it.
2. **no forwarded command during a handover** (:class:`PatchedTransport`). While
   the leader hands leadership over (``Engine.handing_over``), a command a
   follower forwards (``:1037``) is answered "not leader", pysyncobj's own
   answer on a non-leader (``:566-572``; the follower retries): Raft's transfer
   stops taking client requests, so the target catches up and wins at once.
3. **our journal in pysyncobj's place** (:meth:`Engine.__setattr__`). pysyncobj
   builds its log in one line, ``self.__raftLog = createJournal(...)``
   (``:166``); with ``journalFile=None`` that is a ``MemoryJournal``, replaced as
   it is assigned by our :class:`~orion.raft.journal.RaftJournal`, so its own
   start-up (the first NO_OP, term and vote restored, ``:167-176``) runs on ours.
4. **acknowledgements after the sync that covers them** (group commit:
   :meth:`Engine._group_commit`, :class:`PatchedTransport`, ``ack_queue.py``).
   pysyncobj appends in three places — the leader per command (``:528``, sent
   at once, ``:540``), a new leader's NO_OP (``:1227``), a follower handling
   ``append_entries`` (``:1006``), which answers at once (``:1019``) — and never
   syncs. The journal is synced (if anything was appended) at the start of
   ``_onTick``, before the leader counts itself (``count = 1``, ``:660``), and in
   an on-tick callback run just before pysyncobj polls (``:703-706``), so the
   leader's sync overlaps its followers'. A follower's answers wait in an
   ``AckQueue`` while the journal has unsynced bytes and leave, in order, right
   after that sync. The leader sends before its own sync, which Raft allows
   (thesis §10.2.1): only counting itself has to wait. One fdatasync thus
   covers every entry of a pass, whatever the number of clients.
5. **thinned idle heartbeats to non-voting replicas** (:class:`PatchedTransport`,
   ``replica_heartbeats.py``). The leader sends ``append_entries`` to every
   replica each ``appendEntriesPeriod`` (``:1258``); an empty one that carries
   no news goes at most once per ``REPLICA_HEARTBEAT``.
6. **the election gate: never, or now** (:class:`ElectionGate`). pysyncobj draws
   each election timeout from its configuration when it arms it
   (``__generateRaftTimeout``, ``:1108-1111``: at start ``:162``, on a
   campaign ``:636``, on every granted vote and ``append_entries``, ``:939``,
   ``:952``). A joiner not yet admitted answers "never": outside the
   configuration it must not campaign (``:634-650``) and raise terms (pysyncobj
   has no pre-vote). A voter alone in its configuration answers "now": nobody
   can split its vote, so waiting 0.4-1.4 s buys nothing.
7. **the truncation watch** (:class:`TruncationWatch`). A follower deletes
   everything after ``prevLogIdx`` whenever it holds more, not only on a term
   conflict, and only logs ``CRITICAL`` when that reaches applied entries
   (``:991-1004``; ``raftLastApplied`` is not wound back). The watch hears that
   record on the tick thread that wrote it; the store then rebuilds its machine
   from the journal (``store.py``, ``_resync``).
8. **calls run on the tick thread** (:meth:`Engine.call_on_tick`). Only the
   tick thread may touch the transport (``transferLeadership`` does): calls
   queued from other threads run at the start of its next ``_onTick`` (``:611``).
9. **socket.inet_ntop given back** (below the imports). ``pysyncobj/win_inet_pton.py``
   (imported by ``tcp_connection.py:8``) puts a Windows-only ``inet_ntop`` into the
   ``socket`` module on every platform (its guard covers ``inet_pton`` only), so in an
   agent every later ``socket.inet_ntop`` raises: pyroute2 decodes no address and the
   overlay's datapath reads no route. The C function is put back.
"""

from __future__ import annotations

import _socket
import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj.transport import TCPTransport

from orion.defaults import REPLICA_HEARTBEAT
from orion.raft.ack_queue import ACK, AckQueue, plain_success
from orion.raft.journal import RaftJournal
from orion.raft.replica_heartbeats import ReplicaHeartbeats

log = logging.getLogger("orion.raft")

socket.inet_ntop = _socket.inet_ntop  # rule 9

# Rule 6: an election deadline no process lives to see (seconds).
NEVER = 1e9
# Rule 7: the record pysyncobj logs (syncobj.py:999-1003); tests/unit/raft/test_patches.py
# checks that the installed version still writes it.
TRUNCATION_MESSAGE = "truncating already-applied log entries"


# -- rules 1, 2, 4, 5: the transport --------------------------------------------------
class PatchedTransport:
    """A mixin over a pysyncobj transport (TCP in the agent, in-memory in the tests).

    Received: a forwarded command during a handover is refused (rule 2); a success never
    winds the leader's next index back (rule 1). Sent: an answer waits for the sync that
    covers it (rule 4); an idle heartbeat to a replica is thinned (rule 5).
    """

    _syncObj: Any
    _readonlyNodes: set[Any]

    def __init__(self, syncObj: Engine, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803 - pysyncobj's
        self._journal = syncObj.journal
        self._acks = AckQueue()
        self.replica_heartbeats = ReplicaHeartbeats(REPLICA_HEARTBEAT)
        super().__init__(syncObj, selfNode, otherNodes)  # type: ignore[call-arg]

    def setOnMessageReceivedCallback(self, callback: Any) -> None:  # noqa: N802 - pysyncobj's name
        sync = self._syncObj

        def received(node: Any, message: Any) -> None:
            if not isinstance(message, dict):
                callback(node, message)
            elif getattr(sync, "handing_over", False) and message.get("type") == "apply_command" \
                    and "request_id" in message:  # rule 2
                self.send(node, {"type": "apply_command_response", "request_id": message["request_id"],
                                 "error": FAIL_REASON.NOT_LEADER})
            elif message.get("type") == ACK and plain_success(message):  # rule 1
                next_index = sync._SyncObj__raftNextIndex
                sent_up_to = next_index.get(node)
                callback(node, message)
                if sent_up_to is not None and next_index.get(node, sent_up_to) < sent_up_to:
                    next_index[node] = sent_up_to
            else:
                callback(node, message)

        super().setOnMessageReceivedCallback(received)  # type: ignore[misc]

    def send(self, node: Any, message: Any) -> bool:
        if self._acks.hold(node, message, self._journal.unsynced):  # rule 4
            return True
        if node in self._readonlyNodes and not self.replica_heartbeats.due(node, message, time.monotonic()):
            return True  # rule 5: nothing new for this replica, and it heard from us less than a period ago
        return super().send(node, message)  # type: ignore[misc]

    def _onReadonlyNodeDisconnected(self, node: Any) -> None:  # noqa: N802 - pysyncobj's name
        self.replica_heartbeats.forget(node)
        super()._onReadonlyNodeDisconnected(node)  # type: ignore[misc]

    def release(self) -> None:
        """Rule 4: send the answers the last sync covered, in order."""
        for node, message in self._acks.drain():
            super().send(node, message)  # type: ignore[misc]


class OrionTransport(PatchedTransport, TCPTransport):
    """pysyncobj's TCP transport with rules 1, 2, 4 and 5."""


# -- rules 3, 4, 8: the engine ---------------------------------------------------------
class Engine(SyncObj):
    """``SyncObj`` with our journal (rule 3), a sync point at each pass of its loop (rule 4),
    calls queued onto its tick thread (rule 8) and no new command while it hands over (rule 2).

    ``conf.journalFile`` must be None: the journal is ours. Everything else is pysyncobj's
    own, its tick thread included.
    """

    def __init__(self, journal: RaftJournal, self_node: str | None, partners: list[str], conf: SyncObjConf,
                 consumers: list[Any], transport_class: type = OrionTransport) -> None:
        if conf.journalFile is not None:
            raise ValueError("Engine brings its own journal: set journalFile=None")
        # Set before SyncObj.__init__, so pysyncobj counts them among its own attributes and
        # leaves them out of its snapshots (syncobj.py:274).
        self.journal = journal
        self._tick_calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # Set while this leader hands leadership over: it takes no new commands (rule 2).
        self.handing_over = False
        super().__init__(self_node, partners, conf=conf, consumers=consumers, transportClass=transport_class)
        self.addOnTickCallback(self._group_commit)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_SyncObj__raftLog":  # rule 3: syncobj.py:166 built a MemoryJournal (journalFile=None)
            value = self.journal
        object.__setattr__(self, name, value)

    def call_on_tick(self, fn: Callable[[], None]) -> None:
        """Rule 8: run ``fn`` on the tick thread before its next tick (within ``autoTickPeriod``)."""
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
        self._group_commit()
        super()._onTick(timeToWait)

    def _group_commit(self) -> None:
        """Rule 4: one sync for everything appended since the last one, then the answers it covers."""
        self.journal.sync()
        self._SyncObj__transport.release()


# -- rule 6: the election gate -----------------------------------------------------------
class ElectionGate(SyncObjConf):
    """pysyncobj's configuration, whose election timeout is "never" while the gate is closed,
    and "now" while this voter is alone in its configuration (``alone``).

    Closed: the joiner's configuration answers "never" until the leader's answer says it
    is admitted; then the leader's next heartbeat, which by then reaches it, re-arms an
    ordinary timeout. A node outside the configuration never campaigns and never raises a
    term; it still follows a leader and votes, as Raft's non-voting catch-up phase would.
    Starting the joiner only after admission would deadlock the 1 -> 2 step (the second
    voter's entry commits only with its acknowledgement); starting it read-only cannot
    acknowledge as the new voter, and pysyncobj cannot promote a read-only node in place.

    Alone: the timeout's value never decides Raft's safety — terms and votes do;
    randomizing it only keeps candidates from splitting the vote, and a voter alone has no
    rival. Once a voter is added, the very next draw is an ordinary randomized one again.
    """

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
            return NEVER
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


# -- rule 7: the truncation watch ----------------------------------------------------------
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
    """Calls ``on_truncation(from_index, last_applied)`` when this engine truncates applied
    entries. When the replacing entries differ — a configuration that let two leaders
    commit (pysyncobj never sets ``__changeClusterIDx``, ``:1356-1369``, so it does not
    enforce one membership change at a time), nodes campaigning from a member list nobody
    agreed to — the machine has applied commands the cluster does not have, and nothing in
    pysyncobj notices. A duplicate ``append_entries`` of the same leader re-sends the same
    entries: harmless, but heard too (the rebuild is cheap and always correct).

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
