"""Raft membership health (Consul/Nomad "autopilot"), decided purely.

Voters are what keep quorum, so the leader tends them:

* A voter whose node has been ``dead`` or ``left`` for ``dead_voter_cleanup``
  seconds is removed, so the next failure is survivable: five voters lose one
  (4 left, quorum 3), it is removed, they lose another (3 of 4 healthy, quorum
  kept) and that one is removed too — a third loss still leaves 2 of 3.
* Never faster than quorum allows: one change per pass (Raft changes
  membership one server at a time), never the leader itself, and only when the
  voters that remain healthy are a majority of the new, smaller set.
* Below ``voter_cap`` a registered node that is not a voter (say, one removed
  while it was down, now back) is added again, lowest id first, once its agent
  answers the leader's probe. A record that says ``alive`` is not enough: after a
  majority loss (``orion operator raft recover``) the dead nodes' records still
  say so until liveness catches up, and adding one would take away the quorum
  the recovery just made.

Nodes that join beyond the cap become non-voting replicas (``orion/membership/join.py``)
and register without a Raft address; pysyncobj cannot promote one in place, so
autopilot adds back only nodes that were voters (a Raft address registered).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from orion.domain.model import NODE_DEAD, NODE_LEFT, NodeInfo
from orion.store.port import MembershipAction

ADD: MembershipAction = "add"
REMOVE: MembershipAction = "remove"


@dataclass(frozen=True)
class AutopilotConfig:
    """The agent's ``voter_cap`` and ``dead_voter_cleanup`` (declared, with their reasons, in
    ``orion/config/healing.py``)."""

    voter_cap: int
    dead_voter_cleanup: float


@dataclass(frozen=True)
class MembershipChange:
    action: MembershipAction  # ADD or REMOVE
    raft_addr: str
    node_id: str
    reason: str

    @property
    def sentence(self) -> str:
        verb = "adding voter" if self.action == ADD else "removing voter"
        return f"{verb} {self.node_id} ({self.raft_addr}): {self.reason}"


def quorum(voters: int) -> int:
    return voters // 2 + 1


def plan(voters: Sequence[str], nodes: Sequence[NodeInfo], self_addr: str, gone_since: Mapping[str, float],
         reachable: Collection[str], now: float, cfg: AutopilotConfig) -> MembershipChange | None:
    """At most one membership change for this pass, or None.

    ``voters``: Raft members' addresses. ``gone_since``: node id -> when this
    leader first saw it dead/left. ``reachable``: node ids whose agent answers
    (a non-voter cannot be seen through Raft, so the caller probes its API).
    """
    by_addr = {n.raft_addr: n for n in nodes}
    members = set(voters)

    def healthy(addr: str) -> bool:
        node = by_addr.get(addr)
        return addr == self_addr or node is None or node.status not in (NODE_DEAD, NODE_LEFT)

    healthy_count = sum(1 for a in members if healthy(a))
    for addr in sorted(members):
        node = by_addr.get(addr)
        if addr == self_addr or node is None or healthy(addr):
            continue
        since = gone_since.get(node.id)
        if since is None or now - since < cfg.dead_voter_cleanup:
            continue
        if healthy_count < quorum(len(members) - 1):
            return None  # removing would leave the healthy ones short of a majority
        return MembershipChange(REMOVE, addr, node.id,
                                f"{node.status} for {now - since:.0f}s (cleanup after {cfg.dead_voter_cleanup:g}s)")
    if len(members) >= cfg.voter_cap:
        return None
    for node in sorted(nodes, key=lambda n: n.id):
        if node.raft_addr in members or not node.raft_addr:
            continue
        if node.id in reachable and node.status != NODE_LEFT:
            return MembershipChange(ADD, node.raft_addr, node.id,
                                    f"healthy and not a voter ({len(members)} of at most {cfg.voter_cap})")
    return None
