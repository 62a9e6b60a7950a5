"""What every node holds, kept incrementally so a placement check costs O(1).

Derived from the tasks (never snapshotted): a task in a holding state holds its
node's memory, CPU and static host ports; a migrating task also still holds
its previous node (its old copy runs there until the migration finishes, see
``Task.migrating_from``), so that node's reconciler sees the task among its own.
"""

from __future__ import annotations

from orion.model import ASSIGNED, RUNNING, STOPPING, NodeUsage, Resources, Task

# Placed tasks in these states hold their node's memory, CPU and host ports.
HOLDING = frozenset({ASSIGNED, RUNNING, STOPPING})


def held_nodes(task: Task) -> list[str]:
    """The nodes ``task`` holds: its own while placed, and its old one while it migrates."""
    nodes = [task.node_id] if task.state in HOLDING and task.node_id else []
    if task.migrating_from is not None and task.migrating_from.node_id not in nodes:
        nodes.append(task.migrating_from.node_id)
    return nodes


class Reservations:
    """Per node: resources used, static ports taken (by which task), task ids held."""

    def __init__(self) -> None:
        self._used: dict[str, Resources] = {}
        self._ports: dict[str, dict[tuple[int, str], str]] = {}  # node -> (port, proto) -> task id
        self._on_node: dict[str, set[str]] = {}

    def hold(self, task: Task) -> None:
        for node_id in held_nodes(task):
            self._used[node_id] = self._used.get(node_id, Resources()) + task.spec.resources
            ports = self._ports.setdefault(node_id, {})
            for key in task.spec.static_host_ports:
                ports[key] = task.id
            self._on_node.setdefault(node_id, set()).add(task.id)

    def release(self, task: Task) -> None:
        for node_id in held_nodes(task):
            self._used[node_id] = self._used[node_id] - task.spec.resources
            ports = self._ports.get(node_id, {})
            for key in task.spec.static_host_ports:
                if ports.get(key) == task.id:
                    del ports[key]
            self._on_node[node_id].discard(task.id)

    def free(self, node_id: str, capacity: Resources) -> Resources:
        return capacity - self._used.get(node_id, Resources())

    def ports_taken(self, node_id: str) -> frozenset[tuple[int, str]]:
        return frozenset(self._ports.get(node_id, {}))

    def task_ids(self, node_id: str) -> set[str]:
        return self._on_node.get(node_id, set())

    def usage(self, node_id: str) -> NodeUsage:
        return NodeUsage(self._used.get(node_id, Resources()), self.ports_taken(node_id))
