"""A node as the replicated state records it: identity, addresses, capacity, labels, status,
what it offers tasks, and the attributes placement constraints may name
(``orion/domain/constraints.py``).

Split from ``orion/domain/model.py`` (which names everything here too, so callers import
either) to keep each module to one kind of value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orion.domain.container import DEVICE_OFFER, PRIVILEGED_OFFER, VOLUME_OFFER
from orion.domain.resources import Resources
from orion.version import LOG_VERSION

# Node status in the registry: the leader commits what gossip sees (orion/membership/liveness.py).
NODE_ALIVE = "alive"
NODE_SUSPECT = "suspect"
NODE_DEAD = "dead"
NODE_LEFT = "left"
# Announced by a node's own graceful stop (SIGTERM, ``systemctl restart orion``): its agent
# is going away for a moment but its containers keep running. Nothing new is placed there
# and its tasks stay put until it registers again, or ``restart_grace`` runs out.
NODE_RESTARTING = "restarting"
NODE_STATES = (NODE_ALIVE, NODE_SUSPECT, NODE_DEAD, NODE_LEFT, NODE_RESTARTING)


@dataclass(frozen=True)
class NodeInfo:
    """A node as registered in Raft: identity, addresses, capacity, labels.

    ``capacity`` is what the scheduler may hand out: measured on the host
    (/proc, cgroups, the engine) minus the reserved overhead, never a constant.
    """

    id: str
    api_addr: str
    raft_addr: str
    gossip_addr: str = ""
    capacity: Resources = field(default_factory=Resources)
    labels: tuple[tuple[str, str], ...] = ()
    status: str = NODE_ALIVE
    status_index: int = 0
    # The gossip incarnation of the process that registered: gossip news about an older
    # life of this node (a "dead" or "left" from before a restart) is then recognised as stale.
    incarnation: int = 0
    # Readiness (Kubernetes' Ready condition): the node says whether its container engine
    # answers (orion/node/readiness.py). An alive node that is not ready gets no tasks and
    # loses the ones it holds, like a dead one; ``ready_reason`` says why.
    ready: bool = True
    ready_reason: str = ""
    # Host volumes this node declares (config ``host_volumes``; names only, the paths stay local).
    host_volumes: tuple[str, ...] = ()
    # Host devices this node hands to tasks (config ``host_devices``) and whether it runs privileged
    # containers (``allow_privileged``): a task asking for either is placed only where allowed.
    host_devices: tuple[str, ...] = ()
    allow_privileged: bool = False
    # What constraints may name besides labels (orion/domain/constraints.py), as the node reports
    # them when it registers: its hostname, and its container engine's OS, architecture and
    # version (the engine's, since that is where containers run). "" when not reported (an agent
    # older than these fields): a constraint on one then does not match.
    hostname: str = ""
    os: str = ""
    arch: str = ""
    engine_version: str = ""

    @property
    def platform(self) -> tuple[str, str, str]:
        """(os, arch, engine version): what nodes that look alike to the planner share."""
        return self.os, self.arch, self.engine_version
    # The newest Raft log format the registering agent reads (orion/version.py; a
    # registration without it, from an agent older than the announcement, reads as 0).
    # The cluster writes a newer format only once every node reads it: a rolling upgrade.
    log_version: int = LOG_VERSION

    @property
    def schedulable(self) -> bool:
        """May take tasks: alive in the registry and its engine answers."""
        return self.status == NODE_ALIVE and self.ready

    @property
    def offers(self) -> frozenset[tuple[str, str]]:
        """What this node offers that a task may need (``TaskSpec.host_needs``)."""
        offers = {(VOLUME_OFFER, v) for v in self.host_volumes} | {(DEVICE_OFFER, d) for d in self.host_devices}
        return frozenset(offers | ({PRIVILEGED_OFFER} if self.allow_privileged else set()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "api_addr": self.api_addr,
            "raft_addr": self.raft_addr,
            "gossip_addr": self.gossip_addr,
            "capacity": self.capacity.to_dict(),
            "labels": dict(self.labels),
            "status": self.status,
            "status_index": self.status_index,
            "incarnation": self.incarnation,
            "ready": self.ready,
            "ready_reason": self.ready_reason,
            "host_volumes": list(self.host_volumes),
            **({"host_devices": list(self.host_devices)} if self.host_devices else {}),
            **({"allow_privileged": True} if self.allow_privileged else {}),
            "log_version": self.log_version,
            **{key: getattr(self, key) for key in _NODE_ATTRIBUTES if getattr(self, key)},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeInfo:
        return cls(
            id=str(d["id"]),
            api_addr=str(d.get("api_addr", "")),
            raft_addr=str(d.get("raft_addr", "")),
            gossip_addr=str(d.get("gossip_addr", "")),
            capacity=Resources.from_dict(d.get("capacity") or {}),
            labels=tuple(sorted(dict(d.get("labels") or {}).items())),
            status=str(d.get("status", NODE_ALIVE)),
            status_index=int(d.get("status_index", 0)),
            incarnation=int(d.get("incarnation", 0)),
            ready=bool(d.get("ready", True)),
            ready_reason=str(d.get("ready_reason", "")),
            host_volumes=tuple(sorted(str(v) for v in d.get("host_volumes") or ())),
            host_devices=tuple(sorted(str(v) for v in d.get("host_devices") or ())),
            allow_privileged=bool(d.get("allow_privileged", False)),
            log_version=int(d.get("log_version", 0)),
            **{key: str(d[key]) for key in _NODE_ATTRIBUTES if key in d},
        )


# Reported at registration, written only when known (a record without them digests as before).
_NODE_ATTRIBUTES = ("hostname", "os", "arch", "engine_version")
