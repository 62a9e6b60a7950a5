"""What applying a command returns: a typed value, never a dict checked for ``"ok"``.

A refusal is a :class:`Refused`: a :class:`RefusalKind` for code (the API maps each kind to
an HTTP status in one table, ``orion/api/refusals.py``; loops and tests compare kinds) and a
``detail`` sentence for people. A success is one of a small family, one per kind of change
(a task created, a task changed, placements, a service declared ...), each carrying the
values its callers read.

Results never cross the network: pysyncobj computes each one on the replica that applies
the entry and hands it to the writer on that same node. They do outlive the apply in one
place: the machine remembers the answer given to each request id (``history.py``), and that
memory is part of the snapshot. So every result has a plain form, :meth:`to_dict`, that is
the dict the release before typed results returned (a refusal adds its ``kind``; a refused
item is ``{"kind", "error"}`` instead of the bare sentence), and :func:`result_from_dict`
reads both forms back: an older release restoring our snapshot finds the keys it knows, and
a snapshot it wrote reads here with kind ``other`` where it kept none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orion.domain.job import JobRun
from orion.domain.model import NodeInfo, Task
from orion.domain.network import NetworkSettings, SubnetLease
from orion.domain.service import Deployment
from orion.state.object_results import LeaseAcquired, LeaseReleased, NetworkSet, Resealed, SecretDeleted, SecretStored


class RefusalKind(StrEnum):
    """Why the machine refused a command, for code. The values are kept in snapshots
    (remembered answers): never rename one."""

    INVALID = "invalid"  # the command itself is unusable: no id, a bad spec or count, an unknown status
    NOT_FOUND = "not_found"  # it names a task, node, service or version the state does not hold
    EXISTS = "exists"  # it would create what exists already
    WRONG_STATE = "wrong_state"  # its target is not in a state the command applies to
    STALE = "stale"  # decided on a view that moved on since (a generation, a deployment step)
    NO_FIT = "no_fit"  # the node cannot take the task now: not schedulable, selector, volume, room, ports
    UNREADABLE = "unreadable"  # a log entry this node's version cannot read (a newer node wrote it)
    IN_USE = "in_use"  # it would delete a secret or config that a service or a live task reads
    # A node of the cluster reads only an older log format than the command needs: asked again
    # once the rolling upgrade is done (the network's commands, orion/state/network.py).
    LOG_VERSION = "log_version"
    EXHAUSTED = "exhausted"  # a pool the machine hands out from (subnets, VIPs) has nothing free
    PORT_TAKEN = "port_taken"  # it publishes a port another service publishes (one owner, on every host)
    # The host's underlay cannot carry the overlay's frames (its MTU): only its operator can fix
    # that, so the agent that asked ends (exit 2) instead of asking again.
    MTU = "mtu"
    # A refusal remembered by a release before kinds (a snapshot it wrote): its kind is unknown.
    OTHER = "other"

    @classmethod
    def parse(cls, value: object) -> RefusalKind:
        try:
            return cls(value)
        except ValueError:
            return cls.OTHER


@dataclass(frozen=True)
class Refused:
    """The machine refused the command and changed nothing."""

    kind: RefusalKind
    detail: str

    def __str__(self) -> str:
        return self.detail

    def to_dict(self) -> dict[str, Any]:
        return {"ok": False, "error": self.detail, "kind": str(self.kind)}


def _refusals_to_dict(refused: Mapping[str, Refused]) -> dict[str, Any]:
    return {key: {"kind": str(r.kind), "error": r.detail} for key, r in refused.items()}


def _refusals_from_dict(raw: Any) -> dict[str, Refused]:
    """A refused item is a sentence in the release before kinds, ``{"kind", "error"}`` since."""
    out = {}
    for key, value in dict(raw or {}).items():
        if isinstance(value, dict):
            out[str(key)] = Refused(RefusalKind.parse(value.get("kind")), str(value.get("error", "")))
        else:
            out[str(key)] = Refused(RefusalKind.OTHER, str(value))
    return out


@dataclass(frozen=True)
class NodeRegistered:
    node: NodeInfo
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "node": self.node.to_dict(), "created": self.created}


@dataclass(frozen=True)
class NodeChanged:
    """A node's status or readiness; ``changed`` False: it already was so."""

    node: NodeInfo
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "node": self.node.to_dict(), "changed": self.changed}


@dataclass(frozen=True)
class TaskCreated:
    """``created`` False: the idempotency key named a task created before (``task`` is that one)."""

    task: Task
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "task": self.task.to_dict(), "created": self.created}


@dataclass(frozen=True)
class TaskChanged:
    """The task as the command left it (a report, a stop, a restart, a finished migration ...)."""

    task: Task

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "task": self.task.to_dict()}


@dataclass(frozen=True)
class Placed:
    """A plan applied: the tasks placed, and why each other one was refused (read-only)."""

    placed: tuple[str, ...] = ()
    refused: Mapping[str, Refused] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "placed": list(self.placed), "refused": _refusals_to_dict(self.refused)}


@dataclass(frozen=True)
class ServiceDeclared:
    """A version declared (``changed``, with its deployment and the replicas relabelled onto
    it; a rebalance's also names its ``moves``), or the same spec again: nothing changed,
    ``version`` is the current one. A job's redeploy declares no version: it starts ``run``."""

    service: str
    version: int
    changed: bool
    deployment: Deployment | None = None
    relabelled: tuple[str, ...] = ()
    moves: tuple[str, ...] = ()
    run: JobRun | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": True, "changed": self.changed, "service": self.service, "version": self.version}
        if self.deployment is not None:
            out.update(deployment=self.deployment.to_dict(), relabelled=list(self.relabelled))
        if self.moves:
            out["moves"] = list(self.moves)
        if self.run is not None:
            out["run"] = self.run.to_dict()
        return out


@dataclass(frozen=True)
class ServiceDeleted:
    service: str
    stopped: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "service": self.service, "stopped": list(self.stopped)}


@dataclass(frozen=True)
class PlanApplied:
    """A deployment plan applied: replicas started, refused (read-only), stopped; and the
    version an auto-revert declared, if it did."""

    deployment: Deployment
    started: tuple[str, ...] = ()
    refused: Mapping[str, Refused] = field(default_factory=dict)
    stopped: tuple[str, ...] = ()
    reverted: ServiceDeclared | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"ok": True, "deployment": self.deployment.to_dict(), "started": list(self.started),
               "refused": _refusals_to_dict(self.refused), "stopped": list(self.stopped)}
        if self.reverted is not None:
            out["reverted"] = self.reverted.to_dict()
        return out


@dataclass(frozen=True)
class HealthReported:
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "changed": self.changed}


@dataclass(frozen=True)
class GroupScaled:
    """The unnamed group of ``POST /tasks`` with a count, set to ``count`` members."""

    group: str
    count: int
    created: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "group": self.group, "count": self.count, "created": list(self.created),
                "stopped": list(self.stopped)}


@dataclass(frozen=True)
class RunRecorded:
    """A cron slot recorded: the run it started, or the one it records as skipped."""

    run: JobRun

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "run": self.run.to_dict()}


@dataclass(frozen=True)
class JobPlanApplied:
    """A run planner's pass applied: the run as it is now, the attempts started and stopped."""

    run: JobRun
    started: tuple[str, ...] = ()
    stopped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "run": self.run.to_dict(), "started": list(self.started), "stopped": list(self.stopped)}


@dataclass(frozen=True)
class ClusterNamed:
    cluster_id: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "cluster_id": self.cluster_id}


@dataclass(frozen=True)
class SnapshotRestored:
    """The machine became a saved state: at ``index``, whose digest is ``digest``; what it holds now."""

    index: int
    digest: str
    cluster_id: str
    nodes: int
    tasks: int
    services: int

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "index": self.index, "digest": self.digest, "cluster_id": self.cluster_id,
                "nodes": self.nodes, "tasks": self.tasks, "services": self.services}


@dataclass(frozen=True)
class BatchApplied:
    """A ``Batch`` entry: each command's own result, in order (``entries.py``)."""

    results: tuple[Result, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "results": [r.to_dict() for r in self.results]}


Result = (Refused | NodeRegistered | NodeChanged | TaskCreated | TaskChanged | Placed | ServiceDeclared
          | ServiceDeleted | PlanApplied | HealthReported | GroupScaled | RunRecorded | JobPlanApplied
          | ClusterNamed | SnapshotRestored | SecretStored | SecretDeleted | Resealed | NetworkSet | LeaseAcquired
          | LeaseReleased | BatchApplied)


def _strings(raw: Any) -> tuple[str, ...]:
    return tuple(str(x) for x in raw or ())


def _declared(d: dict[str, Any]) -> ServiceDeclared:
    dep, run = d.get("deployment"), d.get("run")
    return ServiceDeclared(str(d["service"]), int(d["version"]), bool(d["changed"]),
                           Deployment.from_dict(dep) if dep else None, _strings(d.get("relabelled")),
                           _strings(d.get("moves")), JobRun.from_dict(run) if run else None)


def result_from_dict(d: dict[str, Any]) -> Result:
    """A result from its plain form (:meth:`to_dict`, or the dict of the release before typed
    results: the same keys, told apart by the one each kind alone has)."""
    if d.get("ok") is False:
        legacy = RefusalKind.EXISTS if d.get("exists") else RefusalKind.UNREADABLE if d.get("unreadable") else None
        return Refused(legacy or RefusalKind.parse(d.get("kind")), str(d.get("error", "")))
    if "results" in d:
        return BatchApplied(tuple(result_from_dict(r) for r in d["results"]))
    if "stored" in d:
        return SecretStored(str(d["stored"]), str(d["name"]), int(d["version"]), bool(d["changed"]),
                            _strings(d.get("rolled")))
    if "deleted" in d:
        return SecretDeleted(str(d["deleted"]), str(d["name"]))
    if "resealed" in d:
        return Resealed(_strings(d["resealed"]), _strings(d.get("skipped")))
    if "run" in d and "service" not in d:
        run = JobRun.from_dict(d["run"])
        if "started" in d:
            return JobPlanApplied(run, _strings(d["started"]), _strings(d.get("stopped")))
        return RunRecorded(run)
    if "settings" in d:
        return NetworkSet(NetworkSettings.from_dict(d["settings"]), bool(d["changed"]))
    if "lease" in d:
        return LeaseAcquired(SubnetLease.from_dict(d["lease"]), bool(d["created"]))
    if "released" in d:
        return LeaseReleased(SubnetLease.from_dict(d["released"]), str(d.get("reason", "")))
    if "placed" in d:
        return Placed(_strings(d["placed"]), _refusals_from_dict(d.get("refused")))
    if "started" in d:
        reverted = d.get("reverted")
        return PlanApplied(Deployment.from_dict(d["deployment"]), _strings(d["started"]),
                           _refusals_from_dict(d.get("refused")), _strings(d.get("stopped")),
                           _declared(reverted) if reverted else None)
    if "group" in d:
        return GroupScaled(str(d["group"]), int(d["count"]), _strings(d.get("created")), _strings(d.get("stopped")))
    if "service" in d:
        return ServiceDeleted(str(d["service"]), _strings(d["stopped"])) if "stopped" in d else _declared(d)
    if "node" in d:
        node = NodeInfo.from_dict(d["node"])
        return NodeRegistered(node, bool(d["created"])) if "created" in d else NodeChanged(node, bool(d["changed"]))
    if "task" in d:
        task = Task.from_dict(d["task"])
        return TaskCreated(task, bool(d["created"])) if "created" in d else TaskChanged(task)
    if "digest" in d:
        return SnapshotRestored(int(d["index"]), str(d["digest"]), str(d["cluster_id"]), int(d["nodes"]),
                                int(d["tasks"]), int(d["services"]))
    if "cluster_id" in d:
        return ClusterNamed(str(d["cluster_id"]))
    if "changed" in d:
        return HealthReported(bool(d["changed"]))
    raise ValueError(f"not a result: {sorted(d)}")
