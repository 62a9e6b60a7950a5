"""The replicated state machine: what every node computes from the Raft log.

It is deterministic — no clock, no I/O, no randomness — so every replica that
applies the same log reaches the same state. Commands are dispatched in one
place (:meth:`StateMachine.apply`); each handler checks everything before it
changes anything, so a refused command leaves the state untouched.

This is the single writer of placements (Nomad's plan applier): the leader's
scheduler proposes, and :meth:`_place_tasks` re-checks each placement against
the replicated reservations in integers (``orion/state/checks.py``), refusing
what no longer fits. Reservations are kept incrementally per node
(``reservations.py``); node commands are handled by ``nodes.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from orion.domain.model import (
    ASSIGNED,
    COMPLETED,
    DESIRED_RUN,
    DESIRED_STOP,
    FAILED,
    LOST,
    PENDING,
    RUNNING,
    STOPPED,
    STOPPING,
    NodeInfo,
    PriorPlacement,
    Task,
    TaskSpec,
)
from orion.domain.network import ipv4_problem
from orion.domain.service import ServiceSpec
from orion.state.checks import (
    finish_problem,
    migration_problem,
    no_task,
    placement_problem,
    report_problem,
    restart_problem,
    spec_problem,
)
from orion.state.commands import (
    Command,
    CreateTask,
    FinishMigration,
    MarkUnschedulable,
    MigrateTasks,
    NameCluster,
    Placement,
    PlaceTasks,
    ReportTaskState,
    RestartTask,
    RestoreSnapshot,
    StopTask,
    decode,
    handler_table,
    handles,
)
from orion.state.history import History
from orion.state.jobs import JobRegistry
from orion.state.network import NetworkRegistry
from orion.state.nodes import NodeRegistry
from orion.state.queries import MachineQueries
from orion.state.reservations import Reservations
from orion.state.restore import SNAPSHOT_VERSION, read_restore
from orion.state.results import (
    ClusterNamed,
    Placed,
    RefusalKind,
    Refused,
    Result,
    SnapshotRestored,
    TaskChanged,
    TaskCreated,
)
from orion.state.secrets import ObjectRegistry
from orion.state.service_actions import ServiceActions
from orion.state.services import ServiceRegistry


class StateMachine(MachineQueries):
    """Tasks, nodes and reservations, changed only by :meth:`apply`; read through the queries
    (``queries.py``).

    Not thread-safe: the store applies and reads it under one lock.
    """

    def __init__(self, history: History | None = None) -> None:
        self._reset(history or History())

    def _reset(self, history: History) -> None:
        """Empty, with ``history`` as its memory: a new machine, or one a restore refills."""
        self.cluster_id = ""  # set once (NameCluster); a snapshot carries it
        self._tasks: dict[str, Task] = {}
        self._registry = NodeRegistry()
        self._nodes = self._registry.nodes
        self._held = Reservations()  # derived from the tasks; never snapshotted
        # Request answers, idempotency keys, failures, finished tasks: bounded (history.py).
        self._history = history
        # Services (orion/state/services.py): versions, deployments, replicas' health, group scaling;
        # jobs' runs and cron slots (jobs.py); redeploys and rebalances (service_actions.py).
        def stop(task_id: str, index: int) -> None:
            self._stop_task(StopTask(task_id=task_id), index)

        self.jobs = JobRegistry(self.tasks, self._set_task, stop, self._spec_of,
                                lambda name: self.services.records[name].current.version)
        self.services = ServiceRegistry(self.task, self.tasks, self._set_task, stop, node=self.node, jobs=self.jobs,
                                        pin=lambda spec: self.secrets.pin(spec))
        actions = ServiceActions(self.services, self.jobs, self.tasks)
        # Secrets, configs and registry credentials (orion/state/secrets.py), sealed by the API's node.
        self.secrets = ObjectRegistry(self.tasks, self.task, self._set_task, self.services)
        # The overlay network (orion/state/network.py): settings, subnet leases, VIPs. Besides its own
        # commands it follows others (a holder leaving, a service declared): apply calls it around them.
        self.networking = NetworkRegistry(self.node, lambda node_id: bool(self._held.tasks(node_id)),
                                          self.log_version, self.services)
        # The one dispatch table: each part's @handles methods (a command without one fails here).
        self._handlers: dict[str, Callable[[Any, int], Result]] = handler_table(
            self, self._registry, self.services, self.jobs, actions, self.secrets, self.networking)

    def _spec_of(self, name: str, version: int | None) -> ServiceSpec | None:
        """Service ``name``'s spec at ``version`` (None: the current one), if still kept."""
        record = self.services.get(name)
        if record is None:
            return None
        found = record.current if version is None else record.version(version)
        return found.spec if found is not None else None

    # -- the one way in ------------------------------------------------------------
    def apply(self, command: Command | str | bytes, index: int) -> Result:
        """Apply one committed log entry; return its typed result (``results.py``).

        Log entries arrive as text and are decoded here, the one place (the Raft
        backend hands them over as written). A command this version cannot read (a
        newer node wrote it mid-upgrade) is refused, not raised: a replica must never
        crash on the log; kind ``unreadable`` lets the backend log it. A
        repeated ``request_id`` gets the first result back without applying again.
        The network registry is asked around every command (``network.py``: its check
        before, what it follows after one applied). Finished tasks beyond the history
        limits are purged here, after the handler.
        """
        if isinstance(command, bytes | str):
            text = command.decode("utf-8", "replace") if isinstance(command, bytes) else command
            try:
                command = decode(text)
            except Exception as exc:  # UnknownCommand, or a known type with a malformed body
                return Refused(RefusalKind.UNREADABLE, f"command not understood by this node's version: {exc}")
        handler = self._handlers.get(getattr(command, "TYPE", ""))
        if handler is None:
            return Refused(RefusalKind.UNREADABLE,
                           f"unknown command type {getattr(command, 'TYPE', type(command).__name__)!r}")
        answered = self._history.answer(command.request_id)
        if answered is not None:
            return answered
        refused = self.networking.check(command)
        result = refused if refused is not None else handler(command, index)
        if not isinstance(result, Refused):
            self.networking.follow(command, index)
        for task_id in self._history.purge():
            self._held.release(self._tasks.pop(task_id))
        self._history.remember(command.request_id, result)
        return result

    # -- tasks -----------------------------------------------------------------------
    @handles(CreateTask)
    def _create_task(self, cmd: CreateTask, index: int) -> TaskCreated | Refused:
        known = self._history.task_for_key(cmd.idempotency_key) if cmd.idempotency_key else None
        if known is not None:
            return TaskCreated(self._tasks[known], created=False)
        spec = self.secrets.pin(TaskSpec.from_dict(cmd.spec.to_dict()))  # canonical, as a restore gives
        problem = spec if isinstance(spec, Refused) else spec_problem(spec)
        if not cmd.task_id:
            problem = Refused(RefusalKind.INVALID, "a task needs an id")
        elif cmd.task_id in self._tasks:
            problem = Refused(RefusalKind.EXISTS, f"task {cmd.task_id} already exists")
        if problem or isinstance(spec, Refused):
            return problem or spec
        task = Task(id=cmd.task_id, spec=spec, created_index=index, updated_index=index)
        self._set_task(task)
        if cmd.idempotency_key:
            self._history.remember_key(cmd.idempotency_key, task.id)
        return TaskCreated(task, created=True)

    @handles(PlaceTasks, MigrateTasks)
    def _place_tasks(self, cmd: PlaceTasks | MigrateTasks, index: int) -> Placed:
        """Placements, each re-checked. A drain's (``MigrateTasks``) moves a running task on
        as a new generation while its old copy, remembered in ``migrating_from``, keeps
        running until ``FinishMigration``."""
        migrate = isinstance(cmd, MigrateTasks)
        placed: list[str] = []
        refused: dict[str, Refused] = {}
        for p in cmd.placements:
            task = self._tasks.get(p.task_id)
            if migrate:
                leaving = self._nodes.get(task.node_id or "") if task else None
                problem = migration_problem(task, leaving, p) or self._problem(p, (ASSIGNED, RUNNING))
            else:
                problem = self._problem(p)
            if problem or task is None:
                refused[p.task_id] = problem or no_task(p.task_id)
                continue
            if migrate:
                prior, reason = PriorPlacement(task.node_id or "", task.generation), f"migrating from {task.node_id}"
            else:  # placed back where its old copy runs (a drain undone): that copy is simply replaced
                prior, reason = task.migrating_from, ""
                if prior is not None and prior.node_id == p.node_id:
                    prior = None
            self._set_task(replace(task, state=ASSIGNED, node_id=p.node_id, generation=task.generation + 1,
                                   reason=reason, reason_kind=None, container_id=None, host_ports=(), exit_code=None,
                                   updated_index=index, migrating_from=prior))
            placed.append(task.id)
        return Placed(tuple(placed), refused)

    def _problem(self, p: Placement, waiting: tuple[str, ...] = (PENDING, LOST)) -> Refused | None:
        node = self._nodes.get(p.node_id)
        return placement_problem(self._tasks.get(p.task_id), p, node, self._held, waiting)

    @handles(FinishMigration)
    def _finish_migration(self, cmd: FinishMigration, index: int) -> TaskChanged | Refused:
        """The old copy may stop: its node's reconciler no longer finds the task its own."""
        task = self._tasks.get(cmd.task_id)
        problem = finish_problem(task, cmd)
        if problem or task is None:
            return problem or no_task(cmd.task_id)
        self._set_task(replace(task, migrating_from=None, updated_index=index))
        return TaskChanged(self._tasks[task.id])

    @handles(MarkUnschedulable)
    def _mark_unschedulable(self, cmd: MarkUnschedulable, index: int) -> TaskChanged | Refused:
        task = self._tasks.get(cmd.task_id)
        if task is None:
            return no_task(cmd.task_id)
        if task.state not in (PENDING, LOST) or task.desired != DESIRED_RUN:
            return Refused(RefusalKind.WRONG_STATE, f"task {task.id} is {task.state}, not waiting for a node")
        if (task.reason, task.reason_kind) != (cmd.reason, cmd.kind):
            task = replace(task, reason=cmd.reason, reason_kind=cmd.kind, updated_index=index)
            self._set_task(task)
        return TaskChanged(task)

    @handles(ReportTaskState)
    def _report_task_state(self, cmd: ReportTaskState, index: int) -> TaskChanged | Refused:
        task = self._tasks.get(cmd.task_id)
        problem = report_problem(task, cmd)
        if problem or task is None:
            return problem or no_task(cmd.task_id)
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
            reason_kind=None,
            restarts=task.restarts + 1 if restarted else task.restarts,
            updated_index=index,
            # Recorded once the network is set (the log-version gate, orion/state/network.py); an
            # address that is not one is ignored rather than the report refused.
            ip=cmd.ip if cmd.ip and self.networking.enabled() and not ipv4_problem(cmd.ip, "") else task.ip,
        ))
        if task.run and state in (COMPLETED, FAILED):  # a job's attempt ended: counted once, here
            self.jobs.finished(self._tasks[task.id])
        return TaskChanged(self._tasks[task.id])

    @handles(StopTask)
    def _stop_task(self, cmd: StopTask, index: int) -> TaskChanged | Refused:
        task = self._tasks.get(cmd.task_id)
        if task is None:
            return no_task(cmd.task_id)
        if task.state == PENDING:
            state = STOPPED  # never placed: nothing to tear down
        elif task.state in (ASSIGNED, RUNNING):
            state = STOPPING  # its node's reconciler stops the container and reports stopped
        else:
            state = task.state  # already stopping, or over: only the wish changes
        if (task.desired, task.state, task.migrating_from) != (DESIRED_STOP, state, None):
            # A migrating task's old copy stops too: nothing of it is wanted any more.
            self._set_task(replace(task, desired=DESIRED_STOP, state=state, migrating_from=None,
                                   updated_index=index))
        return TaskChanged(self._tasks[task.id])

    @handles(RestartTask)
    def _restart_task(self, cmd: RestartTask, index: int) -> TaskChanged | Refused:
        """Restart policy, decided by the leader: again on the same node, or back to pending.

        A local restart that no longer fits (the node went away or filled up) falls
        back to pending rather than being refused, so the decision still moves the task.
        """
        task = self._tasks.get(cmd.task_id)
        problem = restart_problem(task, cmd)
        if problem or task is None:
            return problem or no_task(cmd.task_id)
        if task.node_id:
            self._history.record_failure(task.id, task.node_id, float(cmd.at))
        common = dict(container_id=None, host_ports=(), exit_code=None, restarts=task.restarts + 1,
                      reason_kind=None, updated_index=index)
        if cmd.node_id and not self._problem(Placement(task.id, cmd.node_id, task.generation),
                                                       waiting=(FAILED, COMPLETED)):
            self._set_task(replace(task, state=ASSIGNED, node_id=cmd.node_id, generation=task.generation + 1,
                                   reason=cmd.reason, **common))
        else:
            self._set_task(replace(task, state=PENDING, node_id=None, reason=cmd.reason, **common))
        return TaskChanged(self._tasks[task.id])

    # -- the cluster as a whole -------------------------------------------------------
    @handles(NameCluster)
    def _name_cluster(self, cmd: NameCluster, index: int) -> ClusterNamed | Refused:  # noqa: ARG002
        if self.cluster_id:
            return Refused(RefusalKind.EXISTS, f"the cluster is already named {self.cluster_id}")
        if not cmd.cluster_id:
            return Refused(RefusalKind.INVALID, "a cluster id must not be empty")
        self.cluster_id = cmd.cluster_id
        return ClusterNamed(self.cluster_id)

    @handles(RestoreSnapshot)
    def _restore_snapshot(self, cmd: RestoreSnapshot, index: int) -> SnapshotRestored | Refused:
        """Replace everything with the saved state, once every check passed (``restore.py``):
        afterwards this machine's snapshot is the saved one, so its digest is ``cmd.digest``."""
        state, problem = read_restore(cmd, self.cluster_id)
        if state is None:
            return problem
        self._load(state)
        return SnapshotRestored(index, cmd.digest, self.cluster_id, len(self._nodes), len(self._tasks),
                                len(self.services.all()))

    def _set_task(self, task: Task) -> None:
        """Store ``task``, moving its reservations if what it holds changed."""
        old = self._tasks.get(task.id)
        if old is not None:
            self._held.release(old)
            if old.generation != task.generation and (task.health or task.ip):  # a new placement: not
                task = replace(task, health="", health_since=0.0, health_output="", ip=None)  # checked, no address
        self._tasks[task.id] = task
        self._held.hold(task)
        self._history.track(task)

    # -- snapshots ---------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Plain JSON-able data; reservations are left out and recomputed on restore. The
        cluster id only once named, so an unnamed machine digests as it did before ids."""
        return {
            "v": SNAPSHOT_VERSION,
            **({"cluster_id": self.cluster_id} if self.cluster_id else {}),
            "tasks": [t.to_dict() for t in self.tasks()],
            "nodes": [n.to_dict() for n in self.nodes()],
            **self._history.snapshot(),
            "services": self.services.snapshot(),
            **({"jobs": self.jobs.snapshot()} if any(self.jobs.snapshot().values()) else {}),
            **self.secrets.snapshot(),
            # Only when there is one: a cluster without the overlay digests as before it existed.
            **({"network": self.networking.snapshot()} if self.networking.settings is not None else {}),
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> StateMachine:
        machine = cls()
        machine._load(data)
        return machine

    def _load(self, data: dict[str, Any]) -> None:
        """Become the machine ``data`` describes (a snapshot, possibly by an older release)."""
        if int(data.get("v", 1)) > SNAPSHOT_VERSION:
            raise ValueError(f"snapshot v{data['v']} is newer than this node understands "
                             f"(v{SNAPSHOT_VERSION})")
        self._reset(History.restore(data))
        self.cluster_id = str(data.get("cluster_id", ""))
        for node in data.get("nodes", ()):
            info = NodeInfo.from_dict(node)
            self._nodes[info.id] = info
        for raw in data.get("tasks", ()):
            self._set_task(Task.from_dict(raw))
        self.services.restore(data.get("services") or {})
        self.jobs.restore(data.get("jobs") or {})
        self.secrets.restore(data)
        self.networking.restore(data.get("network") or {})
