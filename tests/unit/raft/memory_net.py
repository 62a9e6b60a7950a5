"""Real pysyncobj engines on an in-memory network, driven tick by tick.

The etcd-raft way of testing (``deliver-msgs``, ``stabilize``) applied to
pysyncobj: every engine is our :class:`~orion.raft.patches.Engine` with
``autoTick=False``, its transport puts each message in :attr:`Network.inflight`
instead of on a socket, and the test decides what is delivered, in which order,
and when each engine ticks. No sockets, no threads, no sleeps: the same
sequence gives the same run.

``patched=False`` builds the engine over the bare in-memory transport (the
transport rules of ``patches.py`` off), so a test can show what upstream does.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pysyncobj import SyncObjConsumer, replicated
from pysyncobj.node import TCPNode
from pysyncobj.transport import Transport

from orion.raft.journal import RaftJournal
from orion.raft.patches import ElectionGate, Engine, PatchedTransport

# What the in-memory transport records: (from, to, message).
Frame = tuple[str, str, dict]


class Network:
    """Messages in flight between the engines built on it."""

    def __init__(self) -> None:
        self.inflight: list[Frame] = []
        self.transports: dict[str, MemoryTransport] = {}

    def transport_class(self, patched: bool) -> type:
        network = self

        class Bound(MemoryTransport):
            NETWORK = network

        if patched:
            return type("PatchedMemoryTransport", (PatchedTransport, Bound), {})
        return Bound

    def take(self, kind: str | None = None, src: str | None = None, dst: str | None = None) -> list[Frame]:
        """Remove and return the frames in flight that match, in order (without delivering)."""
        taken = [f for f in self.inflight if _matches(f, kind, src, dst)]
        self.inflight = [f for f in self.inflight if not _matches(f, kind, src, dst)]
        return taken

    def deliver(self, frames: list[Frame]) -> None:
        for src, dst, message in frames:
            self.transports[dst].receive(src, message)

    def deliver_all(self, kind: str | None = None, src: str | None = None, dst: str | None = None) -> int:
        frames = self.take(kind, src, dst)
        self.deliver(frames)
        return len(frames)

    def kinds(self) -> list[tuple[str, str, str]]:
        return [(src, dst, m["type"]) for src, dst, m in self.inflight]


def _matches(frame: Frame, kind: str | None, src: str | None, dst: str | None) -> bool:
    s, d, m = frame
    return (kind is None or m.get("type") == kind) and (src is None or s == src) and (dst is None or d == dst)


class MemoryTransport(Transport):
    """pysyncobj's transport interface over :class:`Network` (what ``TCPTransport`` does over
    sockets: connections are made by the test with :meth:`connect`)."""

    NETWORK: Network
    READONLY_ADDR = ""  # the name on the network of a non-voting replica (it has no Raft address)

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803 - pysyncobj's
        super().__init__(syncObj, selfNode, otherNodes)
        self._syncObj = syncObj
        self._nodes = set(otherNodes)
        self._readonlyNodes: set[Any] = set()
        self.addr = selfNode.address if selfNode is not None else self.READONLY_ADDR
        self.NETWORK.transports[self.addr] = self

    @property
    def ready(self) -> bool:
        return True

    def tryGetReady(self) -> None:  # noqa: N802 - pysyncobj's name
        pass

    def waitReady(self) -> None:  # noqa: N802
        pass

    def addNode(self, node: Any) -> None:  # noqa: N802
        self._nodes.add(node)

    def dropNode(self, node: Any) -> None:  # noqa: N802
        self._nodes.discard(node)

    def send(self, node: Any, message: Any) -> bool:
        self.NETWORK.inflight.append((self.addr, node.address, copy.deepcopy(message)))
        return True

    def release(self) -> None:
        """Upstream has no held answers (rule 4 off)."""

    def destroy(self) -> None:
        self.NETWORK.transports.pop(self.addr, None)

    def node(self, addr: str) -> Any:
        return next(n for n in self._nodes | self._readonlyNodes if n.address == addr)

    def connect(self, addr: str, readonly: bool = False) -> None:
        """The connection to ``addr`` is up (for a non-voting replica: it dialled in)."""
        if readonly:
            node = TCPNode(addr)
            self._readonlyNodes.add(node)
            self._onReadonlyNodeConnected(node)
        else:
            self._onNodeConnected(self.node(addr))

    def receive(self, src: str, message: dict) -> None:
        self._onMessageReceived(self.node(src), message)


class Counter(SyncObjConsumer):
    """A replicated list of what was applied (enough to see entries arrive and apply)."""

    def __init__(self) -> None:
        super().__init__()
        self.applied: list[Any] = []

    @replicated
    def add(self, value: Any) -> int:
        self.applied.append(value)
        return len(self.applied)


def engine(net: Network, tmp: Path, addr: str | None, partners: list[str], *, patched: bool = True,
           closed: bool = False, alone: bool = False, readonly_addr: str = "",
           on_tick: Callable[[], None] | None = None) -> tuple[Engine, Counter]:
    """One engine, not ticking by itself. ``alone``: it campaigns at its first tick (its first
    timeout is drawn as if it were alone, rule 6 "now"); every other election timeout is
    100-200 s (never within a test), and its
    heartbeat period 30 s (it sends ``append_entries`` only for new entries, or when a test
    lowers ``conf.appendEntriesPeriod``)."""
    name = addr or readonly_addr
    data = tmp / name.replace(":", "_")
    data.mkdir(parents=True, exist_ok=True)
    first_draw = [alone]  # the timeout drawn at start: 0 when ``alone`` (rule 6), then ordinary ones
    conf = ElectionGate(closed=closed, alone=lambda: first_draw[0], autoTick=False, appendEntriesUseBatch=False,
                        appendEntriesPeriod=30.0, raftMinTimeout=100.0, raftMaxTimeout=200.0,
                        dynamicMembershipChange=True, journalFile=None, commandsWaitLeader=False,
                        leaderFallbackTimeout=300.0, connectionTimeout=300.0)
    journal = RaftJournal(str(data / "raft.journal"), str(data / "raft.dump"), fsync=True)
    counter = Counter()
    transport = net.transport_class(patched)
    if addr is None:  # a non-voting replica: its transport needs a name on the network
        transport = type("Named", (transport,), {"READONLY_ADDR": readonly_addr})
    sync = Engine(journal, addr, partners, conf, [counter], transport_class=transport)
    first_draw[0] = False
    if on_tick is not None:
        sync.addOnTickCallback(on_tick)
    return sync, counter


def stabilize(net: Network, engines: list[Engine], rounds: int = 20) -> None:
    """Tick every engine and deliver everything, until nothing is in flight."""
    for _ in range(rounds):
        for e in engines:
            e.doTick(0.0)
        if not net.deliver_all():
            for e in engines:
                e.doTick(0.0)
            if not net.inflight:
                return
    raise AssertionError(f"not stable after {rounds} rounds: {net.kinds()}")
