"""Which replicas to move so a service's replicas are spread evenly again: a pure function.

A node that joins, or returns from a drain or a failure, gets nothing of what already runs:
placement only places what waits (Swarm and Nomad never rebalance by default, moby#24103,
nomad#1635). ``orion service rebalance web`` (or ``update.rebalance``, the leader doing it
whenever this finds moves) moves replicas there with the service's update rules: the
state machine declares the spec again with a ``rebalance`` deployment that replaces just
the replicas named here (``orion/state/service_actions.py``), and the placement planner's
spread puts each successor on the node with the fewest.

The rule: over the nodes the service may use now (schedulable, eligible: selectors,
constraints, host volumes), move one replica from the node with the most to the node with
the fewest while they differ by more than one and the node with the fewest has room for one
more (memory and CPU, counting the moves already chosen) and is under ``maxPerNode``. The
replica moved off a node is its newest (the highest id): the oldest have proven themselves.
Evenness is per node; a ``spread`` label is the placement planner's business when it
places the successors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orion.domain.model import NodeInfo, NodeUsage, Task
from orion.domain.service import ServiceSpec, eligible


@dataclass(frozen=True)
class Moves:
    """The replicas to move (ids), and the per-node counts before and after, for the sentence."""

    service: str
    replicas: tuple[str, ...]
    before: tuple[tuple[str, int], ...]
    after: tuple[tuple[str, int], ...]

    @property
    def sentence(self) -> str:
        def counts(c: tuple[tuple[str, int], ...]) -> str:
            return ", ".join(f"{node} {n}" for node, n in c)
        if not self.replicas:
            return f"{self.service} is spread evenly ({counts(self.before)})"
        return f"{self.service}: move {', '.join(self.replicas)} ({counts(self.before)} -> {counts(self.after)})"


def plan(spec: ServiceSpec, replicas: Sequence[Task], nodes: Sequence[NodeInfo],
         usage: Mapping[str, NodeUsage]) -> Moves:
    """The moves that even out ``spec``'s live ``replicas`` (module doc)."""
    usable = sorted(n.id for n in nodes if n.schedulable and eligible(spec, n))
    room = {n.id: n.capacity - usage.get(n.id, NodeUsage()).used for n in nodes if n.id in usable}
    on: dict[str, list[str]] = {node: [] for node in usable}
    for task in sorted(replicas, key=lambda t: t.id):
        if task.node_id in on:
            on[task.node_id].append(task.id)
    before = tuple((node, len(ids)) for node, ids in sorted(on.items()))
    need, cap = spec.task.resources, spec.task.max_per_node
    moved: list[str] = []
    while on:
        most = max(on, key=lambda n: (len(on[n]), n))
        takers = [n for n in on if need.fits_in(room[n]) and (not cap or len(on[n]) < cap)]
        if not takers:
            break
        fewest = min(takers, key=lambda n: (len(on[n]), n))
        if len(on[most]) - len(on[fewest]) <= 1:
            break
        replica = on[most].pop()
        moved.append(replica)
        on[fewest].append(replica)
        room[fewest] = room[fewest] - need
    after = tuple((node, len(ids)) for node, ids in sorted(on.items()))
    return Moves(spec.name, tuple(sorted(moved)), before, after)
