"""Why no node can take a task: a typed :class:`NoFit`, its figures, and the sentence written
from them.

Split from ``orion/control/placement.py`` (which returns these and names them too): the
planner decides, this says why it could not. ``kind`` is what code reads (metrics, the task's
``reason_kind``); the figures are the task's own ask plus a few live ones; ``sentence`` is for
people and never parsed back.
"""

from __future__ import annotations

from dataclasses import dataclass

from orion.domain.humanize import format_bytes, format_cpu, format_ports, format_selectors, format_volumes
from orion.domain.model import NoFitKind, Resources


@dataclass(frozen=True)
class FreeOn:
    """What is free on one node: the closest miss a NoFit quotes."""

    node_id: str
    free: Resources


@dataclass(frozen=True)
class NoFit:
    """No node can take the task now: which filter left none (``kind``), with its figures.

    The cause is ``kind`` plus what the task asked for (``memory``, ``cpu_millis``,
    ``ports``, ``selectors``, ``volumes``, ``devices``, ``constraints``, ``max_per_node``: its
    own spec, so fixed for a task; ``missing``: the host volumes (VOLUME) or devices (DEVICE)
    no eligible node offers; ``pinned``/``pinned_why``: a global replica's node and what keeps it from
    taking the replica, for PINNED). The rest are live figures that change with every
    placement elsewhere: nodes by status when none is alive, the node with the most free
    memory and the one with the most free CPU. ``sentence`` is written from these values
    for people; code reads the values.
    """

    kind: NoFitKind
    memory: int = 0
    cpu_millis: int = 0
    ports: frozenset[tuple[int, str]] = frozenset()
    selectors: frozenset[tuple[str, str]] = frozenset()
    volumes: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()  # DEVICE: the host devices asked for
    missing: frozenset[str] = frozenset()  # VOLUME, DEVICE: asked-for ones no eligible node has
    statuses: tuple[tuple[str, int], ...] = ()  # NO_NODES: (status, registered nodes in it), sorted
    most_memory: FreeOn | None = None  # MEMORY, MEMORY_CPU
    most_cpu: FreeOn | None = None  # CPU, MEMORY_CPU
    constraints: tuple[str, ...] = ()  # the task's constraints, as written (CONSTRAINT)
    service: str = ""  # MAX_PER_NODE, PINNED: whose replica
    max_per_node: int = 0  # MAX_PER_NODE
    pinned: str = ""  # PINNED: the node the replica belongs to
    pinned_why: str = ""  # PINNED: what that node is ("dead", "not registered", "short of memory")

    @property
    def sentence(self) -> str:
        kind, mem, cpu = self.kind, format_bytes(self.memory), format_cpu(self.cpu_millis)
        if kind == NoFitKind.NO_NODES:
            if not self.statuses:
                return "no alive nodes: none are registered"
            return "no alive nodes (" + ", ".join(f"{c} {s}" for s, c in self.statuses) + ")"
        if kind == NoFitKind.PINNED:
            return f"replica of global service {self.service} belongs to node {self.pinned}, which is {self.pinned_why}"
        if kind == NoFitKind.SELECTOR:
            return f"no alive node matches selector {format_selectors(self.selectors)}"
        if kind == NoFitKind.CONSTRAINT:
            return "no alive node satisfies " + ", ".join(self.constraints)
        if kind == NoFitKind.VOLUME:
            where = "alive node" + (" matching the selector" if self.selectors or self.constraints else "")
            if self.missing:
                plural = "s" if len(self.missing) > 1 else ""
                return f"no {where} declares host volume{plural} {format_volumes(self.missing)}"
            return f"no {where} declares all of host volumes {format_volumes(self.volumes)}"
        if kind == NoFitKind.DEVICE:
            shown = self.missing or self.devices
            which = "s" if len(shown) > 1 else ""
            return (f"no eligible node hands out {'all of ' if not self.missing else ''}host device{which} "
                    f"{', '.join(sorted(shown))} (host_devices in a node's config)")
        if kind == NoFitKind.PRIVILEGED:
            return "no eligible node allows privileged containers (allow_privileged in a node's config)"
        if kind == NoFitKind.MAX_PER_NODE:
            return (f"every eligible node already runs {self.max_per_node} replica"
                    f"{'' if self.max_per_node == 1 else 's'} of {self.service} (maxPerNode {self.max_per_node})")
        if kind == NoFitKind.PORTS:
            if len(self.ports) == 1:
                return f"host port {format_ports(self.ports)} is taken on every eligible node"
            return f"host ports {format_ports(self.ports)}: every eligible node already uses at least one of them"
        roomy, fast = self.most_memory, self.most_cpu
        if kind == NoFitKind.MEMORY and roomy is not None:
            return f"no node has {mem} free memory; largest free: {roomy.node_id} {format_bytes(roomy.free.memory)}"
        if kind == NoFitKind.CPU and fast is not None:
            return f"no node has {cpu} free; most free: {fast.node_id} {format_cpu(fast.free.cpu_millis)}"
        if kind == NoFitKind.MEMORY_CPU and roomy is not None and fast is not None:
            return (f"no node has both {mem} memory and {cpu} free; "
                    f"largest free memory: {roomy.node_id} ({format_bytes(roomy.free.memory)}, "
                    f"{format_cpu(roomy.free.cpu_millis)}), most free CPU: {fast.node_id} "
                    f"({format_cpu(fast.free.cpu_millis)}, {format_bytes(fast.free.memory)})")
        return f"no node fits {mem} memory and {cpu}"
