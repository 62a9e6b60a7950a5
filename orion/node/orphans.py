"""Which of this node's containers are orphans, and when they may go.

An orphan is a container labelled as Orion's and as this node's whose task the replicated
state does not know at all: the task was deleted and then purged from the history while this
node was down (``orion/state/history.py`` forgets finished tasks beyond its limits), or a
snapshot restore took it away. The reconciler (``reconcile.py``) never sees it as anything:
no task to compare it with. kubelet and Nomad's client garbage-collect such leftovers; so does
this, with two guards, because removing a workload is the one mistake that cannot be undone:

* **Only on a current view.** The clock of a candidate starts at the first pass that sees its
  task unknown while the node reaches a leader with a quorum and has caught up (``current``),
  and it is removed only on such a pass. A node that is cut off, catching up after a restart,
  or rebuilding its replica decides nothing: it may simply not have read about the task yet.
* **After a grace period** (``orphan_grace``, orion/defaults.py) of being unknown: a restore of
  the wrong file can be undone by restoring the right one within it, before anything stops.

A task that is known again (a restore brought it back) drops its candidate. Pure: values in,
a plan out; ``reconcile_loop.py`` runs it every pass and acts.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from orion.runtime import REMOVING_STATUS, ContainerState


@dataclass(frozen=True)
class OrphanPlan:
    """``remove``: the orphans due now; ``unknown_since``: when each container still waiting
    was first seen without a task on a current view (the runner keeps it for the next pass)."""

    remove: tuple[ContainerState, ...]
    unknown_since: Mapping[str, float]

    @property
    def waiting(self) -> int:
        return len(self.unknown_since)


def plan(containers: Sequence[ContainerState], known: Collection[str], unknown_since: Mapping[str, float],
         now: float, grace: float, current: bool) -> OrphanPlan:
    """``containers``: this node's managed containers; ``known``: which of their task ids the
    state holds; ``unknown_since``: the last pass's; ``now``: a monotonic clock."""
    remove: list[ContainerState] = []
    since: dict[str, float] = {}
    for c in sorted(containers, key=lambda c: c.container_id):
        if c.task_id in known or c.status == REMOVING_STATUS:
            continue
        first = unknown_since.get(c.container_id)
        if first is None:
            if current:
                since[c.container_id] = now
        elif current and now - first >= grace:
            remove.append(c)
        else:
            since[c.container_id] = first
    return OrphanPlan(tuple(remove), since)
