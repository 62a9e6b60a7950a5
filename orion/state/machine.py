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

from orion.model import (
    ASSIGNED,
    COMPLETED,
    DESIRED_RUN,
    DESIRED_STOP,
    FAILED,
    LOST,
    NODE_ALIVE,
    NODE_STATES,
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
from orion.scheduler import NodeUsage, format_bytes, format_cpu, format_ports, format_selectors
from orion.state.commands import (
    Command,
    CreateTask,
    MarkUnschedulable,
    Placement,
    PlaceTasks,
    RegisterNode,
    ReportTaskState,
    SetNodeStatus,
    StopTask,
    decode,
)

# Enough to cover every retry window we have (a client retries for seconds, the
# write path for one election) many times over, small enough to snapshot.
DEFAULT_REMEMBERED_REQUESTS = 10_000

SNAPSHOT_VERSION = 1

# Placed tasks in these states hold their node's memory, CPU and host ports.
_HOLDING = frozenset({ASSIGNED, RUNNING, STOPPING})
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
        self._handlers: dict[str, Callable[[Any, int], dict[str, Any]]] = {
            RegisterNode.TYPE: self._register_node,
            SetNodeStatus.TYPE: self._set_node_status,
            CreateTask.TYPE: self._create_task,
            PlaceTasks.TYPE: self._place_tasks,
            MarkUnschedulable.TYPE: self._mark_unschedulable,
            ReportTaskState.TYPE: self._report_task_state,
            StopTask.TYPE: self._stop_task,
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

    def _placement_problem(self, p: Placement) -> str:
        """Why this placement cannot be accepted now, or "" if it can."""
        task = self._tasks.get(p.task_id)
        if task is None:
            return f"task {p.task_id} does not exist"
        if task.state not in (PENDING, LOST):
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
