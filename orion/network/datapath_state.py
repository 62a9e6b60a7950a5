"""The kernel's datapath as values: what the planner reads (observed) and what it asks for (changes).

The observed state covers only what Orion owns: the VXLAN device, and the FDB entries,
neighbours and main-table routes on it. Changes are small frozen values, one kernel
operation each; ``str(change)`` is the log line and what tests read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network


@dataclass(frozen=True)
class VxlanSpec:
    """The VXLAN device Orion wants: learning is always off (entries come from leases only)."""

    name: str
    vni: int
    local: IPv4Address
    port: int
    mac: str
    mtu: int


@dataclass(frozen=True)
class ObservedDevice:
    """The device found under the VXLAN name; ``kind`` may be anything if someone else took the name."""

    name: str
    kind: str
    mac: str
    mtu: int
    up: bool
    vni: int | None = None
    local: IPv4Address | None = None
    port: int | None = None
    learning: bool = False
    addresses: frozenset[IPv4Interface] = frozenset()


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    dst: IPv4Address


@dataclass(frozen=True)
class NeighEntry:
    ip: IPv4Address
    mac: str | None
    permanent: bool


@dataclass(frozen=True)
class RouteEntry:
    dst: IPv4Network
    gateway: IPv4Address | None
    onlink: bool


@dataclass(frozen=True)
class BridgePort:
    """A port of the Docker bridge (a container's veth) and whether its hairpin mode is on."""

    name: str
    hairpin: bool


@dataclass(frozen=True)
class ObservedKernel:
    """One read of the kernel. ``sysctls``: (path under /proc/sys, value), "" when unreadable.
    ``bridge_ports``: the Docker bridge's ports (none before the network exists)."""

    device: ObservedDevice | None = None
    fdb: frozenset[FdbEntry] = frozenset()
    neighbours: frozenset[NeighEntry] = frozenset()
    routes: frozenset[RouteEntry] = frozenset()
    sysctls: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    bridge_ports: frozenset[BridgePort] = frozenset()

    def sysctl(self, key: str) -> str:
        return dict(self.sysctls).get(key, "")


# -- changes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateDevice:
    spec: VxlanSpec

    def __str__(self) -> str:
        s = self.spec
        return f"create {s.name} vxlan id {s.vni} local {s.local} dstport {s.port} nolearning {s.mac} mtu {s.mtu}"


@dataclass(frozen=True)
class ReplaceDevice:
    """Delete and recreate: a VXLAN device's id, local address, port and learning are fixed at
    creation. The kernel drops the device's FDB, neighbours and routes with it, so the plan that
    holds this change re-adds every peer's entries after it."""

    spec: VxlanSpec
    reason: str

    def __str__(self) -> str:
        return f"replace {self.spec.name} ({self.reason})"


@dataclass(frozen=True)
class SetMtu:
    mtu: int

    def __str__(self) -> str:
        return f"mtu {self.mtu}"


@dataclass(frozen=True)
class SetUp:
    def __str__(self) -> str:
        return "link up"


@dataclass(frozen=True)
class AddAddress:
    address: IPv4Interface

    def __str__(self) -> str:
        return f"address {self.address} add"


@dataclass(frozen=True)
class RemoveAddress:
    address: IPv4Interface

    def __str__(self) -> str:
        return f"address {self.address} remove"


@dataclass(frozen=True)
class SetSysctl:
    key: str
    value: str

    def __str__(self) -> str:
        return f"sysctl {self.key}={self.value}"


@dataclass(frozen=True)
class SetFdb:
    mac: str
    dst: IPv4Address
    node_id: str

    def __str__(self) -> str:
        return f"fdb {self.mac} dst {self.dst} set ({self.node_id})"


@dataclass(frozen=True)
class RemoveFdb:
    mac: str
    dst: IPv4Address
    reason: str

    def __str__(self) -> str:
        return f"fdb {self.mac} dst {self.dst} remove ({self.reason})"


@dataclass(frozen=True)
class SetNeighbour:
    ip: IPv4Address
    mac: str
    node_id: str

    def __str__(self) -> str:
        return f"neigh {self.ip} lladdr {self.mac} set ({self.node_id})"


@dataclass(frozen=True)
class RemoveNeighbour:
    ip: IPv4Address
    reason: str

    def __str__(self) -> str:
        return f"neigh {self.ip} remove ({self.reason})"


@dataclass(frozen=True)
class SetRoute:
    dst: IPv4Network
    gateway: IPv4Address
    node_id: str

    def __str__(self) -> str:
        return f"route {self.dst} via {self.gateway} onlink set ({self.node_id})"


@dataclass(frozen=True)
class RemoveRoute:
    dst: IPv4Network
    reason: str

    def __str__(self) -> str:
        return f"route {self.dst} remove ({self.reason})"


@dataclass(frozen=True)
class SetHairpin:
    """Hairpin mode on for one port of the Docker bridge (see ``datapath.plan``)."""

    port: str

    def __str__(self) -> str:
        return f"hairpin on {self.port}"


DeviceChange = CreateDevice | ReplaceDevice | SetMtu | SetUp | AddAddress | RemoveAddress | SetSysctl
EntryChange = SetFdb | RemoveFdb | SetNeighbour | RemoveNeighbour | SetRoute | RemoveRoute
Change = DeviceChange | EntryChange | SetHairpin


@dataclass(frozen=True)
class IgnoredLease:
    """A peer lease the planner did not use, and why (the state machine should never produce one)."""

    node_id: str
    subnet: IPv4Network
    reason: str

    def __str__(self) -> str:
        return f"lease {self.subnet} of {self.node_id} ignored: {self.reason}"


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]
    ignored: tuple[IgnoredLease, ...] = ()

    @property
    def converged(self) -> bool:
        return not self.changes
