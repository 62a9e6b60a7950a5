"""Group commit around pysyncobj: one journal sync per pass of its loop, before it counts.

Why our journal object and not a modified pysyncobj: ``orion/state/journal.py``.
This module decides *when* that journal is synced. pysyncobj 0.3.17 appends
entries in three places: the leader for each queued command
(``syncobj.py:528``, followed at once by ``__sendAppendEntries``, ``:540``), the
leader's NO_OP after an election (``:1227``), and a follower handling
``append_entries`` (``:1006``), which answers at once with ``next_node_idx``
(``:1019`` → ``__sendNextNodeIdx``, ``:1098``). The leader counts its own entry
with ``count = 1`` in the commit loop at the top of ``_onTick`` (``:660``): it
has no match index of its own. So the journal is synced, if anything was
appended, at two points of each pass of pysyncobj's loop:

* at the start of ``_onTick``, before the commit loop: whatever was appended
  during the previous poll (a follower's entries, a new leader's NO_OP) is on
  disk before the leader counts itself or a follower's answer leaves;
* in an on-tick callback, which pysyncobj runs after ``_checkCommandsToApply``
  and just before it polls (``:703-706``): the entries the leader appended in
  this pass reach the disk while the followers write theirs, so the two syncs
  overlap instead of adding up.

A follower's ``next_node_idx`` answers wait in an :class:`AckQueue` while the
journal has unsynced bytes and leave, in order, right after the sync that
covers them. The leader sends ``append_entries`` before its own sync, which
Raft allows (thesis §10.2.1): only counting itself has to wait. One sync thus
covers every entry appended in a pass, whatever the number of clients, and the
commands that queue up during a sync share the next one. Term and vote are
synced by the journal itself, before pysyncobj sends what reflects them.
"""

from __future__ import annotations

import time
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf
from pysyncobj.transport import TCPTransport

from orion.defaults import REPLICA_HEARTBEAT
from orion.state.journal import RaftJournal
from orion.state.replica_heartbeats import ReplicaHeartbeats

_ACK = "next_node_idx"  # a follower's answer to append_entries (syncobj.py:1098-1106)


class AckQueue:
    """A follower's answers held until the entries they report are on disk.

    Pure: the transport asks :meth:`hold` whether to keep a message, and sends
    what :meth:`drain` returns after a sync.
    """

    def __init__(self) -> None:
        self._held: list[tuple[Any, dict]] = []

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, node: Any, message: dict, unsynced: bool) -> bool:
        """Keep ``message`` (True) if it is an answer and the journal has unsynced bytes,
        or answers are already waiting (they leave in order)."""
        if message.get("type") != _ACK or not (self._held or unsynced):
            return False
        if self._held and _plain_success(message):
            last_node, last = self._held[-1]
            if last_node == node and _plain_success(last):
                # A success says "my log matches yours up to here": the newest implies the
                # ones before it. Sending each would also make the leader wind its next index
                # back to every one of them (syncobj.py:1082) and resend what it already sent.
                self._held[-1] = (node, message)
                return True
        self._held.append((node, message))
        return True

    def drain(self) -> list[tuple[Any, dict]]:
        held, self._held = self._held, []
        return held


def _plain_success(message: dict) -> bool:
    return bool(message.get("success")) and not message.get("reset")


class _AckAfterSyncTransport(TCPTransport):
    """pysyncobj's TCP transport whose acknowledgements wait for the sync that covers them."""

    def __init__(self, syncObj: GroupCommitSyncObj, selfNode: Any, otherNodes: Any) -> None:
        self._journal = syncObj.journal
        self._acks = AckQueue()
        # Idle heartbeats to non-voting replicas, thinned (replica_heartbeats.py).
        self.replica_heartbeats = ReplicaHeartbeats(REPLICA_HEARTBEAT)
        super().__init__(syncObj, selfNode, otherNodes)

    def setOnMessageReceivedCallback(self, callback: Any) -> None:  # noqa: N802 - pysyncobj's name
        """While the leader hands leadership over (``handing_over``), a command a follower
        forwards is answered "not leader" instead of appended (pysyncobj's own answer on a
        non-leader, syncobj.py:566-572; the follower retries): Raft's transfer stops taking
        client requests, so the target catches up and wins its election at once.

        A follower's success never winds the leader's next index back. pysyncobj sets it to
        the answer's index (syncobj.py:1079-1082) even when it has sent beyond that since, so
        with two ``append_entries`` in flight the answer to the first makes it send the second's
        entries again; a follower that applied them meanwhile (the other follower's answer
        committed them) truncates applied entries (``:991-1004``), and the truncation guard
        rebuilds its engine (``raft_engine.py``): under 16 writing clients, 1-7 resyncs a
        run and a p99 of 0.7-1 s (bench/write_path.py, durability none). etcd's raft never
        lowers Next on a success either (``Progress.MaybeUpdate``); a refusal still resets it.
        """
        sync = self._syncObj

        def received(node: Any, message: Any) -> None:
            if getattr(sync, "handing_over", False) and isinstance(message, dict) \
                    and message.get("type") == "apply_command" and "request_id" in message:
                self.send(node, {"type": "apply_command_response", "request_id": message["request_id"],
                                 "error": FAIL_REASON.NOT_LEADER})
                return
            if isinstance(message, dict) and message.get("type") == _ACK and _plain_success(message):
                next_index = sync._SyncObj__raftNextIndex
                sent_up_to = next_index.get(node)
                callback(node, message)
                if sent_up_to is not None and next_index.get(node, sent_up_to) < sent_up_to:
                    next_index[node] = sent_up_to
                return
            callback(node, message)

        super().setOnMessageReceivedCallback(received)

    def send(self, node: Any, message: Any) -> bool:
        if self._acks.hold(node, message, self._journal.unsynced):
            return True
        if node in self._readonlyNodes and not self.replica_heartbeats.due(node, message, time.monotonic()):
            return True  # nothing new for this replica, and it heard from us less than a period ago
        return super().send(node, message)

    def _onReadonlyNodeDisconnected(self, node: Any) -> None:  # noqa: N802 - pysyncobj's name
        self.replica_heartbeats.forget(node)
        super()._onReadonlyNodeDisconnected(node)

    def release(self) -> None:
        for node, message in self._acks.drain():
            super().send(node, message)


class GroupCommitSyncObj(SyncObj):
    """``SyncObj`` with a :class:`RaftJournal` and a sync point at each pass of its loop.

    ``conf.journalFile`` must be None: the journal is ours. Everything else is
    pysyncobj's own, its tick thread included.
    """

    def __init__(self, journal: RaftJournal, self_node: str | None, partners: list[str], conf: SyncObjConf,
                 consumers: list[Any]) -> None:
        if conf.journalFile is not None:
            raise ValueError("GroupCommitSyncObj brings its own journal: set journalFile=None")
        # Set before SyncObj.__init__, so pysyncobj counts it among its own attributes and
        # leaves it out of its snapshots (syncobj.py:274).
        self.journal = journal
        super().__init__(self_node, partners, conf=conf, consumers=consumers,
                         transportClass=_AckAfterSyncTransport)
        self.addOnTickCallback(self._group_commit)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_SyncObj__raftLog":  # syncobj.py:166 built a MemoryJournal (journalFile=None)
            value = self.journal
        object.__setattr__(self, name, value)

    def _onTick(self, timeToWait: float = 0.0) -> None:
        self._group_commit()
        super()._onTick(timeToWait)

    def _group_commit(self) -> None:
        """One sync for everything appended since the last one, then the answers it covers."""
        self.journal.sync()
        self._SyncObj__transport.release()
