"""What the state machine refuses: the checks a handler runs before it changes anything.

Pure functions of the values involved (a task, a node, the reservations), so
each rule is stated once and the machine's handlers stay short. Each returns the
:class:`Refused` saying why the command cannot be applied, or None when it can.
"""

from __future__ import annotations

from collections.abc import Callable

from orion.domain import cron
from orion.domain.humanize import format_bytes, format_cpu, format_ports, format_selectors, format_volumes
from orion.domain.job import OVERLAPS
from orion.domain.model import (
    COMPLETED,
    DESIRED_RUN,
    FAILED,
    LOST,
    NODE_LEFT,
    PENDING,
    RUNNING,
    STOPPED,
    TERMINAL_STATES,
    NodeInfo,
    Task,
    TaskSpec,
)
from orion.domain.service import GLOBAL, JOB, MODES, ServiceSpec, StartReplica, StopReplica, eligible
from orion.state.commands import FinishMigration, Placement, ReportTaskState, RestartTask
from orion.state.reservations import Reservations
from orion.state.results import RefusalKind, Refused

# What a node may report; the others are the controller's to set.
_REPORTABLE = frozenset({RUNNING, FAILED, COMPLETED, STOPPED, LOST})

INVALID, NOT_FOUND, WRONG_STATE, STALE, NO_FIT = (RefusalKind.INVALID, RefusalKind.NOT_FOUND,
                                                   RefusalKind.WRONG_STATE, RefusalKind.STALE, RefusalKind.NO_FIT)


def no_task(task_id: str) -> Refused:
    return Refused(NOT_FOUND, f"task {task_id} does not exist")


def stale_report(task: Task, node_id: str, generation: int) -> Refused | None:
    """Why a node's report (a state, a health) about an old placement of ``task`` is refused."""
    return (f"stale report: task {task.id} is placed on {task.node_id} at generation {task.generation}, "
            f"report is from {node_id} at generation {generation}")


def spec_problem(spec: TaskSpec) -> Refused | None:
    """A spec the machine must refuse to keep its books sound, or None."""
    if not spec.image:
        return Refused(INVALID, "a task needs an image")
    if spec.memory < 0 or spec.cpu_millis < 0:
        return Refused(INVALID, "memory and cpu must not be negative")
    seen: set[tuple[int, str]] = set()
    for port in spec.ports:
        if port.host_port:
            if (port.host_port, port.protocol) in seen:
                return Refused(INVALID, f"host port {port.host_port}/{port.protocol} is requested twice")
            seen.add((port.host_port, port.protocol))
    return None


def placement_problem(task: Task | None, p: Placement, node: NodeInfo | None, held: Reservations,
                      waiting: tuple[str, ...]) -> Refused | None:
    """Why putting ``task`` (in one of the ``waiting`` states) on ``node`` cannot be accepted now."""
    if task is None:
        return no_task(p.task_id)
    if task.state not in waiting:
        return Refused(WRONG_STATE, f"task {task.id} is {task.state}, not waiting for a node")
    if task.desired != DESIRED_RUN:
        return Refused(WRONG_STATE, f"task {task.id} is wanted stopped")
    if p.generation != task.generation:
        return Refused(STALE, f"stale plan: task {task.id} is at generation {task.generation}, "
                              f"plan had {p.generation}")
    if node is None:
        return Refused(NOT_FOUND, f"node {p.node_id} is not registered")
    if not node.schedulable:
        why = node.status if node.ready else f"not ready: {node.ready_reason}"
        return Refused(NO_FIT, f"node {node.id} is {why}")
    spec = task.spec
    if task.pin and node.id != task.pin:
        return Refused(NO_FIT, f"task {task.id} belongs to node {task.pin} (a global service's replica)")
    if not set(spec.node_selectors) <= set(node.labels):
        return Refused(NO_FIT, f"node {node.id} does not match selector {format_selectors(spec.node_selectors)}")
    unmet = [str(c) for c in spec.constraints if not c.matches(node)]
    if unmet:
        return Refused(NO_FIT, f"node {node.id} does not satisfy {', '.join(unmet)}")
    missing = spec.host_volumes - set(node.host_volumes)
    if missing:
        return Refused(NO_FIT, f"node {node.id} does not declare host volume {format_volumes(missing)}")
    devices = spec.container.host_devices - set(node.host_devices)
    if devices:
        return Refused(NO_FIT, f"node {node.id} does not hand out host device {', '.join(sorted(devices))}")
    if spec.container.privileged and not node.allow_privileged:
        return Refused(NO_FIT, f"node {node.id} does not allow privileged containers")
    free = held.free(node.id, node.capacity)
    if spec.memory > free.memory:
        return Refused(NO_FIT, f"node {node.id} has {format_bytes(free.memory)} free memory, "
                       f"task needs {format_bytes(spec.memory)}")
    if spec.cpu_millis > free.cpu_millis:
        return Refused(NO_FIT, f"node {node.id} has {format_cpu(free.cpu_millis)} free, "
                       f"task needs {format_cpu(spec.cpu_millis)}")
    taken = spec.static_host_ports & held.ports_taken(node.id)
    if taken:
        return Refused(NO_FIT, f"host port {format_ports(taken)} already taken on node {node.id}")
    if task.service and spec.max_per_node:
        here = sum(1 for t in held.tasks(node.id) if t.service == task.service and t.id != task.id
                   and t.desired == DESIRED_RUN and t.node_id == node.id)
        if here >= spec.max_per_node:
            return Refused(NO_FIT, f"node {node.id} runs {here} replicas of {task.service} already "
                                   f"(maxPerNode {spec.max_per_node})")
    return None


def migration_problem(task: Task | None, leaving: NodeInfo | None, p: Placement) -> Refused | None:
    """What only a drain's migration must satisfy, before the placement checks:
    one migration at a time per task, and only away from a node that is draining."""
    if task is None:
        return no_task(p.task_id)
    if task.migrating_from is not None:
        return Refused(WRONG_STATE, f"task {task.id} is already migrating from {task.migrating_from.node_id}")
    if leaving is None or leaving.status != NODE_LEFT:
        return Refused(WRONG_STATE, f"task {task.id} is not on a draining node")
    if p.node_id == task.node_id:
        return Refused(INVALID, f"task {task.id} cannot migrate to the node it leaves")
    return None


def report_problem(task: Task | None, cmd: ReportTaskState) -> Refused | None:
    """A node's report of its container: only what it observes, of the task's current placement,
    while the task is placed (not yet pending, not over)."""
    if task is None:
        return no_task(cmd.task_id)
    if cmd.state not in _REPORTABLE:
        return Refused(INVALID, f"a node cannot report state {cmd.state!r}")
    if task.node_id != cmd.node_id or task.generation != cmd.generation:
        return Refused(STALE, stale_report(task, cmd.node_id, cmd.generation))
    if task.state in TERMINAL_STATES or task.state == PENDING:
        return Refused(WRONG_STATE, f"task {task.id} is already {task.state}")
    return None


def restart_problem(task: Task | None, cmd: RestartTask) -> Refused | None:
    """The restart policy's decision: only for a task that ended (and is wanted), at its generation."""
    if task is None:
        return no_task(cmd.task_id)
    if task.state not in (FAILED, COMPLETED) or task.desired != DESIRED_RUN:
        return Refused(WRONG_STATE, f"task {task.id} is {task.state} (wanted {task.desired}), "
                                    "not waiting for a restart")
    if task.generation != cmd.generation:
        return Refused(STALE, f"stale restart: task {task.id} is at generation {task.generation}, "
                              f"decision had {cmd.generation}")
    return None


def finish_problem(task: Task | None, cmd: FinishMigration) -> Refused | None:
    if task is None:
        return no_task(cmd.task_id)
    if task.migrating_from is None:
        return Refused(WRONG_STATE, f"task {task.id} is not migrating")
    if task.generation != cmd.generation:
        return Refused(STALE, f"stale decision: task {task.id} is at generation {task.generation}, "
                              f"decision had {cmd.generation}")
    return None


def mode_problem(spec: ServiceSpec) -> Refused | None:
    """A mode or job block the machine must refuse (the API refuses them first, naming the field)."""
    if spec.mode not in MODES:
        return Refused(INVALID, f"unknown mode {spec.mode!r}; expected one of {', '.join(MODES)}")
    job = spec.job
    if spec.mode != JOB or job is None:
        return None
    if job.completions < 1 or job.parallelism < 1 or job.retries < 0 or job.backoff < 0 or job.deadline < 0:
        return Refused(INVALID, "a job needs completions and parallelism of at least 1, "
                                "and no negative retries, backoff or deadline")
    if job.overlap not in OVERLAPS:
        return Refused(INVALID, f"unknown overlap {job.overlap!r}; expected one of {', '.join(OVERLAPS)}")
    try:
        if job.schedule:
            cron.parse(job.schedule)
        cron.zone(job.zone)
    except cron.CronError as exc:
        return Refused(INVALID, str(exc))
    return None


def start_problem(spec: ServiceSpec, version: int, start: StartReplica, node: NodeInfo | None,
                  held: set[tuple[str, int]]) -> Refused | None:
    """Why a deployment plan's ``start`` is not this deployment's to make now, or None. ``held``:
    the slots (node, slot) wanted replicas hold, when only empty slots may be filled (a refill)."""
    if start.version != version:
        return Refused(INVALID, f"version {start.version} is not this deployment's ({version})")
    if spec.mode == GLOBAL:
        if node is None or not eligible(spec, node):
            return Refused(INVALID, f"node {start.node or '(none)'} is not one {spec.name} runs on")
        if (start.node, 0) in held:
            return Refused(WRONG_STATE, f"node {start.node} holds a wanted replica of {spec.name}")
        return None
    if start.node or not 0 <= start.slot < spec.count:
        return Refused(INVALID, f"slot {start.slot} is not one of {spec.name}'s")
    if ("", start.slot) in held:
        return Refused(WRONG_STATE, f"slot {start.slot} of {spec.name} is held by a wanted replica")
    return None


def release_problem(spec: ServiceSpec, stops: tuple[StopReplica, ...], replicas: dict[str, Task],
                    node: Callable[[str], NodeInfo | None]) -> Refused | None:
    """Why a succeeded deployment may not stop these replicas, or None: only a global service's
    replicas on nodes no longer eligible are stopped outside a rollout."""
    for stop in stops:
        task = replicas.get(stop.id)
        where = node(task.pin) if task is not None and task.pin else None
        if spec.mode != GLOBAL or task is None or (where is not None and eligible(spec, where)):
            return Refused(WRONG_STATE, f"replica {stop.id} is not on a node {spec.name} has left")
    return None
