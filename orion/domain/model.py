"""The values every part of Orion passes around.

These are plain frozen dataclasses with ``to_dict``/``from_dict`` so that they
cross every boundary (Raft log, HTTP, gossip metadata) as JSON-compatible
dicts, never as pickled classes: a rolling upgrade must be able to read what an
older node wrote.

Units are base units and integers wherever arithmetic must be exact: memory in
bytes, CPU in millicores (1000 = one core). Floats never enter bin-packing, so
two nodes applying the same log reach the same answer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

# Placement constraints (orion/domain/constraints.py). Nodes as registered, their statuses and
# attributes: orion/domain/node.py, named here too. What a task asks of a node (ports, memory
# and CPU, mounts): orion/domain/resources.py.
from orion.domain.constraints import Constraint
from orion.domain.constraints import parse as parse_constraint
from orion.domain.container import DEVICE_OFFER, NO_SETTINGS, PRIVILEGED_OFFER, VOLUME_OFFER, ContainerSettings
from orion.domain.node import NODE_ALIVE as NODE_ALIVE
from orion.domain.node import NODE_DEAD as NODE_DEAD
from orion.domain.node import NODE_LEFT as NODE_LEFT
from orion.domain.node import NODE_RESTARTING as NODE_RESTARTING
from orion.domain.node import NODE_STATES as NODE_STATES
from orion.domain.node import NODE_SUSPECT as NODE_SUSPECT
from orion.domain.node import NodeInfo as NodeInfo
from orion.domain.resources import PortBinding, Resources, Volume
from orion.domain.secrets import EnvSecret, FileRef

# Task lifecycle. ``pending`` waits for a placement; ``assigned`` is placed but
# not yet confirmed running by its node; the rest are reported by the node.
PENDING = "pending"
ASSIGNED = "assigned"
RUNNING = "running"
FAILED = "failed"
COMPLETED = "completed"
STOPPING = "stopping"
STOPPED = "stopped"
LOST = "lost"
TASK_STATES = (PENDING, ASSIGNED, RUNNING, FAILED, COMPLETED, STOPPING, STOPPED, LOST)
TERMINAL_STATES = frozenset({FAILED, COMPLETED, STOPPED, LOST})

# What the user wants of a task.
DESIRED_RUN = "run"
DESIRED_STOP = "stop"

# The most replicas one service may have: more is a typo, and one request must stay one
# small Raft entry (a ScaleTask carries an id per new replica). The API and CLI check it too.
MAX_SCALE = 1000


class NoFitKind(StrEnum):
    """Why the scheduler found no node for a task: the typed half of a no-fit reason.

    It travels in ``MarkUnschedulable``, is kept on the task (``Task.reason_kind``)
    and is the ``reason`` label of the no-fit metrics, so code counts and compares
    kinds and never parses the sentence shown to people. The values are wire and
    label strings: never rename one (dashboards and alerts select on them).
    """

    MEMORY = "memory"
    CPU = "cpu"
    MEMORY_CPU = "memory_cpu"
    PORTS = "ports"
    SELECTOR = "selector"
    # No eligible node declares every host volume the task mounts (orion/control/placement.py).
    VOLUME = "volume"
    # No eligible node hands out the host devices asked for (``host_devices``); allows privileged ones.
    DEVICE = "device"
    PRIVILEGED = "privileged"
    # No alive node satisfies the task's constraints (orion/domain/constraints.py).
    CONSTRAINT = "constraint"
    # Every eligible node already runs the service's most replicas per node (``maxPerNode``).
    MAX_PER_NODE = "max_per_node"
    # A global service's replica belongs to one node, which cannot take it now (dead, not ready).
    PINNED = "pinned"
    NO_NODES = "no_nodes"
    # A no-fit whose kind this node cannot name: written by an older node (no kind
    # in its command) or a newer one (a kind added since).
    OTHER = "other"

    @classmethod
    def parse(cls, value: object) -> NoFitKind:
        """The kind ``value`` names; OTHER for a missing or unknown one, so old and new logs both read."""
        try:
            return cls(value)
        except ValueError:
            return cls.OTHER


RESTART_POLICIES = ("never", "on-failure", "always")
PULL_POLICIES = ("if-not-present", "always", "never")


def wants_restart(policy: str, state: str) -> bool:
    """Does restart ``policy`` restart a task that ended in ``state``? (``orion/control/restart.py``)"""
    if policy == "always":
        return state in (FAILED, COMPLETED)
    if policy == "on-failure":
        return state == FAILED
    return False


@dataclass(frozen=True)
class TaskSpec:
    """What the user asked for; immutable once submitted."""

    image: str
    memory: int
    cpu_millis: int = 0
    name: str = ""
    command: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[PortBinding, ...] = ()
    node_selectors: tuple[tuple[str, str], ...] = ()
    restart_policy: str = "never"
    pull_policy: str = "if-not-present"
    count: int = 1
    # Replicas: the tasks of one service share a group id (``""``: a lone task, whose
    # group is its own id). Scaling adds or stops members of the group.
    group: str = ""
    volumes: tuple[Volume, ...] = ()
    # User, entrypoint, capabilities, devices, labels, logging, stop signal... (orion/domain/container.py).
    container: ContainerSettings = NO_SETTINGS
    # Secret and config files, secrets as environment variables (docs/secrets.md); versions pinned by the machine.
    files: tuple[FileRef, ...] = ()
    secret_env: tuple[EnvSecret, ...] = ()
    # On the overlay network (docs/networking.md): an address of its node's subnet, reachable from
    # every host. False: only its port bindings reach it (a task that must see the host's network).
    overlay: bool = True
    # Placement beyond label equality (orion/domain/constraints.py), kept sorted: every one must
    # hold on the node. ``spread``: a label whose values a service's replicas are spread over
    # (zones, racks); ``max_per_node``: at most this many of the group's replicas on one node
    # (0: no limit). Written into the dict only when set, so a spec without them digests as before.
    constraints: tuple[Constraint, ...] = ()
    spread: str = ""
    max_per_node: int = 0

    @property
    def resources(self) -> Resources:
        return Resources(self.memory, self.cpu_millis)

    @property
    def host_volumes(self) -> frozenset[str]:  # the node must declare every one
        return frozenset(v.source for v in self.volumes if v.type == "host")

    @property
    def host_needs(self) -> frozenset[tuple[str, str]]:
        """What only some nodes offer (``NodeInfo.offers``): its host volumes, host devices, privilege."""
        needs = {(VOLUME_OFFER, v) for v in self.host_volumes}
        needs.update((DEVICE_OFFER, d) for d in self.container.host_devices)
        if self.container.privileged:
            needs.add(PRIVILEGED_OFFER)
        return frozenset(needs)

    @property
    def static_host_ports(self) -> frozenset[tuple[int, str]]:
        """(host port, protocol) pairs this task needs exclusively on its node."""
        return frozenset((p.host_port, p.protocol) for p in self.ports if p.host_port)

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "memory": self.memory,
            "cpu_millis": self.cpu_millis,
            "name": self.name,
            "command": list(self.command) if self.command is not None else None,
            "env": dict(self.env),
            "ports": [p.to_dict() for p in self.ports],
            "node_selectors": dict(self.node_selectors),
            "restart_policy": self.restart_policy,
            "pull_policy": self.pull_policy,
            "count": self.count,
            "group": self.group,
            "volumes": [v.to_dict() for v in self.volumes],
            # Only when set: a task without settings reads (and digests) as it did before them.
            **({"container": self.container.to_dict()} if self.container != NO_SETTINGS else {}),
            # Only when used, as the container settings (docs/secrets.md).
            **({"files": [f.to_dict() for f in self.files]} if self.files else {}),
            **({"secret_env": [e.to_dict() for e in self.secret_env]} if self.secret_env else {}),
            # Only when off: a task on the overlay (the default) is written as before it existed,
            # so its log entries and snapshots (and their digests) read the same on an older node.
            **({} if self.overlay else {"overlay": False}),
            **({"constraints": [str(c) for c in self.constraints]} if self.constraints else {}),
            **({"spread": self.spread} if self.spread else {}),
            **({"max_per_node": self.max_per_node} if self.max_per_node else {}),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaskSpec:
        cmd = d.get("command")
        return cls(
            image=str(d["image"]),
            memory=int(d["memory"]),
            cpu_millis=int(d.get("cpu_millis", 0)),
            name=str(d.get("name", "")),
            command=tuple(cmd) if cmd is not None else None,
            env=tuple(sorted(dict(d.get("env") or {}).items())),
            ports=tuple(PortBinding.from_dict(p) for p in d.get("ports") or ()),
            node_selectors=tuple(sorted(dict(d.get("node_selectors") or {}).items())),
            restart_policy=str(d.get("restart_policy", "never")),
            pull_policy=str(d.get("pull_policy", "if-not-present")),
            count=int(d.get("count", 1)),
            group=str(d.get("group", "")),
            volumes=tuple(Volume.from_dict(v) for v in d.get("volumes") or ()),
            container=ContainerSettings.from_dict(d["container"]) if d.get("container") else NO_SETTINGS,
            files=tuple(sorted(FileRef.from_dict(f) for f in d.get("files") or ())),
            secret_env=tuple(sorted(EnvSecret.from_dict(e) for e in d.get("secret_env") or ())),
            overlay=bool(d.get("overlay", True)),
            constraints=tuple(sorted({parse_constraint(c) for c in d.get("constraints") or ()})),
            spread=str(d.get("spread", "")),
            max_per_node=int(d.get("max_per_node", 0)),
        )


@dataclass(frozen=True)
class PriorPlacement:
    """Where a migrating task's previous copy runs (a drain, see ``orion/control/drain.py``).

    That node's reconciler keeps the container of this generation running until
    the leader commits the migration finished (the replacement runs, or the
    drain deadline passed), so a drained task never has a gap.
    """

    node_id: str
    generation: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PriorPlacement:
        return cls(str(d["node_id"]), int(d["generation"]))


# A service replica's fields of Task, with their JSON types (docs/services.md).
_REPLICA_FIELDS = {"service": str, "version": int, "slot": int, "deployment": int, "created_at": float,
                   "health": str, "health_since": float, "health_output": str}
# Written only when set (a task without them digests as before): a global service's replica's node,
# a job attempt's run, and its container's address on the overlay as its node reported it.
_OPTIONAL_FIELDS = {"pin": str, "run": int, "ip": str}


@dataclass(frozen=True)
class Task:
    """The replicated record of one task: spec plus where and how it runs.

    ``generation`` increases with each placement, so a report from a node that
    ran an older placement (stale after a reschedule) is recognised and refused.
    ``reason`` is a sentence for people; ``reason_kind`` is set (only) while that
    sentence is the scheduler's no-fit reason, for code that must tell causes apart.
    """

    id: str
    spec: TaskSpec
    state: str = PENDING
    desired: str = DESIRED_RUN
    node_id: str | None = None
    generation: int = 0
    reason: str = ""
    reason_kind: NoFitKind | None = None
    container_id: str | None = None
    host_ports: tuple[tuple[str, int], ...] = ()
    exit_code: int | None = None
    created_index: int = 0
    updated_index: int = 0
    restarts: int = 0
    # Set while a drain migrates the task: its old copy, kept running until the new one runs.
    migrating_from: PriorPlacement | None = None
    # A service's replica: the service ("" for a lone task), the version it runs, its slot, the
    # deployment (seq) that created it and when (leader's clock); then its current placement's
    # health as its node reported it ("": not since it was placed), since when (node's clock), output.
    service: str = ""
    version: int = 0
    slot: int = 0
    deployment: int = 0
    created_at: float = 0.0
    health: str = ""
    health_since: float = 0.0
    health_output: str = ""
    # A global service's replica belongs to one node (``pin``): it is placed there or nowhere, and
    # stops when the node is no longer eligible. A job's attempt carries its run (``run``, from 1).
    pin: str = ""
    run: int = 0
    # Its container's address on the overlay, as its node reported it (None: not on it, or not yet).
    ip: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "spec": self.spec.to_dict(),
            "state": self.state,
            "desired": self.desired,
            "node_id": self.node_id,
            "generation": self.generation,
            "reason": self.reason,
            "reason_kind": None if self.reason_kind is None else str(self.reason_kind),
            "container_id": self.container_id,
            "host_ports": dict(self.host_ports),
            "exit_code": self.exit_code,
            "created_index": self.created_index,
            "updated_index": self.updated_index,
            "restarts": self.restarts,
            "migrating_from": self.migrating_from.to_dict() if self.migrating_from else None,
            **{key: getattr(self, key) for key in _REPLICA_FIELDS},
            **{key: getattr(self, key) for key in _OPTIONAL_FIELDS if getattr(self, key)},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Task:
        return cls(
            id=str(d["id"]),
            spec=TaskSpec.from_dict(d["spec"]),
            state=str(d.get("state", PENDING)),
            desired=str(d.get("desired", DESIRED_RUN)),
            node_id=d.get("node_id"),
            generation=int(d.get("generation", 0)),
            reason=str(d.get("reason", "")),
            reason_kind=NoFitKind.parse(d["reason_kind"]) if d.get("reason_kind") else None,
            container_id=d.get("container_id"),
            host_ports=tuple(sorted(dict(d.get("host_ports") or {}).items())),
            exit_code=d.get("exit_code"),
            created_index=int(d.get("created_index", 0)),
            updated_index=int(d.get("updated_index", 0)),
            restarts=int(d.get("restarts", 0)),
            migrating_from=PriorPlacement.from_dict(d["migrating_from"]) if d.get("migrating_from") else None,
            **{key: kind(d[key]) for key, kind in _REPLICA_FIELDS.items() if key in d},
            **{key: kind(d[key]) for key, kind in _OPTIONAL_FIELDS.items() if d.get(key) is not None},
        )


@dataclass(frozen=True)
class NodeUsage:
    """What is already reserved on one node: resources and static host ports."""

    used: Resources = Resources()
    ports: frozenset[tuple[int, str]] = frozenset()

    def plus(self, spec: TaskSpec) -> NodeUsage:
        return NodeUsage(self.used + spec.resources, self.ports | spec.static_host_ports)


EMPTY_USAGE = NodeUsage()
