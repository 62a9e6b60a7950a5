"""What the state machine answers: read-only queries over its tasks, nodes and reservations.

Split from ``orion/state/machine.py`` (the machine is a :class:`MachineQueries`): the
machine's one job is :meth:`~orion.state.machine.StateMachine.apply`; these only read.
The caller holds the store's lock.
"""

from __future__ import annotations

from orion.domain.model import NODE_LEFT, PENDING, NodeInfo, NodeUsage, Task
from orion.domain.network import NetworkSettings, SubnetLease
from orion.domain.replicas import group_of
from orion.state.history import History
from orion.state.network import NetworkRegistry
from orion.state.reservations import Reservations
from orion.version import LOG_VERSION


class MachineQueries:
    """The read side of the machine; its state is the machine's own."""

    _tasks: dict[str, Task]
    _nodes: dict[str, NodeInfo]
    _held: Reservations
    _history: History
    networking: NetworkRegistry

    def task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def tasks(self) -> list[Task]:
        return self._held.all()

    def node(self, node_id: str) -> NodeInfo | None:
        return self._nodes.get(node_id)

    def nodes(self) -> list[NodeInfo]:
        return [self._nodes[i] for i in sorted(self._nodes)]

    def log_version(self) -> int:
        """The newest log format every node that may read the log again reads (left nodes
        never will); this build's own before any node registered."""
        return min((n.log_version for n in self._nodes.values() if n.status != NODE_LEFT), default=LOG_VERSION)

    # The overlay network (orion/state/network.py).
    def network(self) -> NetworkSettings | None:
        return self.networking.settings

    def leases(self) -> tuple[SubnetLease, ...]:
        return self.networking.leases()

    def lease_of_host(self, host: str) -> SubnetLease | None:
        return self.networking.lease_of_host(host)

    def lease_of_node(self, node_id: str) -> SubnetLease | None:
        return self.networking.lease_of_node(node_id)

    def vip(self, service: str) -> str | None:
        return self.networking.vips.vip(service)

    def tasks_on(self, node_id: str) -> list[Task]:
        """Tasks that hold ``node_id``: placed there and not over, or migrating away from it."""
        return self._held.tasks(node_id)

    def pending_tasks(self) -> list[Task]:
        return [t for t in self._held.waiting() if t.state == PENDING]

    def placeable_tasks(self) -> list[Task]:
        """What the scheduler should place: pending tasks, and lost ones still wanted.

        A lost task (its node died or left) keeps its id and generation; placing it
        makes a new generation, so a report from the old node is refused (fencing).
        """
        return self._held.waiting()

    def failures(self, task_id: str) -> tuple[tuple[str, float], ...]:
        """Recorded failures of ``task_id``: (node id, leader wall time), oldest first."""
        return self._history.failures(task_id)

    def group_members(self, group: str) -> list[Task]:
        """Every task of a service: the one whose id names it and those that carry it."""
        return [t for t in self.tasks() if group_of(t) == group]

    def usage(self, node_id: str) -> NodeUsage:
        return self._held.usage(node_id)

    def usages(self) -> dict[str, NodeUsage]:
        return {node_id: self.usage(node_id) for node_id in sorted(self._nodes)}

    def task_for_key(self, idempotency_key: str) -> Task | None:
        task_id = self._history.task_for_key(idempotency_key)
        return self._tasks.get(task_id) if task_id is not None else None

    def counts_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self._tasks.values():
            counts[task.state] = counts.get(task.state, 0) + 1
        return dict(sorted(counts.items()))
