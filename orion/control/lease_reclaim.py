"""Which hosts' subnet leases the leader gives back: a pure planner.

A lease belongs to a host (its Docker engine) and is held by the agents running on it
(``orion/state/network.py``). Most releases happen inside the state machine: the last
holder leaving cleanly with nothing to run. This planner decides the rest, from the
registry's statuses (what gossip declared, committed by the leader) and ``now``:

* A lease whose every holder is **gone** — not registered any more, or ``left`` and
  holding no task (a drain finished after the leave was committed) — is released at once:
  nobody will come back for it without registering afresh.
* A lease whose holders are all gone or **dead**, at least one dead, is released once this
  leader has seen them so for ``grace`` (``lease_dead_grace``, 10 min): a host that reboots
  within it gets its old subnet back, and its containers' addresses with it.
* Any holder alive, suspect or restarting (or left with tasks still on it) keeps the lease,
  and its clock starts again the next time.

The "dead since" clock is the leader's own memory (``gone_since``, monotonic), not a
replicated time: a new leader starts counting again, so a lease is kept longer after an
election, never released sooner. Each clock remembers the lease's last change (its
``updated_index``: asked for again, a holder gone) and each holder's latest status change
(the registry's ``status_index``): a holder that came back and died again between two
passes, or an agent that asked for the lease meanwhile, starts the count again, though no
pass saw it alive. The state machine re-checks each release against the
registry (``ReleaseLease``): a holder that came back meanwhile keeps it.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from orion.domain.model import NODE_DEAD, NODE_LEFT, NodeInfo
from orion.domain.network import SubnetLease
from orion.state.commands import ReleaseLease

# When a lease's holders were first seen all gone or dead, and what they were then: the lease's
# updated_index with each holder's (node id, status_index), and the leader's monotonic time.
Clock = tuple[tuple[int, tuple[tuple[str, int], ...]], float]


class ReleaseKind(StrEnum):
    """Why a lease goes: every holder gone for good, or dead past the grace."""

    GONE = "gone"
    DEAD = "dead"


@dataclass(frozen=True)
class Release:
    """Give ``host``'s lease of ``subnet`` back, for ``kind``; ``sentence`` says so to people."""

    host: str
    subnet: str
    kind: ReleaseKind
    sentence: str

    def command(self) -> ReleaseLease:
        return ReleaseLease(request_id=uuid.uuid4().hex, host=self.host, reason=self.sentence)


@dataclass(frozen=True)
class ReclaimPlan:
    """The releases due now, and the clocks to keep for the next pass: host -> (its holders
    and their latest status changes, when this leader first saw them all gone or dead so)."""

    releases: tuple[Release, ...]
    gone_since: dict[str, Clock]

    @property
    def sentence(self) -> str:
        return "; ".join(r.sentence for r in self.releases)


def _holder_state(node: NodeInfo | None, busy: Collection[str], node_id: str) -> str:
    """"gone", "dead", or "holding" (may still use the lease)."""
    if node is None or (node.status == NODE_LEFT and node_id not in busy):
        return "gone"
    return "dead" if node.status == NODE_DEAD else "holding"


def plan(leases: Sequence[SubnetLease], nodes: Mapping[str, NodeInfo], busy: Collection[str], now: float,
         gone_since: Mapping[str, Clock], grace: float) -> ReclaimPlan:
    """``nodes`` by id (the registry), ``busy`` the ids of nodes that tasks still hold, ``now``
    and ``gone_since`` on the leader's monotonic clock."""
    releases: list[Release] = []
    clocks: dict[str, Clock] = {}
    for lease in leases:
        states = {h: _holder_state(nodes.get(h), busy, h) for h in lease.holders}
        if "holding" in states.values():
            continue
        dead = sorted(h for h, s in states.items() if s == "dead")
        if not dead:
            releases.append(Release(lease.host, lease.subnet, ReleaseKind.GONE,
                                    f"released {lease.subnet} of host {lease.host}: every holder left "
                                    f"({', '.join(lease.holders) or 'none'})"))
            continue
        who = (lease.updated_index, tuple((h, nodes[h].status_index if h in nodes else -1) for h in lease.holders))
        remembered, since = gone_since.get(lease.host, (who, now))
        if remembered != who:  # the lease or a holder changed since the clock started: count afresh
            since = now
        clocks[lease.host] = (who, since)
        if now - since >= grace:
            del clocks[lease.host]
            releases.append(Release(lease.host, lease.subnet, ReleaseKind.DEAD,
                                    f"released {lease.subnet} of host {lease.host}: {', '.join(dead)} dead for "
                                    f"{now - since:.0f}s (grace {grace:.0f}s)"))
    return ReclaimPlan(tuple(releases), clocks)
