"""Typed, versioned commands: the only way replicated state changes.

Each command is a small frozen dataclass. It crosses the Raft log as a JSON
dict ``{"type": ..., "v": ..., ...}`` (see :func:`encode`/:func:`decode`), not
as a pickled class, so nodes of different versions can read each other's log.
A node that meets a command type it does not know (a newer node wrote it during
a rolling upgrade) records it as refused instead of crashing: see
``StateMachine.apply``.

``request_id`` makes a command idempotent: the state machine remembers recent
request ids and answers a repeat with the first result, so a client or the
write path may retry after a leader died mid-commit without doing it twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from orion.domain.model import NodeInfo, NoFitKind, TaskSpec
from orion.domain.service import ServiceSpec, SlotProgress, StartReplica, StopReplica


@dataclass(frozen=True)
class Command:
    """Base of every command. ``TYPE``/``VERSION`` name it in the log."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    request_id: str = ""


@dataclass(frozen=True)
class RegisterNode(Command):
    """A node announces (or re-announces) its addresses, capacity and labels."""

    TYPE: ClassVar[str] = "register_node"
    node: NodeInfo = field(default_factory=lambda: NodeInfo("", "", ""))


@dataclass(frozen=True)
class SetNodeStatus(Command):
    """Membership (gossip, or the leader's liveness view) changed a node's status."""

    TYPE: ClassVar[str] = "set_node_status"
    node_id: str = ""
    status: str = ""


@dataclass(frozen=True)
class SetNodeReadiness(Command):
    """A node says whether its container engine answers (``orion/node/readiness.py``).

    Submitted by the node itself, not gossiped: only the node can see its engine,
    and what the leader must act on (move the tasks, place nothing there) has to be
    one replicated fact anyway, so the observation enters the log directly instead
    of travelling as gossip metadata that the leader would translate into a second
    status. A node that cannot reach the leader cannot report, but then gossip and
    liveness judge it as a whole.
    """

    TYPE: ClassVar[str] = "set_node_readiness"
    node_id: str = ""
    ready: bool = True
    reason: str = ""


@dataclass(frozen=True)
class CreateTask(Command):
    """A new task, pending until the leader places it.

    ``idempotency_key``: a second CreateTask with the same key returns the task
    the first one created (HTTP ``Idempotency-Key``).
    """

    TYPE: ClassVar[str] = "create_task"
    task_id: str = ""
    spec: TaskSpec = field(default_factory=lambda: TaskSpec(image="", memory=0))
    idempotency_key: str = ""


@dataclass(frozen=True)
class Placement:
    """One scheduling decision: put ``task_id`` on ``node_id``.

    ``generation`` is the task's generation the decision was made against; the
    state machine refuses it if the task moved on since (a stale plan).
    """

    task_id: str
    node_id: str
    generation: int


@dataclass(frozen=True)
class PlaceTasks(Command):
    """The leader's plan: a batch of placements, each re-checked on apply."""

    TYPE: ClassVar[str] = "place_tasks"
    placements: tuple[Placement, ...] = ()


@dataclass(frozen=True)
class MigrateTasks(Command):
    """The drain planner's decision: place replacements, keeping each old copy running.

    Each placement must be for a task that runs (or is assigned) at ``generation`` on
    a node that is draining; it is re-checked like a ``PlaceTasks`` placement. The
    task moves to the new node as a new generation and remembers its old placement
    (``Task.migrating_from``) until a ``FinishMigration``.
    """

    TYPE: ClassVar[str] = "migrate_tasks"
    placements: tuple[Placement, ...] = ()


@dataclass(frozen=True)
class FinishMigration(Command):
    """The old copy of a migrating task may stop now: its replacement at ``generation``
    runs, or the drain deadline passed. Refused if the task moved on meanwhile."""

    TYPE: ClassVar[str] = "finish_migration"
    task_id: str = ""
    generation: int = 0
    reason: str = ""


@dataclass(frozen=True)
class MarkUnschedulable(Command):
    """The scheduler found no node; record why: ``kind`` for code, ``reason`` for people.

    ``kind`` was added without a version bump: an older node ignores the field and
    still records the sentence, and an entry an older node wrote reads as OTHER.
    """

    TYPE: ClassVar[str] = "mark_unschedulable"
    task_id: str = ""
    reason: str = ""
    kind: NoFitKind = NoFitKind.OTHER


@dataclass(frozen=True)
class ReportTaskState(Command):
    """A node reports what its container is doing.

    Refused when ``node_id``/``generation`` no longer match the task: a report
    from a placement that has been replaced must not overwrite the new one.
    """

    TYPE: ClassVar[str] = "report_task_state"
    task_id: str = ""
    node_id: str = ""
    generation: int = 0
    state: str = ""
    container_id: str | None = None
    host_ports: tuple[tuple[str, int], ...] = ()
    exit_code: int | None = None
    reason: str = ""
    ip: str | None = None  # the container's overlay address (recorded once the network is set)


@dataclass(frozen=True)
class StopTask(Command):
    """The user wants the task stopped (DELETE /tasks/<id>)."""

    TYPE: ClassVar[str] = "stop_task"
    task_id: str = ""


@dataclass(frozen=True)
class RestartTask(Command):
    """The leader's restart-policy decision for a failed (or finished) task.

    ``node_id`` set: start it again on that node (its own, a local restart) as a
    new generation; empty: send it back to pending so the scheduler places it
    elsewhere. ``at`` is the leader's wall clock, carried in the log so every
    replica records the same failure time (the machine itself has no clock).
    Refused unless the task is still at ``generation`` and still failed/finished.
    """

    TYPE: ClassVar[str] = "restart_task"
    task_id: str = ""
    generation: int = 0
    node_id: str = ""
    at: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class ScaleTask(Command):
    """Set the size of the service ``task_id`` belongs to (PATCH /tasks/<id>).

    ``new_task_ids`` are ids for members to add (the writer draws them, so the
    log stays deterministic); surplus members are stopped newest first.
    """

    TYPE: ClassVar[str] = "scale_task"
    task_id: str = ""
    count: int = 1
    new_task_ids: tuple[str, ...] = ()


# -- services (docs/services.md; applied by orion/state/services.py) ---------------------------------


def _no_spec() -> ServiceSpec:
    return ServiceSpec("", TaskSpec(image="", memory=0))


@dataclass(frozen=True)
class PutService(Command):
    """Declare a service (``POST /services``, ``PUT /services/<name>``): version 1, or a new
    version and a deployment to roll it out; the same spec again changes nothing.

    ``at`` is the accepting node's wall clock, the deployment's start (the machine has no
    clock). ``create`` (POST) refuses a service that exists instead of updating it.
    """

    TYPE: ClassVar[str] = "put_service"
    spec: ServiceSpec = field(default_factory=_no_spec)
    at: float = 0.0
    create: bool = False


@dataclass(frozen=True)
class RollbackService(Command):
    """Declare an earlier version's spec again, as a new version with a rollback deployment.
    ``version`` 0: the last fully healthy version other than the current one."""

    TYPE: ClassVar[str] = "rollback_service"
    name: str = ""
    version: int = 0
    at: float = 0.0


@dataclass(frozen=True)
class DeleteService(Command):
    """Remove a service: its replicas stop, its record goes (its deployment numbers stay used)."""

    TYPE: ClassVar[str] = "delete_service"
    name: str = ""


@dataclass(frozen=True)
class ApplyDeploymentPlan(Command):
    """One pass of the leader's rolling-update planner (``orion/control/deployment.py``) for one
    service: replicas to create and to stop, the slots' progress, the deployment's new state.

    Refused unless ``seq`` is the service's current deployment and ``step`` the number of plans
    applied to it so far: a plan made on a view that another plan has changed since (an old
    leader's, landing late) is refused, never applied beside it. ``at`` (the leader's clock)
    is the new replicas' creation time, from which their healthy deadline counts.
    """

    TYPE: ClassVar[str] = "apply_deployment_plan"
    service: str = ""
    seq: int = 0
    step: int = 0
    state: str = ""
    reason: str = ""
    start: tuple[StartReplica, ...] = ()
    stop: tuple[StopReplica, ...] = ()
    progress: tuple[SlotProgress, ...] = ()
    revert_to: int | None = None
    at: float = 0.0


@dataclass(frozen=True)
class ReportTaskHealth(Command):
    """A node reports a replica's health changed (``orion/node/health.py``): only on change.

    Refused, like a state report, unless ``node_id``/``generation`` are the task's current
    placement: a check of a replaced container says nothing about its successor.
    """

    TYPE: ClassVar[str] = "report_task_health"
    task_id: str = ""
    node_id: str = ""
    generation: int = 0
    status: str = ""
    since: float = 0.0
    output: str = ""


@dataclass(frozen=True)
class Batch(Command):
    """Writes committed as one log entry (batched writes, ``orion/store/coalescer.py``): each an
    encoded command, applied as an entry of its own, with its own result and refusal."""

    TYPE: ClassVar[str] = "batch"
    commands: tuple[str, ...] = ()


@dataclass(frozen=True)
class NameCluster(Command):
    """Give the cluster its id, once: the first agent to register in a cluster whose every node
    reads this command (``LOG_VERSION`` 2) draws it; a second naming is refused. Snapshots carry
    it, so a restore can tell this cluster's file from another's."""

    TYPE: ClassVar[str] = "name_cluster"
    cluster_id: str = ""


@dataclass(frozen=True)
class RestoreSnapshot(Command):
    """Replace the whole state with a saved one (``orion operator snapshot restore``).

    ``body`` is the machine's plain-data snapshot as saved (``StateMachine.snapshot``), in its
    canonical form gzip'd and base64'd as the file carries it (``canonical.pack``: 0.4 MB in the
    log for a 12 MB state), and ``digest`` the SHA-256 of the canonical form: every replica
    checks the one against the other, the format version and the cluster id (``force``: restore
    another cluster's state, taking its id) before it changes anything. Sent without a request
    id, so the state after it is exactly the saved one (its digest is the file's).
    """

    TYPE: ClassVar[str] = "restore_snapshot"
    body: str = ""
    digest: str = ""
    force: bool = False


COMMAND_TYPES: dict[str, type[Command]] = {
    c.TYPE: c
    for c in (RegisterNode, SetNodeStatus, CreateTask, PlaceTasks, MarkUnschedulable, ReportTaskState, StopTask,
              RestartTask, ScaleTask, SetNodeReadiness, MigrateTasks, FinishMigration,
              PutService, RollbackService, DeleteService, ApplyDeploymentPlan, ReportTaskHealth, Batch,
              NameCluster, RestoreSnapshot)
}


class UnknownCommand(ValueError):
    """The log holds a command this version cannot read."""


def _to_plain(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Placement):
        return {"task_id": value.task_id, "node_id": value.node_id, "generation": value.generation}
    if isinstance(value, tuple):
        return [_to_plain(v) for v in value]
    return value


def encode(command: Command) -> str:
    """Serialise a command for the Raft log (JSON text, sorted keys)."""
    body: dict[str, Any] = {"type": command.TYPE, "v": command.VERSION}
    for f in fields(command):
        body[f.name] = _to_plain(getattr(command, f.name))
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def decode(text: str) -> Command:
    """Parse a log entry back into its command; raise UnknownCommand if unreadable."""
    try:
        body = json.loads(text)
        cls = COMMAND_TYPES[body["type"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise UnknownCommand(f"unreadable command: {text[:80]!r}") from exc
    if int(body.get("v", 1)) > cls.VERSION:
        raise UnknownCommand(f"{cls.TYPE} v{body['v']} is newer than this node understands (v{cls.VERSION})")
    try:
        return cls(**_fields_of(cls, body))
    except (KeyError, TypeError, ValueError) as exc:
        raise UnknownCommand(f"malformed {cls.TYPE}: {exc.__class__.__name__} {exc}") from exc


def _fields_of(cls: type[Command], body: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"request_id": str(body.get("request_id", ""))}
    # A command that reads its own body (workload_commands.py, network_commands.py).
    from_body = getattr(cls, "from_body", None)
    if from_body is not None:
        kwargs.update(from_body(body))
    elif cls is RegisterNode:
        kwargs["node"] = NodeInfo.from_dict(body["node"])
    elif cls is SetNodeStatus:
        kwargs.update(node_id=body["node_id"], status=body["status"])
    elif cls is CreateTask:
        kwargs.update(
            task_id=body["task_id"],
            spec=TaskSpec.from_dict(body["spec"]),
            idempotency_key=body.get("idempotency_key", ""),
        )
    elif cls is SetNodeReadiness:
        kwargs.update(node_id=body["node_id"], ready=bool(body["ready"]), reason=body.get("reason", ""))
    elif cls is FinishMigration:
        kwargs.update(task_id=body["task_id"], generation=int(body["generation"]), reason=body.get("reason", ""))
    elif cls is PlaceTasks or cls is MigrateTasks:
        kwargs["placements"] = tuple(
            Placement(p["task_id"], p["node_id"], int(p["generation"])) for p in body["placements"]
        )
    elif cls is MarkUnschedulable:
        kwargs.update(task_id=body["task_id"], reason=body["reason"], kind=NoFitKind.parse(body.get("kind")))
    elif cls is ReportTaskState:
        kwargs.update(task_id=body["task_id"], node_id=body["node_id"], generation=int(body["generation"]),
                      state=body["state"], container_id=body.get("container_id"),
                      host_ports=tuple((k, int(v)) for k, v in (body.get("host_ports") or [])),
                      exit_code=body.get("exit_code"), reason=body.get("reason", ""), ip=body.get("ip"))
    elif cls is StopTask:
        kwargs["task_id"] = body["task_id"]
    elif cls is RestartTask:
        kwargs.update(task_id=body["task_id"], generation=int(body["generation"]), node_id=body.get("node_id", ""),
                      at=float(body.get("at", 0.0)), reason=body.get("reason", ""))
    elif cls is ScaleTask:
        kwargs.update(task_id=body["task_id"], count=int(body["count"]),
                      new_task_ids=tuple(str(i) for i in body.get("new_task_ids") or ()))
    elif cls is Batch:  # an element that is not text cannot be decoded: it alone is refused
        kwargs["commands"] = tuple(str(c) for c in body["commands"])
    elif cls is PutService:
        kwargs.update(spec=ServiceSpec.from_dict(body["spec"]), at=float(body["at"]), create=bool(body["create"]))
    elif cls is RollbackService:
        kwargs.update(name=str(body["name"]), version=int(body.get("version", 0)), at=float(body["at"]))
    elif cls is DeleteService:
        kwargs["name"] = str(body["name"])
    elif cls is ApplyDeploymentPlan:
        revert_to = body.get("revert_to")
        kwargs.update(service=str(body["service"]), seq=int(body["seq"]), step=int(body["step"]),
                      state=str(body["state"]), reason=str(body.get("reason", "")),
                      start=tuple(StartReplica.from_dict(s) for s in body.get("start") or ()),
                      stop=tuple(StopReplica.from_dict(s) for s in body.get("stop") or ()),
                      progress=tuple(SlotProgress.from_dict(p) for p in body.get("progress") or ()),
                      revert_to=None if revert_to is None else int(revert_to), at=float(body["at"]))
    elif cls is ReportTaskHealth:
        kwargs.update(task_id=str(body["task_id"]), node_id=str(body["node_id"]),
                      generation=int(body["generation"]), status=str(body["status"]),
                      since=float(body["since"]), output=str(body.get("output", "")))
    elif cls is NameCluster:
        kwargs["cluster_id"] = str(body["cluster_id"])
    elif cls is RestoreSnapshot:
        kwargs.update(body=str(body["body"]), digest=str(body["digest"]), force=bool(body.get("force", False)))
    return kwargs


# The modes' commands register themselves in COMMAND_TYPES; imported here so that every reader of
# the log (whoever imports this module) decodes them.
from orion.state import workload_commands  # noqa: E402, F401
