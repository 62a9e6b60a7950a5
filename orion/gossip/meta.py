"""The metadata payload each Orion node gossips about itself.

Gossip itself treats metadata as an opaque small dict; this is the typed shape
the agent puts in it. ``v`` is the schema version: readers ignore keys they do
not know and fill defaults for missing ones, so nodes of different versions can
share a cluster during a rolling upgrade. Keys are short because every "alive"
message carries the whole payload (limit: GossipConfig.meta_max_bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orion.domain.model import Resources

META_VERSION = 1


@dataclass(frozen=True)
class NodeMeta:
    node_id: str
    api_addr: str = ""
    raft_addr: str = ""
    gossip_addr: str = ""
    capacity: Resources = Resources()
    used: Resources = Resources()
    labels: tuple[tuple[str, str], ...] = ()
    role: str = "worker"

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": META_VERSION,
            "id": self.node_id,
            "api": self.api_addr,
            "raft": self.raft_addr,
            "gossip": self.gossip_addr,
            "cap": [self.capacity.memory, self.capacity.cpu_millis],
            "used": [self.used.memory, self.used.cpu_millis],
            "labels": dict(self.labels),
            "role": self.role,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NodeMeta:
        cap = d.get("cap") or [0, 0]
        used = d.get("used") or [0, 0]
        return cls(
            node_id=str(d.get("id", "")),
            api_addr=str(d.get("api", "")),
            raft_addr=str(d.get("raft", "")),
            gossip_addr=str(d.get("gossip", "")),
            capacity=Resources(int(cap[0]), int(cap[1])),
            used=Resources(int(used[0]), int(used[1])),
            labels=tuple(sorted((str(k), str(v)) for k, v in dict(d.get("labels") or {}).items())),
            role=str(d.get("role", "worker")),
        )
