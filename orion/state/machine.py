"""The replicated state machine: what every node computes from the Raft log.

It is deterministic — no clock, no I/O, no randomness — so every replica that
applies the same log reaches the same state. Commands are dispatched in one
place (:meth:`StateMachine.apply`); each handler checks everything before it
changes anything, so a refused command leaves the state untouched.

This is the single writer of placements (Nomad's plan applier): the leader's
scheduler proposes, and :meth:`_place` re-checks each placement against the
replicated reservations in integers, refusing what no longer fits. Reservations
are kept incrementally per node so a check costs O(1), not O(tasks).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from orion.control.placement import NodeUsage, format_bytes, format_cpu, format_ports, format_selectors
from orion.model import (
    ASSIGNED,
    COMPLETED,
    DESIRED_RUN,
    DESIRED_STOP,
    FAILED,
    LOST,
    NODE_ALIVE,
    NODE_RESTARTING,
    NODE_STATES,
    NODE_SUSPECT,
    PENDING,
    RUNNING,
    STOPPED,
    STOPPING,
    TERMINAL_STATES,
    NodeInfo,
    Resources,
    Task,
    TaskSpec,
)
from orion.state.commands import (
    Command,
    CreateTask,
    MarkUnschedulable,
    Placement,
    PlaceTasks,
    RegisterNode,
    ReportTaskState,
    RestartTask,
    ScaleTask,
    SetNodeStatus,
    StopTask,
    decode,
)

# Enough to cover every retry window we have (a client retries for seconds, the
# write path for one election) many times over, small enough to snapshot.
DEFAULT_REMEMBERED_REQUESTS = 10_000

SNAPSHOT_VERSION = 1

# Failure records kept per task (node, leader wall time): enough for the restart
# limit and the down-ranking window (orion/control/restart.py), bounded for snapshots.
MAX_FAILURES_KEPT = 20
# A service may not be scaled past this in one command (the API's own bound).
MAX_SCALE = 1000

# Placed tasks in these states hold their node's memory, CPU and host ports.
_HOLDING = frozenset({ASSIGNED, RUNNING, STOPPING})
# Node statuses from which a node may announce its own restart (``restarting``).
_MAY_RESTART = frozenset({NODE_ALIVE, NODE_SUSPECT, NODE_RESTARTING})
# What a node may report; the others are the controller's to set.
_REPORTABLE = frozenset({RUNNING, FAILED, COMPLETED, STOPPED, LOST})


def _refused(error: str) -> dict[str, Any]:
    return {"ok": False, "error": error}


class StateMachine:
    """Tasks, nodes and reservations, changed only by :meth:`apply`.

    Not thread-safe: the store applies and reads it under one lock.
    """

    def __init__(self, remembered_requests: int = DEFAULT_REMEMBERED_REQUESTS) -> None:
        self._tasks: dict[str, Task] = {}
        self._nodes: dict[str, NodeInfo] = {}
        self._keys: dict[str, str] = {}  # idempotency key -> task id
        self._requests: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._remembered = remembered_requests
        # Reservations, derived from tasks in _HOLDING states; never snapshotted.
        self._used: dict[str, Resources] = {}
        self._ports: dict[str, dict[tuple[int, str], str]] = {}  # node -> (port, proto) -> task id
        self._on_node: dict[str, set[str]] = {}
        # task id -> ((node id, at), ...): where and when its containers failed (RestartTask).
        self._failures: dict[str, tuple[tuple[str, float], ...]] = {}
        self._handlers: dict[str, Callable[[Any, int], dict[str, Any]]] = {
            RegisterNode.TYPE: self._register_node,
            SetNodeStatus.TYPE: self._set_node_status,
            CreateTask.TYPE: self._create_task,
            PlaceTasks.TYPE: self._place_tasks,
            MarkUnschedulable.TYPE: self._mark_unschedulable,
            ReportTaskState.TYPE: self._report_task_state,
            StopTask.TYPE: self._stop_task,
            RestartTask.TYPE: self._restart_task,
            ScaleTask.TYPE: self._scale_task,
        }

    # -- the one way in ------------------------------------------------------------
    def apply(self, command: Command | str | bytes, index: int) -> dict[str, Any]:
        """Apply one committed log entry; return a JSON-able result.

        A command this version cannot read (a newer node wrote it mid-upgrade) is
        refused, not raised: a replica must never crash on the log. A repeated
        ``request_id`` gets the first result back without applying again.
        """
        if isinstance(command, bytes | str):
            text = command.decode("utf-8", "replace") if isinstance(command, bytes) else command
            try:
                command = decode(text)
            except Exception as exc:  # UnknownCommand, or a known type with a malformed body
                return _refused(f"command not understood: {exc}")
        handler = self._handlers.get(getattr(command, "TYPE", ""))
        if handler is None:
            return _refused(f"unknown command type {getattr(command, 'TYPE', type(command).__name__)!r}")
        rid = command.request_id
        if rid and rid in self._requests:
            return copy.deepcopy(self._requests[rid])
        result = handler(command, index)
        if rid:
            self._requests[rid] = copy.deepcopy(result)
            while len(self._requests) > self._remembered:
                self._requests.popitem(last=False)
        return result

    # -- nodes -----------------------------------------------------------------------
    def _register_node(self, cmd: RegisterNode, index: int) -> dict[str, Any]:
        node = NodeInfo.from_dict(cmd.node.to_dict())  # canonical form, as a restore would give
        if not node.id:
            return _refused("a node needs an id")
        if node.status not in NODE_STATES:
            return _refused(f"unknown node status {node.status!r}")
        old = self._nodes.get(node.id)
        status_index = old.status_index if old is not None and old.status == node.status else index
        self._nodes[node.id] = replace(node, status_index=status_index)
        return {"ok": True, "node": self._nodes[node.id].to_dict(), "created": old is None}

    def _set_node_status(self, cmd: SetNodeStatus, index: int) -> dict[str, Any]:
        node = self._nodes.get(cmd.node_id)
        if node is None:
            return _refused(f"node {cmd.node_id!r} is not registered")
        if cmd.status not in NODE_STATES:
            return _refused(f"unknown node status {cmd.status!r}; expected one of {', '.join(NODE_STATES)}")
        if cmd.status == NODE_RESTARTING and node.status not in _MAY_RESTART:
            # Only the node itself announces a restart, and only from a life the cluster still
            # counts on: a drained (left) or dead node's tasks are gone already.
            return _refused(f"node {node.id} is {node.status}: only an alive node can announce a restart")
        changed = node.status != cmd.status
        if changed:
            node = self._nodes[node.id] = replace(node, status=cmd.status, status_index=index)
        return {"ok": True, "node": node.to_dict(), "changed": changed}

    # -- tasks -----------------------------------------------------------------------
    def _create_task(self, cmd: CreateTask, index: int) -> dict[str, Any]:
        if cmd.idempotency_key and cmd.idempotency_key in self._keys:
            existing = self._tasks[self._keys[cmd.idempotency_key]]
            return {"ok": True, "task": existing.to_dict(), "created": False}
        spec = TaskSpec.from_dict(cmd.spec.to_dict())  # canonical form, as a restore would give
        problem = _spec_problem(spec)
        if not cmd.task_id:
            problem = "a task needs an id"
        elif cmd.task_id in self._tasks:
            problem = f"task {cmd.task_id} already exists"
        if problem:
            return _refused(problem)
        task = Task(id=cmd.task_id, spec=spec, created_index=index, updated_index=index)
        self._tasks[task.id] = task
        if cmd.idempotency_key:
            self._keys[cmd.idempotency_key] = task.id
        return {"ok": True, "task": task.to_dict(), "created": True}

    def _place_tasks(self, cmd: PlaceTasks, index: int) -> dict[str, Any]:
        placed: list[str] = []
        refused: dict[str, str] = {}
        for placement in cmd.placements:
            problem = self._placement_problem(placement)
            if problem:
                refused[placement.task_id] = problem
                continue
            task = self._tasks[placement.task_id]
            self._set_task(replace(task, state=ASSIGNED, node_id=placement.node_id,
                                   generation=task.generation + 1, reason="", container_id=None,
                                   host_ports=(), exit_code=None, updated_index=index))
            placed.append(task.id)
        return {"ok": True, "placed": placed, "refused": refused}

    def _placement_problem(self, p: Placement, waiting: tuple[str, ...] = (PENDING, LOST)) -> str:
        """Why this placement cannot be accepted now, or "" if it can."""
        task = self._tasks.get(p.task_id)
        if task is None:
            return f"task {p.task_id} does not exist"
        if task.state not in waiting:
            return f"task {task.id} is {task.state}, not waiting for a node"
        if task.desired != DESIRED_RUN:
            return f"task {task.id} is wanted stopped"
        if p.generation != task.generation:
            return f"stale plan: task {task.id} is at generation {task.generation}, plan had {p.generation}"
        node = self._nodes.get(p.node_id)
        if node is None:
            return f"node {p.node_id} is not registered"
        if node.status != NODE_ALIVE:
            return f"node {node.id} is {node.status}"
        spec = task.spec
        if not set(spec.node_selectors) <= set(node.labels):
            return f"node {node.id} does not match selector {format_selectors(spec.node_selectors)}"
        free = node.capacity - self._used.get(node.id, Resources())
        if spec.memory > free.memory:
            return (f"node {node.id} has {format_bytes(free.memory)} free memory, "
                    f"task needs {format_bytes(spec.memory)}")
        if spec.cpu_millis > free.cpu_millis:
            return (f"node {node.id} has {format_cpu(free.cpu_millis)} free, "
                    f"task needs {format_cpu(spec.cpu_millis)}")
        taken = spec.static_host_ports & self._ports.get(node.id, {}).keys()
        if taken:
            return f"host port {format_ports(taken)} already taken on node {node.id}"
        return ""

    def _mark_unschedulable(self, cmd: MarkUnschedulable, index: int) -> dict[str, Any]:
        task = self._tasks.get(cmd.task_id)
        if task is None:
            return _refused(f"task {cmd.task_id} does not exist")
        if task.state not in (PENDING, LOST) or task.desired != DESIRED_RUN:
            return _refused(f"task {task.id} is {task.state}, not waiting for a node")
        if task.reason != cmd.reason:
            task = replace(task, reason=cmd.reason, updated_index=index)
            self._set_task(task)
        return {"ok": True, "task": task.to_dict()}

    def _report_task_state(self, cmd: ReportTaskState, index: int) -> dict[str, Any]:
        task = self._tasks.get(cmd.task_id)
        if task is None:
            return _refused(f"task {cmd.task_id} does not exist")
        if cmd.state not in _REPORTABLE:
            return _refused(f"a node cannot report state {cmd.state!r}")
        if task.node_id != cmd.node_id or task.generation != cmd.generation:
            return _refused(f"stale report: task {task.id} is placed on {task.node_id} at generation "
                            f"{task.generation}, report is from {cmd.node_id} at generation {cmd.generation}")
        if task.state in TERMINAL_STATES or task.state == PENDING:
            return _refused(f"task {task.id} is already {task.state}")
        state = cmd.state
        if state == RUNNING and task.state == STOPPING:
            state = STOPPING  # the container is still up; the user's stop stands
        restarted = (state == RUNNING and task.container_id is not None
                     and cmd.container_id is not None and cmd.container_id != task.container_id)
        self._set_task(replace(
            task,
            state=state,
            container_id=cmd.container_id if cmd.container_id is not None else task.container_id,
            host_ports=tuple(sorted(cmd.host_ports)) if cmd.host_ports else task.host_ports,
            exit_code=cmd.exit_code,
            reason=cmd.reason,
            restarts=task.restarts + 1 if restarted else task.restarts,
            updated_index=index,
        ))
        return {"ok": True, "task": self._tasks[task.id].to_dict()}

    def _stop_task(self, cmd: StopTask, index: int) -> dict[str, Any]:
        task = self._tasks.get(cmd.task_id)
        if task is None:
            return _refused(f"task {cmd.task_id} does not exist")
        if task.state == PENDING:
            state = STOPPED  # never placed: nothing to tear down
        elif task.state in (ASSIGNED, RUNNING):
            state = STOPPING  # its node's reconciler stops the container and reports stopped
        else:
            state = task.state  # already stopping, or over: only the wish changes
        if (task.desired, task.state) != (DESIRED_STOP, state):
            self._set_task(replace(task, desired=DESIRED_STOP, state=state, updated_index=index))
        return {"ok": True, "task": self._tasks[task.id].to_dict()}

    def _restart_task(self, cmd: RestartTask, index: int) -> dict[str, Any]:
        """Restart policy, decided by the leader: again on the same node, or back to pending.

        A local restart that no longer fits (the node went away or filled up) falls
        back to pending rather than being refused, so the decision still moves the task.
        """
        task = self._tasks.get(cmd.task_id)
        if task is None:
            return _refused(f"task {cmd.task_id} does not exist")
        if task.state not in (FAILED, COMPLETED) or task.desired != DESIRED_RUN:
            return _refused(f"task {task.id} is {task.state} (wanted {task.desired}), not waiting for a restart")
        if task.generation != cmd.generation:
            return _refused(f"stale restart: task {task.id} is at generation {task.generation}, "
                            f"decision had {cmd.generation}")
        if task.node_id:
            kept = self._failures.get(task.id, ()) + ((task.node_id, float(cmd.at)),)
            self._failures[task.id] = kept[-MAX_FAILURES_KEPT:]
        common = dict(container_id=None, host_ports=(), exit_code=None, restarts=task.restarts + 1,
                      updated_index=index)
        if cmd.node_id and not self._placement_problem(Placement(task.id, cmd.node_id, task.generation),
                                                       waiting=(FAILED, COMPLETED)):
            self._set_task(replace(task, state=ASSIGNED, node_id=cmd.node_id, generation=task.generation + 1,
                                   reason=cmd.reason, **common))
        else:
            self._set_task(replace(task, state=PENDING, node_id=None, reason=cmd.reason, **common))
        return {"ok": True, "task": self._tasks[task.id].to_dict()}

    def _scale_task(self, cmd: ScaleTask, index: int) -> dict[str, Any]:
        """Grow or shrink the service ``cmd.task_id`` belongs to, in one step."""
        task = self._tasks.get(cmd.task_id)
        if task is None:
            return _refused(f"task {cmd.task_id} does not exist")
        if not 0 <= cmd.count <= MAX_SCALE:
            return _refused(f"count {cmd.count} must be from 0 to {MAX_SCALE}")
        group = task.spec.group or task.id
        active = [t for t in self.group_members(group) if t.desired == DESIRED_RUN
                  and t.state not in (FAILED, COMPLETED, STOPPED)]
        created: list[str] = []
        stopped: list[str] = []
        if cmd.count > len(active):
            need = cmd.count - len(active)
            ids = list(dict.fromkeys(cmd.new_task_ids))[:need]
            if len(ids) < need or any(i in self._tasks or not i for i in ids):
                return _refused(f"scaling {group} to {cmd.count} needs {need} new, unused task ids")
            spec = replace(task.spec, group=group, count=cmd.count)
            for task_id in ids:
                self._tasks[task_id] = Task(id=task_id, spec=spec, created_index=index, updated_index=index)
                created.append(task_id)
        else:
            newest_first = sorted(active, key=lambda t: (t.created_index, t.id), reverse=True)
            for surplus in newest_first[: len(active) - cmd.count]:
                self._stop_task(StopTask(task_id=surplus.id), index)
                stopped.append(surplus.id)
        return {"ok": True, "group": group, "count": cmd.count, "created": created, "stopped": stopped}

    # -- reservations ----------------------------------------------------------------
    def _set_task(self, task: Task) -> None:
        """Store ``task``, moving its reservation if its holding status changed."""
        old = self._tasks.get(task.id)
        if old is not None and old.state in _HOLDING and old.node_id:
            self._release(old)
        self._tasks[task.id] = task
        if task.state in _HOLDING and task.node_id:
            self._reserve(task)

    def _reserve(self, task: Task) -> None:
        node_id = task.node_id or ""
        self._used[node_id] = self._used.get(node_id, Resources()) + task.spec.resources
        ports = self._ports.setdefault(node_id, {})
        for key in task.spec.static_host_ports:
            ports[key] = task.id
        self._on_node.setdefault(node_id, set()).add(task.id)

    def _release(self, task: Task) -> None:
        node_id = task.node_id or ""
        self._used[node_id] = self._used[node_id] - task.spec.resources
        ports = self._ports.get(node_id, {})
        for key in task.spec.static_host_ports:
            if ports.get(key) == task.id:
                del ports[key]
        self._on_node[node_id].discard(task.id)

    # -- queries (read-only; the caller holds the store's lock) ----------------------
    def task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def tasks(self) -> list[Task]:
        return sorted(self._tasks.values(), key=lambda t: (t.created_index, t.id))

    def node(self, node_id: str) -> NodeInfo | None:
        return self._nodes.get(node_id)

    def nodes(self) -> list[NodeInfo]:
        return [self._nodes[i] for i in sorted(self._nodes)]

    def tasks_on(self, node_id: str) -> list[Task]:
        """Tasks placed on ``node_id`` that still hold its resources (not terminal)."""
        found = (self._tasks[i] for i in self._on_node.get(node_id, ()))
        return sorted(found, key=lambda t: (t.created_index, t.id))

    def pending_tasks(self) -> list[Task]:
        return [t for t in self.tasks() if t.state == PENDING and t.desired == DESIRED_RUN]

    def placeable_tasks(self) -> list[Task]:
        """What the scheduler should place: pending tasks, and lost ones still wanted.

        A lost task (its node died or left) keeps its id and generation; placing it
        makes a new generation, so a report from the old node is refused (fencing).
        """
        return [t for t in self.tasks() if t.state in (PENDING, LOST) and t.desired == DESIRED_RUN]

    def failures(self, task_id: str) -> tuple[tuple[str, float], ...]:
        """Recorded failures of ``task_id``: (node id, leader wall time), oldest first."""
        return self._failures.get(task_id, ())

    def group_members(self, group: str) -> list[Task]:
        """Every task of a service: the one whose id names it and those that carry it."""
        return [t for t in self.tasks() if t.id == group or t.spec.group == group]

    def usage(self, node_id: str) -> NodeUsage:
        return NodeUsage(self._used.get(node_id, Resources()), frozenset(self._ports.get(node_id, {})))

    def usages(self) -> dict[str, NodeUsage]:
        return {node_id: self.usage(node_id) for node_id in sorted(self._nodes)}

    def task_for_key(self, idempotency_key: str) -> Task | None:
        task_id = self._keys.get(idempotency_key)
        return self._tasks.get(task_id) if task_id is not None else None

    def counts_by_state(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self._tasks.values():
            counts[task.state] = counts.get(task.state, 0) + 1
        return dict(sorted(counts.items()))

    # -- snapshots ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able data; reservations are left out and recomputed on restore."""
        return {
            "v": SNAPSHOT_VERSION,
            "tasks": [t.to_dict() for t in self.tasks()],
            "nodes": [n.to_dict() for n in self.nodes()],
            "idempotency_keys": dict(sorted(self._keys.items())),
            "requests": [[rid, copy.deepcopy(result)] for rid, result in self._requests.items()],
            "failures": {k: [list(f) for f in v] for k, v in sorted(self._failures.items())},
            "remembered_requests": self._remembered,
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> StateMachine:
        if int(data.get("v", 1)) > SNAPSHOT_VERSION:
            raise ValueError(f"snapshot v{data['v']} is newer than this node understands "
                             f"(v{SNAPSHOT_VERSION})")
        machine = cls(int(data.get("remembered_requests", DEFAULT_REMEMBERED_REQUESTS)))
        for node in data.get("nodes", ()):
            info = NodeInfo.from_dict(node)
            machine._nodes[info.id] = info
        for raw in data.get("tasks", ()):
            machine._set_task(Task.from_dict(raw))
        machine._keys = {str(k): str(v) for k, v in dict(data.get("idempotency_keys", {})).items()}
        for rid, result in data.get("requests", ()):
            machine._requests[str(rid)] = copy.deepcopy(result)
        machine._failures = {str(k): tuple((str(n), float(at)) for n, at in v)
                             for k, v in dict(data.get("failures", {})).items()}
        return machine


def _spec_problem(spec: TaskSpec) -> str:
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
