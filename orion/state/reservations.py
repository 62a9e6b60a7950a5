"""What every node holds, which tasks wait for one, and every task in creation
order, kept incrementally so a placement check costs O(1) and the loops'
questions do not cost a sort of every task.

Derived from the tasks (never snapshotted): a task in a holding state holds its
node's memory, CPU and static host ports; a migrating task also still holds
its previous node (its old copy runs there until the migration finishes, see
``Task.migrating_from``), so that node's reconciler sees the task among its own.

Every reconciler and the scheduler ask after each apply (``tasks_on``,
``placeable_tasks``); answering by scanning and sorting every task made them the
largest cost of a busy leader (bench/results/before-leader.svg). So a node's
tasks, and all tasks, are kept as the task values themselves, in creation order
(a change moves one task: a binary search, not a sort), and the waiting tasks
are a set of their own.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from orion.domain.model import ASSIGNED, DESIRED_RUN, LOST, PENDING, RUNNING, STOPPING, NodeUsage, Resources, Task

# Placed tasks in these states hold their node's memory, CPU and host ports.
HOLDING = frozenset({ASSIGNED, RUNNING, STOPPING})
# Tasks in these states, still wanted, wait for the scheduler (a lost one keeps its id).
WAITING = frozenset({PENDING, LOST})


def creation_order(task: Task) -> tuple[int, str]:
    return task.created_index, task.id


def held_nodes(task: Task) -> list[str]:
    """The nodes ``task`` holds: its own while placed, and its old one while it migrates."""
    nodes = [task.node_id] if task.state in HOLDING and task.node_id else []
    if task.migrating_from is not None and task.migrating_from.node_id not in nodes:
        nodes.append(task.migrating_from.node_id)
    return nodes


def _remove(ordered: list[Task], task: Task) -> None:
    """Drop ``task`` (found by its creation order) from a list kept in that order."""
    at = bisect_left(ordered, creation_order(task), key=creation_order)
    if at < len(ordered) and ordered[at].id == task.id:
        del ordered[at]


class Reservations:
    """Per node: resources used, static ports taken (by which task), tasks held; the tasks waiting.

    Told of every change of a task: ``release`` of its old value, ``hold`` of its new one
    (a purged task is only released).
    """

    def __init__(self) -> None:
        self._used: dict[str, Resources] = {}
        self._ports: dict[str, dict[tuple[int, str], str]] = {}  # node -> (port, proto) -> task id
        self._on_node: dict[str, list[Task]] = {}  # in creation order
        self._waiting: dict[str, Task] = {}
        self._all: list[Task] = []  # every task, in creation order

    def hold(self, task: Task) -> None:
        for node_id in held_nodes(task):
            self._used[node_id] = self._used.get(node_id, Resources()) + task.spec.resources
            ports = self._ports.setdefault(node_id, {})
            for key in task.spec.static_host_ports:
                ports[key] = task.id
            insort(self._on_node.setdefault(node_id, []), task, key=creation_order)
        if task.state in WAITING and task.desired == DESIRED_RUN:
            self._waiting[task.id] = task
        insort(self._all, task, key=creation_order)

    def release(self, task: Task) -> None:
        for node_id in held_nodes(task):
            self._used[node_id] = self._used[node_id] - task.spec.resources
            ports = self._ports.get(node_id, {})
            for key in task.spec.static_host_ports:
                if ports.get(key) == task.id:
                    del ports[key]
            _remove(self._on_node[node_id], task)
        self._waiting.pop(task.id, None)
        _remove(self._all, task)

    def free(self, node_id: str, capacity: Resources) -> Resources:
        return capacity - self._used.get(node_id, Resources())

    def ports_taken(self, node_id: str) -> frozenset[tuple[int, str]]:
        return frozenset(self._ports.get(node_id, {}))

    def tasks(self, node_id: str) -> list[Task]:
        """The tasks holding ``node_id``, in creation order."""
        return list(self._on_node.get(node_id, ()))

    def all(self) -> list[Task]:
        """Every task, in creation order."""
        return list(self._all)

    def waiting(self) -> list[Task]:
        """Tasks waiting for a node (pending, or lost and still wanted), in creation order."""
        return sorted(self._waiting.values(), key=creation_order)

    def usage(self, node_id: str) -> NodeUsage:
        return NodeUsage(self._used.get(node_id, Resources()), self.ports_taken(node_id))
