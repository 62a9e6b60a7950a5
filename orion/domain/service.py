"""A service: a named, versioned declaration of ``count`` replicas of one task.

Values only (the lowest layer, beside ``orion/domain/model.py``): the spec a user
PUTs, the update and health-check blocks with their defaults, the volumes, and
the deployments' records. What a new spec changes is ``orion/domain/spec_diff.py``. That the
same spec again is no new version is the state machine's rule
(``orion/state/services.py``, ``PutService``).

The task part reuses :class:`orion.domain.model.TaskSpec` (image, resources, command,
env, ports, selectors, restart policy), so a replica is placed, started and
healed exactly like a lone task. Durations are float seconds, like every other
time in Orion. The rolling update itself is ``orion/control/deployment.py``;
the health rule is ``orion/node/health.py``; the design is ``docs/services.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from orion.defaults import SERVICE_DEFAULTS
from orion.domain.constraints import matches_all
from orion.domain.job import JobPolicy
from orion.domain.model import NODE_LEFT, NodeInfo, TaskSpec, Volume
from orion.domain.network import Publish, reach_from_dict, reach_to_dict

ORDERS = ("start-first", "stop-first")
# What a service runs (docs/services.md, "Modes"): ``count`` replicas, one replica on every
# eligible node (Swarm global, Nomad system), or attempts until ``completions`` succeed (a job).
REPLICATED = "replicated"
GLOBAL = "global"
JOB = "job"
MODES = (REPLICATED, GLOBAL, JOB)
# A replica's health as its node reports it (orion/node/health.py decides it). A service without
# a health check reports ``healthy`` once its container runs.
STARTING = "starting"
HEALTHY = "healthy"
UNHEALTHY = "unhealthy"
HEALTH_STATES = (STARTING, HEALTHY, UNHEALTHY)
CHECK_KINDS = ("http", "tcp", "exec")


@dataclass(frozen=True)
class HealthCheck:
    """How a node decides a replica serves: an HTTP GET, a TCP connect, or a command.

    ``port`` is the container port key (``"80/tcp"``) for http and tcp checks;
    ``path`` is used by http, ``argv`` by exec.
    """

    kind: str
    port: str = ""
    path: str = "/"
    argv: tuple[str, ...] = ()
    interval: float = SERVICE_DEFAULTS["check_interval"]
    timeout: float = SERVICE_DEFAULTS["check_timeout"]
    start_period: float = SERVICE_DEFAULTS["check_start_period"]
    failures: int = SERVICE_DEFAULTS["check_failures"]

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "port": self.port, "path": self.path, "argv": list(self.argv),
                "interval": self.interval, "timeout": self.timeout,
                "start_period": self.start_period, "failures": self.failures}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HealthCheck:
        return cls(kind=str(d["kind"]), port=str(d.get("port", "")), path=str(d.get("path", "/")),
                   argv=tuple(d.get("argv") or ()),
                   interval=float(d.get("interval", SERVICE_DEFAULTS["check_interval"])),
                   timeout=float(d.get("timeout", SERVICE_DEFAULTS["check_timeout"])),
                   start_period=float(d.get("start_period", SERVICE_DEFAULTS["check_start_period"])),
                   failures=int(d.get("failures", SERVICE_DEFAULTS["check_failures"])))


@dataclass(frozen=True)
class UpdatePolicy:
    """How a new version replaces the old one (Nomad's update block, Swarm's UpdateConfig)."""

    max_parallel: int = SERVICE_DEFAULTS["max_parallel"]
    min_healthy_time: float = SERVICE_DEFAULTS["min_healthy_time"]
    healthy_deadline: float = SERVICE_DEFAULTS["healthy_deadline"]
    auto_revert: bool = SERVICE_DEFAULTS["auto_revert"]
    order: str = SERVICE_DEFAULTS["order"]
    # Move replicas to a node that joins or returns, by these rules (``orion service rebalance``
    # done by the leader when the spread is uneven). Written only when set.
    rebalance: bool = SERVICE_DEFAULTS["rebalance"]

    def to_dict(self) -> dict[str, Any]:
        return {"max_parallel": self.max_parallel, "min_healthy_time": self.min_healthy_time,
                "healthy_deadline": self.healthy_deadline, "auto_revert": self.auto_revert,
                "order": self.order, **({"rebalance": True} if self.rebalance else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UpdatePolicy:
        base = cls()
        return cls(max_parallel=int(d.get("max_parallel", base.max_parallel)),
                   min_healthy_time=float(d.get("min_healthy_time", base.min_healthy_time)),
                   healthy_deadline=float(d.get("healthy_deadline", base.healthy_deadline)),
                   auto_revert=bool(d.get("auto_revert", base.auto_revert)),
                   order=str(d.get("order", base.order)), rebalance=bool(d.get("rebalance", False)))


@dataclass(frozen=True)
class ServiceSpec:
    """What a user declares with ``PUT /services/<name>``.

    ``task`` is the template of every replica (its ``count`` is 1 and its
    ``group`` and ``name`` are the service's name; :meth:`replica_spec` gives it).
    ``endpoint_mode``, ``publish`` and ``overlay`` are how it is reached (docs/networking.md):
    a VIP or DNS round robin, ports opened on every host, and whether its replicas join the
    overlay at all (``overlay`` is copied into the template: the node reads it there).
    ``stack`` names the stack the service belongs to ("" for none): a stack is the services
    that carry its name (docs/stacks.md), named ``<stack>_<service>`` as Swarm names them.
    """

    name: str
    task: TaskSpec
    count: int = 1
    stack: str = ""
    health_check: HealthCheck | None = None
    update: UpdatePolicy = field(default_factory=UpdatePolicy)
    volumes: tuple[Volume, ...] = ()
    # ``replicated`` (``count`` replicas), ``global`` (one per eligible node: ``count`` is 0) or
    # ``job`` (``job`` says how it runs: ``count`` is 0). Written only when not replicated.
    mode: str = REPLICATED
    job: JobPolicy | None = None
    endpoint_mode: str = "vip"
    publish: tuple[Publish, ...] = ()
    overlay: bool = True

    def __post_init__(self) -> None:
        # One spelling of the template, so equal declarations compare equal. The service's volumes
        # are its replicas' mounts: they are placed only on nodes that declare its host volumes.
        # A job's attempts are never restarted by a restart policy: the job retries them itself.
        volumes = tuple(sorted(self.volumes))
        template = replace(self.task, name=self.name, group=self.name, count=1, volumes=volumes,
                           overlay=self.overlay)
        if self.mode == JOB:
            template = replace(template, restart_policy="never")
            object.__setattr__(self, "job", self.job or JobPolicy())
        else:
            object.__setattr__(self, "job", None)
        if self.mode != REPLICATED:
            object.__setattr__(self, "count", 0)
        object.__setattr__(self, "task", template)
        object.__setattr__(self, "volumes", volumes)
        object.__setattr__(self, "publish", tuple(sorted(self.publish)))

    @property
    def scheduled(self) -> bool:
        """A cron job: it runs at its schedule's times, not when declared."""
        return self.job is not None and bool(self.job.schedule)

    @property
    def static_host_ports(self) -> frozenset[tuple[int, str]]:
        return self.task.static_host_ports

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "task": self.task.to_dict(), "count": self.count,
               "health_check": self.health_check.to_dict() if self.health_check else None,
               "update": self.update.to_dict(), "volumes": [v.to_dict() for v in self.volumes],
               **({"mode": self.mode} if self.mode != REPLICATED else {}),
               **({"job": self.job.to_dict()} if self.job is not None else {})}
        # Only when set: a service outside any stack is written exactly as before stacks existed,
        # so its log entries and snapshots (and their digests) do not change. The same for how it
        # is reached (orion/domain/network.py).
        if self.stack:
            out["stack"] = self.stack
        return {**out, **reach_to_dict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceSpec:
        check = d.get("health_check")
        job = d.get("job")
        return cls(name=str(d["name"]), task=TaskSpec.from_dict(d["task"]), count=int(d.get("count", 1)),
                   health_check=HealthCheck.from_dict(check) if check else None,
                   update=UpdatePolicy.from_dict(d.get("update") or {}),
                   volumes=tuple(Volume.from_dict(v) for v in d.get("volumes") or ()),
                   mode=str(d.get("mode", REPLICATED)), job=JobPolicy.from_dict(job) if job else None,
                   stack=str(d.get("stack", "")), **reach_from_dict(d))


def eligible(spec: ServiceSpec, node: NodeInfo) -> bool:
    """Is ``node`` one a global service runs a replica on: not drained (``left``), and it matches
    the selectors and constraints and declares the host volumes. The global planner and the
    state machine's re-check both ask this, so they cannot disagree."""
    task = spec.task
    return (node.status != NODE_LEFT and set(task.node_selectors) <= set(node.labels)
            and matches_all(task.constraints, node) and task.host_volumes <= set(node.host_volumes))


# -- deployments: the record of one rollout and what the planner decides --------------------------
# Values here (not in orion/control/deployment.py, the planner) because the state machine keeps
# the record and the Raft commands carry the decisions: both live below the control layer.

# Deployment states. ``running`` moves replicas; the others are final.
RUNNING_DEPLOYMENT = "running"
SUCCESSFUL = "successful"
FAILED_DEPLOYMENT = "failed"
REVERTED = "reverted"  # failed, and went back to the last fully healthy version
CANCELLED = "cancelled"  # superseded by a newer version before it finished
DEPLOYMENT_STATES = (RUNNING_DEPLOYMENT, SUCCESSFUL, FAILED_DEPLOYMENT, REVERTED, CANCELLED)
# Why a deployment replaces replicas without a new spec: every one (``orion service redeploy``,
# Swarm's --force) or the chosen ones (``orion service rebalance``). "" is a new spec (or a rollback).
REDEPLOY = "redeploy"
REBALANCE = "rebalance"


@dataclass(frozen=True)
class Deployment:
    """The replicated record of one rollout of ``service`` to ``version``.

    ``seq`` numbers the service's deployments; ``revert_to`` is the last
    version that was fully healthy when it began (None: nothing to return to).
    """

    service: str
    seq: int
    version: int
    started_at: float
    state: str = RUNNING_DEPLOYMENT
    reason: str = ""
    revert_to: int | None = None
    rollback: bool = False
    kind: str = ""  # REDEPLOY, REBALANCE, or "" (written only when set)

    @property
    def id(self) -> str:
        return f"{self.service}#{self.seq}"

    def node_replica_id(self, node: str, step: int) -> str:
        """The id of the global replica this deployment starts on ``node`` at the record's
        ``step``: the same on every leader, new at every step (a node may leave and return)."""
        return f"{self.service}.{node}.d{self.seq}.{step}"

    def replica_id(self, slot: int) -> str:
        """The id of the replica this deployment starts in ``slot``: the same on every leader."""
        return f"{self.service}.{slot}.d{self.seq}"

    def refill_id(self, slot: int, step: int) -> str:
        """The id of a replacement started in ``slot`` after this deployment succeeded, at the
        record's ``step``: the same on every leader, and new at every step."""
        return f"{self.service}.{slot}.d{self.seq}.{step}"

    def superseded(self, version: int) -> Deployment:
        """This deployment, ended because version ``version`` was declared meanwhile."""
        if self.state != RUNNING_DEPLOYMENT:
            return self
        return replace(self, state=CANCELLED, reason=f"superseded by version {version}")

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "seq": self.seq, "version": self.version,
                "started_at": self.started_at, "state": self.state, "reason": self.reason,
                "revert_to": self.revert_to, "rollback": self.rollback, **({"kind": self.kind} if self.kind else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Deployment:
        revert_to = d.get("revert_to")
        return cls(str(d["service"]), int(d["seq"]), int(d["version"]), float(d["started_at"]),
                   str(d.get("state", RUNNING_DEPLOYMENT)), str(d.get("reason", "")),
                   int(revert_to) if revert_to is not None else None, bool(d.get("rollback", False)),
                   str(d.get("kind", "")))


@dataclass(frozen=True)
class StartReplica:
    """Create the replica ``id`` of ``version`` in ``slot`` (pending: the scheduler places it);
    a global service's replica on ``node`` (its slot is the node, ``slot`` 0)."""

    id: str
    slot: int
    version: int
    node: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "slot": self.slot, "version": self.version, **({"node": self.node} if self.node else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StartReplica:
        return cls(str(d["id"]), int(d["slot"]), int(d["version"]), str(d.get("node", "")))


@dataclass(frozen=True)
class StopReplica:
    """Stop the replica ``id`` (of ``slot``), saying why on the task."""

    id: str
    slot: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "slot": self.slot, "reason": self.reason}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StopReplica:
        return cls(str(d["id"]), int(d["slot"]), str(d.get("reason", "")))


# Slot phases, for status output.
DONE = "done"
UPDATING = "updating"
QUEUED = "queued"


@dataclass(frozen=True)
class SlotProgress:
    """Where one slot of a rollout is: done, updating (its new replica on its way), queued."""

    slot: int
    phase: str
    replica: str | None  # the target version's replica, if any
    old: tuple[str, ...] = ()
    node: str = ""  # a global service's slot is its node

    def to_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "phase": self.phase, "replica": self.replica, "old": list(self.old),
                **({"node": self.node} if self.node else {})}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SlotProgress:
        replica = d.get("replica")
        return cls(int(d["slot"]), str(d["phase"]), None if replica is None else str(replica),
                   tuple(str(o) for o in d.get("old") or ()), str(d.get("node", "")))
