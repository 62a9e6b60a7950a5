"""What the state machine refuses: the checks a handler runs before it changes anything.

Pure functions of the values involved (a task, a node, the reservations), so
each rule is stated once and the machine's handlers stay short. Each returns a
sentence saying why the command cannot be applied, or "" when it can.
"""

from __future__ import annotations

from orion.domain.humanize import format_bytes, format_cpu, format_ports, format_selectors, format_volumes
from orion.domain.model import (
    DESIRED_RUN,
    NODE_LEFT,
    NodeInfo,
    Task,
    TaskSpec,
)
from orion.state.commands import FinishMigration, Placement
from orion.state.reservations import Reservations


def spec_problem(spec: TaskSpec) -> str:
    """A spec the machine must refuse to keep its books sound, or ""."""
    if not spec.image:
        return "a task needs an image"
    if spec.memory < 0 or spec.cpu_millis < 0:
        return "memory and cpu must not be negative"
    seen: set[tuple[int, str]] = set()
    for port in spec.ports:
        if port.host_port:
            if (port.host_port, port.protocol) in seen:
                return f"host port {port.host_port}/{port.protocol} is requested twice"
            seen.add((port.host_port, port.protocol))
    return ""


def placement_problem(task: Task | None, p: Placement, node: NodeInfo | None, held: Reservations,
                      waiting: tuple[str, ...]) -> str:
    """Why putting ``task`` (in one of the ``waiting`` states) on ``node`` cannot be accepted now."""
    if task is None:
        return f"task {p.task_id} does not exist"
    if task.state not in waiting:
        return f"task {task.id} is {task.state}, not waiting for a node"
    if task.desired != DESIRED_RUN:
        return f"task {task.id} is wanted stopped"
    if p.generation != task.generation:
        return f"stale plan: task {task.id} is at generation {task.generation}, plan had {p.generation}"
    if node is None:
        return f"node {p.node_id} is not registered"
    if not node.schedulable:
        return f"node {node.id} is {node.status if node.ready else 'not ready: ' + node.ready_reason}"
    spec = task.spec
    if not set(spec.node_selectors) <= set(node.labels):
        return f"node {node.id} does not match selector {format_selectors(spec.node_selectors)}"
    missing = spec.host_volumes - set(node.host_volumes)
    if missing:
        return f"node {node.id} does not declare host volume {format_volumes(missing)}"
    devices = spec.container.host_devices - set(node.host_devices)
    if devices:
        return f"node {node.id} does not hand out host device {', '.join(sorted(devices))}"
    if spec.container.privileged and not node.allow_privileged:
        return f"node {node.id} does not allow privileged containers"
    free = held.free(node.id, node.capacity)
    if spec.memory > free.memory:
        return (f"node {node.id} has {format_bytes(free.memory)} free memory, "
                f"task needs {format_bytes(spec.memory)}")
    if spec.cpu_millis > free.cpu_millis:
        return (f"node {node.id} has {format_cpu(free.cpu_millis)} free, "
                f"task needs {format_cpu(spec.cpu_millis)}")
    taken = spec.static_host_ports & held.ports_taken(node.id)
    if taken:
        return f"host port {format_ports(taken)} already taken on node {node.id}"
    return ""


def migration_problem(task: Task | None, leaving: NodeInfo | None, p: Placement) -> str:
    """What only a drain's migration must satisfy, before the placement checks:
    one migration at a time per task, and only away from a node that is draining."""
    if task is None:
        return f"task {p.task_id} does not exist"
    if task.migrating_from is not None:
        return f"task {task.id} is already migrating from {task.migrating_from.node_id}"
    if leaving is None or leaving.status != NODE_LEFT:
        return f"task {task.id} is not on a draining node"
    if p.node_id == task.node_id:
        return f"task {task.id} cannot migrate to the node it leaves"
    return ""


def finish_problem(task: Task | None, cmd: FinishMigration) -> str:
    if task is None:
        return f"task {cmd.task_id} does not exist"
    if task.migrating_from is None:
        return f"task {task.id} is not migrating"
    if task.generation != cmd.generation:
        return f"stale decision: task {task.id} is at generation {task.generation}, decision had {cmd.generation}"
    return ""

