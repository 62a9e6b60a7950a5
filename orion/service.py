"""A service: a named, versioned declaration of ``count`` replicas of one task.

Values only (the lowest layer, beside ``orion/model.py``): the spec a user
PUTs, the update and health-check blocks with their defaults, the volumes, and
the two rules the API and the state machine need before any planner runs:

* :func:`spec_diff` — what a new spec changes and whether running replicas must
  be *replaced* (a new container) or can be kept (relabelled in place).
* :func:`accept` — an idempotent PUT: the same spec again is not a new version.

The task part reuses :class:`orion.model.TaskSpec` (image, resources, command,
env, ports, selectors, restart policy), so a replica is placed, started and
healed exactly like a lone task. Durations are float seconds, like every other
time in Orion. The rolling update itself is ``orion/control/deployment.py``;
the health rule is ``orion/node/health.py``; the design is ``docs/services.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from orion.model import TaskSpec, Volume

# -- SERVICE_DEFAULTS ------------------------------------------------------------------------
# Every default of a service, with its reason. These move to orion/defaults.py when services
# are wired (defaults.py is being edited elsewhere right now; one home, later).
SERVICE_DEFAULTS: dict[str, Any] = {
    # Replace one replica at a time (Nomad max_parallel 1, Swarm parallelism 1): the smallest
    # step that still moves, and a bad version costs at most one replica before it is caught.
    "max_parallel": 1,
    # A new replica counts once healthy this long (Nomad's min_healthy_time 10 s; Swarm watches
    # 5 s). Most bad versions die within seconds of starting (config, port bind, a database
    # that refuses them); 10 s catches those and costs 30 s on a 3-replica rollout.
    "min_healthy_time": 10.0,
    # A new replica not counted healthy this long after it was created fails the deployment
    # (Nomad's healthy_deadline 5 m): room for an image pull and a slow start, not for a hang.
    "healthy_deadline": 300.0,
    # Nomad's default: a failed deployment stops where it is instead of changing production on
    # its own. With start-first the old replicas keep serving; at most max_parallel are affected.
    "auto_revert": False,
    # Start the new replica before stopping the old one: "update without downtime" needs the
    # capacity kept (Swarm defaults to stop-first; a service with a static host port gets
    # stop-first anyway, see orion/control/deployment.py).
    "order": "start-first",
    # A service is meant to keep running: any exit is restarted (Swarm's condition "any").
    "restart_policy": "always",
    # Health checks. The first check runs at once, then every interval (k8s periodSeconds 10;
    # Docker's 30 s is slow for a rollout that waits on it).
    "check_interval": 10.0,
    # A check that takes longer than this failed (k8s 1 s is tight for a cold JVM; 2 s).
    "check_timeout": 2.0,
    # Failures during this period after start do not count (Docker's start_period, default 0).
    "check_start_period": 0.0,
    # Consecutive failures that make a replica unhealthy (Docker retries 3, k8s 3): one lost
    # packet or GC pause is not a failure.
    "check_failures": 3,
}

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
    """

    name: str
    task: TaskSpec
    count: int = 1
    health_check: HealthCheck | None = None
    update: UpdatePolicy = field(default_factory=UpdatePolicy)
    volumes: tuple[Volume, ...] = ()

    def __post_init__(self) -> None:
        # One spelling of the template, so equal declarations compare equal.
        template = replace(self.task, name=self.name, group=self.name, count=1)
        object.__setattr__(self, "task", template)
        object.__setattr__(self, "volumes", tuple(sorted(self.volumes)))

    @property
    def static_host_ports(self) -> frozenset[tuple[int, str]]:
        return self.task.static_host_ports

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "task": self.task.to_dict(), "count": self.count,
                "health_check": self.health_check.to_dict() if self.health_check else None,
                "update": self.update.to_dict(), "volumes": [v.to_dict() for v in self.volumes]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServiceSpec:
        check = d.get("health_check")
        return cls(name=str(d["name"]), task=TaskSpec.from_dict(d["task"]), count=int(d.get("count", 1)),
                   health_check=HealthCheck.from_dict(check) if check else None,
                   update=UpdatePolicy.from_dict(d.get("update") or {}),
                   volumes=tuple(Volume.from_dict(v) for v in d.get("volumes") or ()))


@dataclass(frozen=True)
class Service:
    """A service as replicated: its current version and that version's spec."""

    name: str
    version: int
    spec: ServiceSpec

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "spec": self.spec.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Service:
        return cls(str(d["name"]), int(d["version"]), ServiceSpec.from_dict(d["spec"]))


# -- what a new spec changes -----------------------------------------------------------------

# TaskSpec fields whose change needs a new container, named as the API names them. A container's
# image, limits, command, env, ports and mounts are fixed at creation; a node selector change may
# make a running replica's node wrong, so it is replaced too (Nomad treats constraints the same).
_REPLACING_TASK_FIELDS = {
    "image": "image", "memory": "memory", "cpu_millis": "cpu", "command": "command", "env": "env",
    "ports": "portBindings", "node_selectors": "nodeSelectors",
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
        if f.name in _REPLACING_TASK_FIELDS:
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
    if old.count != new.count:
        changed.append("count")
    return SpecDiff(tuple(changed), replacing, old.count != new.count)


def accept(current: Service | None, spec: ServiceSpec) -> Service | None:
    """The service after a PUT of ``spec``; None when nothing changed (an idempotent PUT).

    Versions start at 1 and only grow: a revert is a new version holding an
    older spec, so the history reads in order of what happened.
    """
    if current is None:
        return Service(spec.name, 1, spec)
    if current.spec == spec:
        return None
    return Service(spec.name, current.version + 1, spec)
