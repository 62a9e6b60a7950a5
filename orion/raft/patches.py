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
6. **the election gate: never, or now** (:class:`ElectionGate`, ``election_gate.py``). pysyncobj draws
   each election timeout from its configuration when it arms it
   (``__generateRaftTimeout``, ``:1108-1111``: at start ``:162``, on a
   campaign ``:636``, on every granted vote and ``append_entries``, ``:939``,
   ``:952``). A joiner not yet admitted answers "never": outside the
   configuration it must not campaign (``:634-650``) and raise terms (pysyncobj
   has no pre-vote). A voter alone in its configuration answers "now": nobody
   can split its vote, so waiting 0.4-1.4 s buys nothing.
7. **the truncation watch** (:class:`TruncationWatch`, ``truncation_watch.py``). A follower deletes
   everything after ``prevLogIdx`` whenever it holds more, not only on a term
   conflict, and only logs ``CRITICAL`` when that reaches applied entries
   (``:991-1004``; ``raftLastApplied`` is not wound back). The watch hears that
   record on the tick thread that wrote it; the store then rebuilds its machine
   from the journal (``store.py``, ``_resync``).
8. **calls run on the tick thread** (:meth:`Engine.call_on_tick`). Only the
   tick thread may touch the transport (``transferLeadership`` does): calls
   queued from other threads run at the start of its next ``_onTick`` (``:611``).
9. **ReadIndex** (:meth:`Engine.read_index`, ``read_index.py``). pysyncobj reads
   nothing through Raft: its follower answers ``next_node_idx`` without a term or a
   tag (``:1098-1106``), so nothing says a heartbeat was answered *after* a given
   moment; and that answer waits for the follower's sync (rule 4). The leader
   numbers its rounds: every ``append_entries`` carries ``read_round``, and a
   follower that accepts a new one (term not below its own, ``:945``) answers
   ``orion_read_ack`` at once — only the term matters, not the log, so it waits
   for no sync. A read is registered at the leader's
   commit index (once its NO_OP of the term, ``:1226-1228``, committed), a round starts
   at once (``__sendAppendEntries``, sent before the pass's sync, as ``:691`` sends on
   schedule), and the read is confirmed as the acknowledgement that makes a majority
   arrives. A follower sends its reads of a tick as one
   ``orion_read_index`` request and waits for its replica to apply the answer's
   index (``raftLastApplied``, which counts NO_OPs and membership entries too); it
   applies what is committed before its pass's sync, not after (``:688``): committed
   entries are on a majority's disks already.
10. **pre-vote** (:meth:`Engine._pre_vote`, ``prevote.py``). pysyncobj campaigns as
   soon as its timer fired and it is connected to anyone (``:634-650``): a voter
   that reconnects — partitioned, or removed while down and added back — raises
   the term and deposes a healthy leader (``:920-923``). Before pysyncobj may
   campaign, the node asks the voters ``orion_pre_vote`` and campaigns only with a
   majority's yes; the timer is re-armed meanwhile. A leadership transfer
   (``__transferInProgress``, ``:916``) is not asked about.
11. **socket.inet_ntop given back** (below the imports). ``pysyncobj/win_inet_pton.py``
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
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj import syncobj as upstream
from pysyncobj.pipe_notifier import PipeNotifier
from pysyncobj.transport import TCPTransport

from orion.defaults import REPLICA_HEARTBEAT
from orion.raft.ack_queue import ACK, AckQueue, plain_success
from orion.raft.election_gate import NEVER, ElectionGate
from orion.raft.journal import RaftJournal
from orion.raft.prevote import PRE_VOTE, PRE_VOTE_ANSWER, LogPosition, PreVote, answer
from orion.raft.read_index import (
    READ_ACK,
    READ_ANSWER,
    READ_ASK,
    READ_ROUND,
    Facts,
    NodeReads,
    Outbox,
    ReadCallback,
)
from orion.raft.replica_heartbeats import ReplicaHeartbeats
from orion.raft.truncation_watch import TRUNCATION_MESSAGE, TruncationWatch

# Rules 6 and 7 live beside this module (neither replaces a method of pysyncobj); named here
# too, so every rule is imported from one place.
__all__ = ["NEVER", "TRUNCATION_MESSAGE", "ElectionGate", "Engine", "OrionTransport", "PatchedTransport",
           "TruncationWatch"]

log = logging.getLogger("orion.raft")

# Rules 9 and 10: our own messages (the transport hands them to the engine; pysyncobj never sees them).
OURS = frozenset({READ_ACK, READ_ASK, READ_ANSWER, PRE_VOTE, PRE_VOTE_ANSWER})

socket.inet_ntop = _socket.inet_ntop  # rule 11


# -- rules 1, 2, 4, 5: the transport --------------------------------------------------
class PatchedTransport:
    """A mixin over a pysyncobj transport (TCP in the agent, in-memory in the tests).

    Received: a forwarded command during a handover is refused (rule 2); a success never
    winds the leader's next index back (rule 1); our messages go to the engine, an accepted
    ``append_entries`` is the leader's contact and a new round in it is acknowledged at once
    (rules 9, 10). Sent: an answer waits for the sync that covers it (rule 4); an idle
    heartbeat to a replica is thinned (rule 5); the leader's rounds ride on its
    ``append_entries`` (rule 9).
    """

    _syncObj: Any
    _readonlyNodes: set[Any]

    def __init__(self, syncObj: Engine, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803 - pysyncobj's
        self._journal = syncObj.journal
        self._acks = AckQueue()
        self.replica_heartbeats = ReplicaHeartbeats(REPLICA_HEARTBEAT)
        self._round_acked: dict[Any, tuple[int, int]] = {}  # rule 9: leader -> (term, round) last acknowledged
        super().__init__(syncObj, selfNode, otherNodes)  # type: ignore[call-arg]

    def setOnMessageReceivedCallback(self, callback: Any) -> None:  # noqa: N802 - pysyncobj's name
        sync = self._syncObj

        def received(node: Any, message: Any) -> None:
            kind = message.get("type") if isinstance(message, dict) else None
            if kind in OURS:  # rules 9, 10
                sync.on_message(node, message)
            elif kind == "append_entries" and message.get("term", -1) >= sync.raftCurrentTerm:
                sync.heard_leader()  # rule 10, and the contact X-Orion-Last-Contact reports
                callback(node, message)  # accepted (syncobj.py:945): this node is at the leader's term
                round_ = (message["term"], message.get(READ_ROUND, 0))
                if sync.selfNode is not None and round_[1] and self._round_acked.get(node) != round_:
                    self._round_acked[node] = round_  # rule 9: a voter acknowledges each new round once
                    self.send(node, {"type": READ_ACK, "round": round_[1]})
            elif not isinstance(message, dict):
                callback(node, message)
            elif getattr(sync, "handing_over", False) and message.get("type") == "apply_command" \
                    and "request_id" in message:  # rule 2
                self.send(node, {"type": "apply_command_response", "request_id": message["request_id"],
                                 "error": FAIL_REASON.NOT_LEADER})
            elif kind == ACK and plain_success(message):  # rule 1
                next_index = sync._SyncObj__raftNextIndex
                sent_up_to = next_index.get(node)
                callback(node, message)
                if sent_up_to is not None and next_index.get(node, sent_up_to) < sent_up_to:
                    next_index[node] = sent_up_to
            else:
                callback(node, message)

        super().setOnMessageReceivedCallback(received)  # type: ignore[misc]

    def send(self, node: Any, message: Any) -> bool:
        if isinstance(message, dict) and message.get("type") == "append_entries":  # rule 9
            message[READ_ROUND] = self._syncObj.reads.round
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
    """pysyncobj's TCP transport with rules 1, 2, 4, 5 and 9."""


# -- rules 3, 4, 8, 9, 10: the engine ----------------------------------------------------
class Engine(SyncObj):
    """``SyncObj`` with our journal (rule 3), a sync point at each pass of its loop (rule 4),
    calls queued onto its tick thread (rule 8), no new command while it hands over (rule 2),
    reads confirmed by a quorum (rule 9) and a pre-vote before any campaign (rule 10).

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
        self.reads = NodeReads()  # rule 9, on the tick thread; reads arrive through _arrived
        self._arrived: queue.SimpleQueue[ReadCallback] = queue.SimpleQueue()
        self.prevote: PreVote[Any] = PreVote()  # rule 10
        # Monotonic time this node last accepted an append_entries (None: never): rule 10's
        # "a leader is alive", and X-Orion-Last-Contact.
        self.last_leader_contact: float | None = None
        # Rules 9 and 10 travel on our messages: only a patched transport delivers them (tests
        # build engines on a bare one to show what upstream does).
        self._patched = issubclass(transport_class, PatchedTransport)
        self._read_wake: PipeNotifier | None = None  # set below: it needs pysyncobj's poller
        super().__init__(self_node, partners, conf=conf, consumers=consumers, transportClass=transport_class)
        self._read_wake = PipeNotifier(self._poller)  # a read arrived: tick now, not after autoTickPeriod
        self.addOnTickCallback(self._group_commit)
        self.addOnTickCallback(self._after_tick)

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
        if self._patched and not self._isLeader():
            # Rule 9: what is committed is on a majority's disks already: a follower applies it
            # before this pass's sync of its own appends, so a read waiting for it does not
            # wait for that fsync (pysyncobj applies after it, syncobj.py:688).
            self._SyncObj__applyLogEntries()
        self._before_tick()  # before the sync: a round or a request waits for no fsync of ours
        self._group_commit()
        self._pre_vote()
        super()._onTick(timeToWait)

    def _group_commit(self) -> None:
        """Rule 4: one sync for everything appended since the last one, then the answers it covers."""
        self.journal.sync()
        self._SyncObj__transport.release()

    # -- rule 9 ------------------------------------------------------------------------
    def read_index(self, callback: ReadCallback) -> None:
        """Rule 9, from any thread: ``callback(index, READ_OK)`` on the tick thread once this
        replica has applied the leader's commit index of a moment after this call, with the
        leader's leadership confirmed by a quorum after that moment; or ``callback(None, code)``
        (no leader reached, the leader changed: ask again)."""
        self._arrived.put(callback)
        if self._read_wake is not None:
            self._read_wake.notify()

    def facts(self) -> Facts:
        leading = self._isLeader()
        leader = self._getLeader()
        if not leading and (leader is None or not self.isNodeConnected(leader)):
            leader = None
        noop = self._SyncObj__noopIDx
        return Facts(leading=leading, term=self.raftCurrentTerm, commit_index=self.raftCommitIndex,
                     term_committed=leading and noop is not None and self.raftCommitIndex >= noop,
                     last_applied=self.raftLastApplied, leader=leader, voters=frozenset(self.otherNodes),
                     now=upstream.monotonicTime(), patience=self._election_min())

    def _election_min(self) -> float:
        """The configured minimal election timeout (the gate's, whatever it answers now): how long
        a leader is trusted without news (rule 10), and a read round may go unanswered (rule 9)."""
        return getattr(self.conf, "election_min", self.conf.raftMinTimeout)

    def _before_tick(self) -> None:
        arrived = []
        while True:
            try:
                arrived.append(self._arrived.get_nowait())
            except queue.Empty:
                break
        self._deliver(self.reads.before_tick(self.facts(), arrived))

    def _after_tick(self) -> None:
        """An on-tick callback: after pysyncobj applied and sent, before it polls."""
        self._deliver(self.reads.after_tick(self.facts()))

    def _deliver(self, out: Outbox) -> None:
        if out.start_round:  # the round's append_entries leave now (what syncobj.py:691 sends on schedule)
            self._SyncObj__sendAppendEntries()
        for node, message in out.sends:
            self._SyncObj__transport.send(node, message)
        for callback, index, code in out.answers:
            try:
                callback(index, code)
            except Exception:  # a reader's callback must never stop the engine
                log.exception("read callback failed")

    # -- rules 9, 10: our messages -------------------------------------------------------
    def on_message(self, node: Any, message: dict) -> None:
        kind = message["type"]
        if kind in (READ_ACK, READ_ASK, READ_ANSWER):
            self._deliver(self.reads.on_message(node, message, self.facts()))
        elif kind == PRE_VOTE and self.selfNode is not None:
            contact = self.last_leader_contact
            since = None if contact is None else upstream.monotonicTime() - contact
            log_at = LogPosition(self._SyncObj__getCurrentLogTerm(), self._SyncObj__getCurrentLogIndex())
            self._SyncObj__transport.send(node, answer(message, term=self.raftCurrentTerm, log=log_at,
                                                       leading=self._isLeader(), since_leader=since,
                                                       election_min=self._election_min()))
        elif kind == PRE_VOTE_ANSWER:
            if not message["granted"] and message["term"] > self.raftCurrentTerm:
                # Behind: take the refuser's term, as any Raft message with a higher term does.
                self._SyncObj__setCurrentTerm(message["term"], None)
                self._SyncObj__setState(upstream._RAFT_STATE.FOLLOWER)
                self._SyncObj__raftLeader = None
            elif self.prevote.answer(node, message["round"], message["granted"], self.otherNodes):
                self._SyncObj__raftElectionDeadline = 0  # won: campaign at the next tick

    # -- rule 10 -----------------------------------------------------------------------
    def heard_leader(self) -> None:
        """The transport: this node accepted an append_entries (a leader is alive)."""
        self.last_leader_contact = upstream.monotonicTime()
        self.prevote.cancel()

    def _pre_vote(self) -> None:
        """Before pysyncobj's election check (syncobj.py:635): let it campaign only after a won
        pre-vote (or a transfer); else ask, and re-arm its timer meanwhile."""
        if not self._patched or self.selfNode is None or self._isLeader() or not self.otherNodes:
            return
        if self._SyncObj__raftElectionDeadline >= upstream.monotonicTime() \
                or not self._SyncObj__connectedToAnyone() or self._SyncObj__transferInProgress:
            return
        if self.prevote.campaign():
            return
        self._SyncObj__raftElectionDeadline = upstream.monotonicTime() + self._SyncObj__generateRaftTimeout()
        ask = self.prevote.start(self.raftCurrentTerm, LogPosition(self._SyncObj__getCurrentLogTerm(),
                                                                   self._SyncObj__getCurrentLogIndex()))
        for node in self.otherNodes:
            self._SyncObj__transport.send(node, dict(ask))
