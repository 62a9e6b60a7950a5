"""What the state machine refuses: the checks a handler runs before it changes anything.

Pure functions of the values involved (a task, a node, the reservations), so
each rule is stated once and the machine's handlers stay short. Each returns a
sentence saying why the command cannot be applied, or "" when it can.
"""

from __future__ import annotations

from collections.abc import Callable

from orion.domain import cron
from orion.domain.humanize import format_bytes, format_cpu, format_ports, format_selectors, format_volumes
from orion.domain.job import OVERLAPS
from orion.domain.model import (
    DESIRED_RUN,
    NODE_LEFT,
    NodeInfo,
    Task,
    TaskSpec,
)
from orion.domain.service import GLOBAL, JOB, MODES, ServiceSpec, StartReplica, StopReplica, eligible
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
    if task.pin and node.id != task.pin:
        return f"task {task.id} belongs to node {task.pin} (a global service's replica)"
    if not set(spec.node_selectors) <= set(node.labels):
        return f"node {node.id} does not match selector {format_selectors(spec.node_selectors)}"
    unmet = [str(c) for c in spec.constraints if not c.matches(node)]
    if unmet:
        return f"node {node.id} does not satisfy {', '.join(unmet)}"
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
    if task.service and spec.max_per_node:
        here = sum(1 for t in held.tasks(node.id) if t.service == task.service and t.id != task.id
                   and t.desired == DESIRED_RUN and t.node_id == node.id)
        if here >= spec.max_per_node:
            return f"node {node.id} runs {here} replicas of {task.service} already (maxPerNode {spec.max_per_node})"
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



def mode_problem(spec: ServiceSpec) -> str:
    """A mode or job block the machine must refuse (the API refuses them first, naming the field)."""
    if spec.mode not in MODES:
        return f"unknown mode {spec.mode!r}; expected one of {', '.join(MODES)}"
    job = spec.job
    if spec.mode != JOB or job is None:
        return ""
    if job.completions < 1 or job.parallelism < 1 or job.retries < 0 or job.backoff < 0 or job.deadline < 0:
        return "a job needs completions and parallelism of at least 1, and no negative retries, backoff or deadline"
    if job.overlap not in OVERLAPS:
        return f"unknown overlap {job.overlap!r}; expected one of {', '.join(OVERLAPS)}"
    try:
        if job.schedule:
            cron.parse(job.schedule)
        cron.zone(job.zone)
    except cron.CronError as exc:
        return str(exc)
    return ""


def start_problem(spec: ServiceSpec, version: int, start: StartReplica, node: NodeInfo | None,
                  held: set[tuple[str, int]]) -> str:
    """Why a deployment plan's ``start`` is not this deployment's to make now, or "". ``held``:
    the slots (node, slot) wanted replicas hold, when only empty slots may be filled (a refill)."""
    if start.version != version:
        return f"version {start.version} is not this deployment's ({version})"
    if spec.mode == GLOBAL:
        if node is None or not eligible(spec, node):
            return f"node {start.node or '(none)'} is not one {spec.name} runs on"
        if (start.node, 0) in held:
            return f"node {start.node} holds a wanted replica of {spec.name}"
        return ""
    if start.node or not 0 <= start.slot < spec.count:
        return f"slot {start.slot} is not one of {spec.name}'s"
    if ("", start.slot) in held:
        return f"slot {start.slot} of {spec.name} is held by a wanted replica"
    return ""


def release_problem(spec: ServiceSpec, stops: tuple[StopReplica, ...], replicas: dict[str, Task],
                    node: Callable[[str], NodeInfo | None]) -> str:
    """Why a succeeded deployment may not stop these replicas, or "": only a global service's
    replicas on nodes no longer eligible are stopped outside a rollout."""
    for stop in stops:
        task = replicas.get(stop.id)
        where = node(task.pin) if task is not None and task.pin else None
        if spec.mode != GLOBAL or task is None or (where is not None and eligible(spec, where)):
            return f"replica {stop.id} is not on a node {spec.name} has left"
    return ""
