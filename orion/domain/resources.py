"""What a task asks of a node: published ports, memory and CPU, mounts.

Values only, like ``orion/domain/model.py`` (which builds ``TaskSpec`` and ``NodeInfo`` from
them and is where the rest of Orion imports them from). Split out to keep that module
readable; the same JSON-compatible ``to_dict``/``from_dict`` rule holds.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

VOLUME_TYPES = ("host", "volume")  # see Volume
# Docker's rule for volume names (two characters at least); host volume names follow it, so one name works as either.
VOLUME_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")


@dataclass(frozen=True, order=True)
class PortBinding:
    """One published port: ``host_port`` None asks the engine for a free one."""

    container_port: int
    protocol: str = "tcp"
    host_port: int | None = None

    @property
    def key(self) -> str:
        """The docker-style key, ``"80/tcp"``."""
        return f"{self.container_port}/{self.protocol}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PortBinding:
        return cls(int(d["container_port"]), str(d.get("protocol", "tcp")), d.get("host_port"))


@dataclass(frozen=True)
class Resources:
    """An amount of memory (bytes) and CPU (millicores)."""

    memory: int = 0
    cpu_millis: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.memory + other.memory, self.cpu_millis + other.cpu_millis)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.memory - other.memory, self.cpu_millis - other.cpu_millis)

    def fits_in(self, free: Resources) -> bool:
        return self.memory <= free.memory and self.cpu_millis <= free.cpu_millis

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Resources:
        return cls(int(d.get("memory", 0)), int(d.get("cpu_millis", 0)))


@dataclass(frozen=True, order=True)
class Volume:
    """A mount. ``type`` host: a host volume nodes declare by name (``host_volumes``; never a raw
    path from the API, which would be root on the host), placed only where declared. ``type``
    volume: a docker named volume, created by the node's engine on first use (node-local)."""

    source: str
    target: str
    read_only: bool = False
    type: str = "host"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "read_only": self.read_only,
                "type": self.type}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Volume:
        return cls(str(d["source"]), str(d["target"]), bool(d.get("read_only", False)),
                   str(d.get("type", "host")))
