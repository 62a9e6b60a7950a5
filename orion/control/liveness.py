"""Fallback node liveness: the Raft leader's own view of who is connected.

Until gossip (SWIM/Lifeguard, ``orion/gossip``) feeds node status into the
registry, the leader judges liveness from its Raft peer connections: a node
whose Raft address has not been connected for ``node_dead_after`` seconds is
declared ``dead`` (``SetNodeStatus``), and ``alive`` again once it reconnects.
Everything downstream (healing, autopilot) reads only the replicated status,
so gossip can replace this source without touching them.

Failover grace (Nomad's failover heartbeat TTL): a node that just became
leader declares nobody dead for ``failover_grace`` seconds, and counts absence
only from the moment it became leader, so an election never triggers a mass
reschedule. ``suspect`` and ``left`` are left alone: only gossip suspects, and
a node that left (drain) comes back by registering again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from orion.model import NODE_ALIVE, NODE_DEAD, NODE_LEFT, NodeInfo
from orion.state.commands import SetNodeStatus


class LivenessSource(Protocol):
    """Anything that turns observations into node status changes for the leader to commit."""

    def poll(self, now: float) -> list[SetNodeStatus]:
        """Status changes due at ``now`` (monotonic seconds); empty when nothing changed."""


@dataclass
class ConnectionLiveness:
    """The pure core: connection observations in, status changes out. No I/O, no clock."""

    node_dead_after: float
    failover_grace: float
    # raft addr -> last moment it was seen connected (or this node became leader).
    last_seen: dict[str, float] = field(default_factory=dict)
    leader_since: float | None = None

    def observe(self, now: float, is_leader: bool, self_raft_addr: str, connected: Iterable[str],
                nodes: Iterable[NodeInfo]) -> list[SetNodeStatus]:
        if not is_leader:
            self.leader_since = None
            self.last_seen.clear()
            return []
        if self.leader_since is None:
            self.leader_since = now
        up = set(connected) | {self_raft_addr}
        changes: list[SetNodeStatus] = []
        for node in nodes:
            if node.raft_addr in up:
                self.last_seen[node.raft_addr] = now
                if node.status == NODE_DEAD:
                    changes.append(_status(node.id, NODE_ALIVE))
                continue
            if node.status in (NODE_DEAD, NODE_LEFT):
                continue
            seen = max(self.last_seen.get(node.raft_addr, self.leader_since), self.leader_since)
            in_grace = now - self.leader_since < self.failover_grace
            if not in_grace and now - seen >= self.node_dead_after:
                changes.append(_status(node.id, NODE_DEAD))
        return changes


def _status(node_id: str, status: str) -> SetNodeStatus:
    return SetNodeStatus(request_id=uuid.uuid4().hex, node_id=node_id, status=status)


class RaftLiveness:
    """The adapter: reads the store's Raft status and registry, runs the core."""

    def __init__(self, store, node_dead_after: float, failover_grace: float) -> None:  # noqa: ANN001
        self._store = store
        self.core = ConnectionLiveness(node_dead_after, failover_grace)

    def poll(self, now: float) -> list[SetNodeStatus]:
        status = self._store.status()
        nodes, _ = self._store.read(lambda m: m.nodes())
        return self.core.observe(now, status.is_leader, status.self_addr,
                                 status.extra.get("connected", ()), nodes)
