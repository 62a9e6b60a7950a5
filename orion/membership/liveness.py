"""Node liveness for the registry: the leader turns its gossip view into statuses.

The SWIM/Lifeguard member list (``orion/gossip``) is the source of truth for
who is alive; the Raft leader commits what its gossip node sees as
``SetNodeStatus`` commands, so every replica's registry, and with it placement
and healing, agree on one status per node. Everything downstream reads only
the replicated status.

:class:`LivenessCore` is pure (member states and ``now`` in, status changes
out); :class:`GossipLiveness` feeds it from a function that returns the gossip
view, so this module needs no import of the gossip transport.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from orion.domain.model import NODE_DEAD, NODE_LEFT, NODE_RESTARTING, NODE_STATES, NodeInfo
from orion.state.commands import SetNodeStatus
from orion.store.port import Store

# node id -> (gossip state, incarnation), as this node's gossip member list sees it.
GossipView = Mapping[str, tuple[str, int]]


class LivenessSource(Protocol):
    """Anything that turns observations into node status changes for the leader to commit."""

    def poll(self, now: float) -> list[SetNodeStatus]:
        """Status changes due at ``now`` (monotonic seconds); empty when nothing changed."""


@dataclass
class LivenessCore:
    """Pure: gossip member states in, registry status changes out (leader only).

    * ``suspect`` is recorded but decides nothing: Lifeguard may still clear it.
    * Failover grace (Nomad's failover heartbeat TTL): a new leader declares
      nobody dead for ``failover_grace`` seconds, while its own gossip view
      may still be forming, so an election never causes a mass reschedule.
    * A node that ``left`` (drained) comes back by registering again, never by
      gossip: while it drains it is still alive in gossip and must stay left.
    * Gossip news older than the node's registration (a lower incarnation: a
      "dead" or "left" about the process before a restart) is stale and ignored.
    * A registered node that gossip has never seen (in its current life) counts
      as dead once it has been missing for ``node_dead_after`` seconds.
    * A node that announced its own restart (``restarting``, committed by its
      agent's graceful stop) keeps that status whatever gossip says for
      ``restart_grace`` seconds from when this leader first saw it so (Nomad's
      heartbeat grace, Kubernetes' node-monitor-grace-period): its agent is
      away, its containers are not. It becomes ``alive`` by registering again;
      past the grace gossip decides as for any node, so one that never came
      back is ``dead`` and its tasks move as after a crash. A node that merely
      vanished (SIGKILL: no announcement) gets no grace.
    """

    node_dead_after: float
    failover_grace: float
    restart_grace: float
    leader_since: float | None = None
    # (node id, registered incarnation) -> when gossip stopped showing that life: a node that
    # registers again (a new incarnation) starts a new count, however long its old life was missing.
    missing_since: dict[tuple[str, int], float] = field(default_factory=dict)
    restarting_since: dict[str, float] = field(default_factory=dict)

    def observe(self, now: float, is_leader: bool, gossip: GossipView,
                nodes: Iterable[NodeInfo]) -> list[SetNodeStatus]:
        if not is_leader:
            self.leader_since = None
            self.missing_since.clear()
            self.restarting_since.clear()
            return []
        if self.leader_since is None:
            self.leader_since = now
        in_grace = now - self.leader_since < self.failover_grace
        nodes = list(nodes)
        lives = {(n.id, n.incarnation) for n in nodes}
        self.missing_since = {k: v for k, v in self.missing_since.items() if k in lives}
        restarting = {n.id for n in nodes if n.status == NODE_RESTARTING}
        self.restarting_since = {k: v for k, v in self.restarting_since.items() if k in restarting}
        changes = []
        for node in nodes:
            state, incarnation = gossip.get(node.id, (None, 0))
            if state is None or incarnation < node.incarnation:
                since = self.missing_since.setdefault((node.id, node.incarnation), now)
                state = NODE_DEAD if now - since >= self.node_dead_after else node.status
            else:
                self.missing_since.pop((node.id, node.incarnation), None)
            if node.id in restarting and now - self.restarting_since.setdefault(node.id, now) < self.restart_grace:
                continue  # announced restart: only its registration (or the grace running out) ends it
            if state not in NODE_STATES or state == node.status:
                continue
            if node.status == NODE_LEFT:
                continue  # drained: its agent stopping (suspect, dead, gone) is no news; it registers to return
            if state == NODE_DEAD and in_grace:
                continue
            changes.append(SetNodeStatus(request_id=uuid.uuid4().hex, node_id=node.id, status=state))
        return changes


class GossipLiveness:
    """The adapter (a :class:`LivenessSource`): the gossip view and the store, through the core."""

    def __init__(self, gossip_view: Callable[[], GossipView], store: Store, node_dead_after: float,
                 failover_grace: float, restart_grace: float) -> None:
        self._gossip_view = gossip_view
        self._store = store
        self.core = LivenessCore(node_dead_after, failover_grace, restart_grace)

    def poll(self, now: float) -> list[SetNodeStatus]:
        states = self._gossip_view()
        nodes, _ = self._store.read(lambda m: m.nodes())
        return self.core.observe(now, self._store.is_leader(), states, nodes)
