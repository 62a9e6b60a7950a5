"""A service: a named, versioned declaration of ``count`` replicas of one task.

Values only (the lowest layer, beside ``orion/domain/model.py``): the spec a user
PUTs, the update and health-check blocks with their defaults, the volumes, and
the rule the API and the state machine need before any planner runs:
:func:`spec_diff`, what a new spec changes and whether running replicas must be
*replaced* (a new container) or can be kept (relabelled in place). That the
same spec again is no new version is the state machine's rule
(``orion/state/services.py``, ``PutService``).

The task part reuses :class:`orion.domain.model.TaskSpec` (image, resources, command,
env, ports, selectors, restart policy), so a replica is placed, started and
healed exactly like a lone task. Durations are float seconds, like every other
time in Orion. The rolling update itself is ``orion/control/deployment.py``;
the health rule is ``orion/node/health.py``; the design is ``docs/services.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from orion.defaults import SERVICE_DEFAULTS
from orion.domain.model import TaskSpec, Volume
from orion.domain.network import Publish

ORDERS = ("start-first", "stop-first")
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

    def to_dict(self) -> dict[str, Any]:
        return {"max_parallel": self.max_parallel, "min_healthy_time": self.min_healthy_time,
                "healthy_deadline": self.healthy_deadline, "auto_revert": self.auto_revert,
                "order": self.order}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UpdatePolicy:
        base = cls()
        return cls(max_parallel=int(d.get("max_parallel", base.max_parallel)),
                   min_healthy_time=float(d.get("min_healthy_time", base.min_healthy_time)),
                   healthy_deadline=float(d.get("healthy_deadline", base.healthy_deadline)),
                   auto_revert=bool(d.get("auto_revert", base.auto_revert)),
                   order=str(d.get("order", base.order)))


@dataclass(frozen=True)
class ServiceSpec:
    """What a user declares with ``PUT /services/<name>``.

    ``task`` is the template of every replica (its ``count`` is 1 and its
    ``group`` and ``name`` are the service's name; :meth:`replica_spec` gives it).
    ``endpoint_mode``, ``publish`` and ``overlay`` are how it is reached (docs/network-leases.md):
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
    endpoint_mode: str = "vip"
    publish: tuple[Publish, ...] = ()
    overlay: bool = True

    def __post_init__(self) -> None:
        # One spelling of the template, so equal declarations compare equal. The service's volumes
        # are its replicas' mounts: they are placed only on nodes that declare its host volumes.
        volumes = tuple(sorted(self.volumes))
        template = replace(self.task, name=self.name, group=self.name, count=1, volumes=volumes,
                           overlay=self.overlay)
        object.__setattr__(self, "task", template)
        object.__setattr__(self, "volumes", volumes)
        object.__setattr__(self, "publish", tuple(sorted(self.publish)))

    @property
    def static_host_ports(self) -> frozenset[tuple[int, str]]:
        return self.task.static_host_ports

    def to_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "task": self.task.to_dict(), "count": self.count,
               "health_check": self.health_check.to_dict() if self.health_check else None,
               "update": self.update.to_dict(), "volumes": [v.to_dict() for v in self.volumes]}
        # Only when set: a service outside any stack, or reached the default way (a VIP on the
        # overlay, nothing published), is written exactly as before stacks and the overlay
        # existed, so its log entries and snapshots (and their digests) do not change.
        if self.stack:
            out["stack"] = self.stack
        if self.endpoint_mode != "vip":
            out["endpoint_mode"] = self.endpoint_mode
        if self.publish:
            out["publish"] = [p.to_dict() for p in self.publish]
        if not self.overlay:
            out["overlay"] = False
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceSpec:
        check = d.get("health_check")
        return cls(name=str(d["name"]), task=TaskSpec.from_dict(d["task"]), count=int(d.get("count", 1)),
                   health_check=HealthCheck.from_dict(check) if check else None,
                   update=UpdatePolicy.from_dict(d.get("update") or {}),
                   volumes=tuple(Volume.from_dict(v) for v in d.get("volumes") or ()),
                   endpoint_mode=str(d.get("endpoint_mode", "vip")),
                   publish=tuple(Publish.from_dict(p) for p in d.get("publish") or ()),
                   overlay=bool(d.get("overlay", True)),
                   stack=str(d.get("stack", "")))


def service_ports(spec: ServiceSpec, task: TaskSpec | None = None) -> tuple[tuple[int, str, int | None], ...]:
    """The ports a service's replicas answer on, as discovery and the load balancer take them:
    (target, protocol, published port or None), sorted. The container ports of its port
    bindings and of ``publish``; reached through the VIP on the same number (Swarm's rule).
    ``task``: a replica's own spec (an older version's may bind other ports), else the template."""
    published = {(p.target, p.protocol): p.published for p in spec.publish}
    targets = {(p.container_port, p.protocol) for p in (task or spec.task).ports} | set(published)
    return tuple(sorted((target, proto, published.get((target, proto))) for target, proto in targets))


# -- what a new spec changes -----------------------------------------------------------------

# TaskSpec fields whose change needs a new container, named as the API names them. A container's
# image, limits, command, env, ports, mounts and networks (the overlay) are fixed at creation; a
# node selector change may make a running replica's node wrong, so it is replaced too (Nomad treats
# constraints the same). The container settings (``TaskSpec.container``: user, capabilities, ...)
# all replace, each named.
_REPLACING_TASK_FIELDS = {
    "image": "image", "memory": "memory", "cpu_millis": "cpu", "command": "command", "env": "env",
    "ports": "portBindings", "node_selectors": "nodeSelectors", "overlay": "overlay",
}
# Kept in place: decided by the leader (restart policy), read at the next pull (pull policy).
_IN_PLACE_TASK_FIELDS = {"restart_policy": "restartPolicy", "pull_policy": "pullPolicy"}


@dataclass(frozen=True)
class SpecDiff:
    """What changed from one spec to the next, in API field names.

    ``replace``: running replicas need new containers (a rolling update).
    Otherwise the change is applied in place: replicas are relabelled with the
    new version, and a count change only adds or stops replicas (``scale``).
    """

    changed: tuple[str, ...]
    replace: bool
    scale: bool

    @property
    def unchanged(self) -> bool:
        return not self.changed


def spec_diff(old: ServiceSpec, new: ServiceSpec) -> SpecDiff:
    """Compare two specs of one service (see :class:`SpecDiff`)."""
    changed: list[str] = []
    replacing = False
    for f in fields(TaskSpec):
        if getattr(old.task, f.name) == getattr(new.task, f.name):
            continue
        if f.name == "container":  # each of them is fixed at creation: a new container
            changed.extend(new.task.container.changed(old.task.container))
            replacing = True
        elif f.name in _REPLACING_TASK_FIELDS:
            changed.append(_REPLACING_TASK_FIELDS[f.name])
            replacing = True
        elif f.name in _IN_PLACE_TASK_FIELDS:
            changed.append(_IN_PLACE_TASK_FIELDS[f.name])
    if old.volumes != new.volumes:
        changed.append("volumes")
        replacing = True
    # A changed check is run by the node against the same container; a changed update block
    # governs the next rollout. Neither needs a new container.
    if old.health_check != new.health_check:
        changed.append("healthCheck")
    if old.update != new.update:
        changed.append("update")
    # The VIP and the published ports are the load balancer's, in every host's kernel: the
    # replicas keep their containers and addresses.
    if old.endpoint_mode != new.endpoint_mode:
        changed.append("endpointMode")
    if old.publish != new.publish:
        changed.append("publish")
    # Which stack lists the service: a label of the declaration, nothing a container holds.
    if old.stack != new.stack:
        changed.append("stack")
    if old.count != new.count:
        changed.append("count")
    return SpecDiff(tuple(changed), replacing, old.count != new.count)


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

    @property
    def id(self) -> str:
        return f"{self.service}#{self.seq}"

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
                "revert_to": self.revert_to, "rollback": self.rollback}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Deployment:
        revert_to = d.get("revert_to")
        return cls(str(d["service"]), int(d["seq"]), int(d["version"]), float(d["started_at"]),
                   str(d.get("state", RUNNING_DEPLOYMENT)), str(d.get("reason", "")),
                   int(revert_to) if revert_to is not None else None, bool(d.get("rollback", False)))


@dataclass(frozen=True)
class StartReplica:
    """Create the replica ``id`` of ``version`` in ``slot`` (pending: the scheduler places it)."""

    id: str
    slot: int
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "slot": self.slot, "version": self.version}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StartReplica:
        return cls(str(d["id"]), int(d["slot"]), int(d["version"]))


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

    def to_dict(self) -> dict[str, Any]:
        return {"slot": self.slot, "phase": self.phase, "replica": self.replica, "old": list(self.old)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SlotProgress:
        replica = d.get("replica")
        return cls(int(d["slot"]), str(d["phase"]), None if replica is None else str(replica),
                   tuple(str(o) for o in d.get("old") or ()))
