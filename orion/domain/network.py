"""The overlay network's values as Raft keeps them: the settings, a host's subnet lease, a published port.

Values only, the lowest layer (``orion/network/`` reads them as its own ``overlay``
values; the state machine stores them; the API shows them). Addresses are kept as
text, the way they cross the log and the API, with properties that parse them.

The VTEP MAC rule lives here rather than in ``orion/network/overlay.py`` because the
state machine writes it into each lease and may not import the network package
(a sideways import): both now read the one rule below.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any, Protocol

from orion.defaults import NETWORK_DEFAULTS, VXLAN_OVERHEAD
from orion.domain.resources import PortBinding

# A service's endpoint mode (Swarm's): ``vip`` gives it a virtual IP balanced in the kernel,
# ``dnsrr`` answers its replicas' addresses by DNS round robin.
ENDPOINT_MODES = ("vip", "dnsrr")
PROTOCOLS = ("tcp", "udp")

# Locally administered (bit 1) unicast (bit 0 clear) first octet, then a fixed second octet:
# every Orion VTEP MAC starts 0e:42, so `bridge fdb` output shows Orion's entries at a glance.
VTEP_MAC_PREFIX = (0x0E, 0x42)


def vtep_mac(subnet: IPv4Network) -> str:
    """The VTEP MAC of the host holding ``subnet``: ``0e:42`` and the subnet's four address bytes.

    Derived from the subnet, never random (flannel #1155, #1330, #1795: a MAC that udev or a
    reboot regenerated left every peer's FDB pointing at a MAC nobody answered). From the
    subnet rather than from the node id because leases never overlap, so two live leases can
    never share a MAC (no hash to collide), and the MAC, the VTEP address and the route all
    follow one key: a subnet that changes hands keeps its MAC, so the only entry a peer must
    fix is the FDB's underlay address, which the planner replaces. 10.42.3.0/24 ->
    0e:42:0a:2a:03:00, readable back from `bridge fdb`.
    """
    return ":".join(f"{b:02x}" for b in (*VTEP_MAC_PREFIX, *subnet.network_address.packed))


@dataclass(frozen=True)
class NetworkSettings:
    """The cluster's overlay, fixed once at bootstrap by ``InitNetwork`` (a Docker network's
    subnet and MTU cannot change under running containers). ``mtu`` is the overlay's: a host
    whose underlay carries less than ``mtu + 50`` cannot join it (``AcquireLease``)."""

    cidr: str = NETWORK_DEFAULTS["cidr"]
    host_prefix: int = NETWORK_DEFAULTS["host_prefix"]
    vni: int = NETWORK_DEFAULTS["vni"]
    port: int = NETWORK_DEFAULTS["port"]
    mtu: int = NETWORK_DEFAULTS["mtu"]
    service_cidr: str = NETWORK_DEFAULTS["service_cidr"]

    @property
    def network(self) -> IPv4Network:
        return IPv4Network(self.cidr)

    @property
    def service_network(self) -> IPv4Network:
        return IPv4Network(self.service_cidr)

    @property
    def subnets(self) -> int:
        """How many host subnets the pool holds."""
        return 1 << (self.host_prefix - self.network.prefixlen)

    def subnet(self, index: int) -> IPv4Network:
        """The ``index``-th host subnet of the cluster CIDR (0: the first)."""
        size = 1 << (32 - self.host_prefix)
        return IPv4Network((int(self.network.network_address) + index * size, self.host_prefix))

    @property
    def vips(self) -> int:
        """How many VIPs the service CIDR holds (its network and broadcast addresses are never one)."""
        return self.service_network.num_addresses - 2

    def vip(self, offset: int) -> str:
        """The VIP ``offset`` addresses into the service CIDR (1: the first usable one)."""
        return str(self.service_network.network_address + offset)

    @property
    def underlay_mtu(self) -> int:
        """The least underlay MTU that carries the overlay's frames whole."""
        return self.mtu + VXLAN_OVERHEAD

    def to_dict(self) -> dict[str, Any]:
        return {"cidr": self.cidr, "host_prefix": self.host_prefix, "vni": self.vni, "port": self.port,
                "mtu": self.mtu, "service_cidr": self.service_cidr}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetworkSettings:
        base = cls()
        return cls(cidr=str(d.get("cidr", base.cidr)), host_prefix=int(d.get("host_prefix", base.host_prefix)),
                   vni=int(d.get("vni", base.vni)), port=int(d.get("port", base.port)),
                   mtu=int(d.get("mtu", base.mtu)), service_cidr=str(d.get("service_cidr", base.service_cidr)))


def settings_problem(s: NetworkSettings) -> str:
    """Why ``s`` cannot be the cluster's network, or "": the state machine refuses such an
    ``InitNetwork`` with this sentence, and the agent's configuration check can say it first."""
    try:
        net, services = s.network, s.service_network
    except ValueError as exc:
        return f"not an IPv4 network: {exc}"
    if not net.prefixlen < s.host_prefix <= 30:
        return (f"host_prefix /{s.host_prefix} must be longer than the cluster CIDR's /{net.prefixlen} "
                "and at most /30 (a host needs room for containers)")
    if s.subnets > 1 << 16:
        return f"{s.cidr} in /{s.host_prefix} subnets is {s.subnets} subnets; at most 65536"
    if services.prefixlen > 30:
        return f"service_cidr {s.service_cidr} is too small; at least a /30"
    if net.overlaps(services):
        return f"service_cidr {s.service_cidr} overlaps the cluster CIDR {s.cidr}"
    if not 0 < s.vni < 1 << 24:
        return f"vni {s.vni} is not a 24-bit VXLAN network identifier (1..16777215)"
    if not 0 < s.port < 1 << 16:
        return f"port {s.port} is not a UDP port"
    if not 576 <= s.mtu <= 65_485:
        return f"mtu {s.mtu} is outside 576..65485"
    return ""


@dataclass(frozen=True)
class SubnetLease:
    """One host's subnet: the ``index``-th of the pool, held by the agents of one host.

    ``host`` is the host key, the Docker engine's ID (``docker info``): agents sharing one
    engine (the loopback demo) share its one network, so they share one lease, and
    ``holders`` lists them (node ids, sorted). ``underlay_ip`` is where its VXLAN packets go
    (the last holder to acquire it said so); ``vtep_mac`` follows from the subnet.
    ``updated_index`` is the Raft index of its last change (granted, asked for again, a holder
    gone): the leader's reclaim clock starts again when it moves (``orion/control/lease_reclaim.py``).
    """

    index: int
    subnet: str
    host: str
    holders: tuple[str, ...]
    underlay_ip: str
    vtep_mac: str
    updated_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "subnet": self.subnet, "host": self.host, "holders": list(self.holders),
                "underlay_ip": self.underlay_ip, "vtep_mac": self.vtep_mac, "updated_index": self.updated_index}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SubnetLease:
        return cls(int(d["index"]), str(d["subnet"]), str(d["host"]), tuple(str(h) for h in d.get("holders") or ()),
                   str(d["underlay_ip"]), str(d["vtep_mac"]), int(d.get("updated_index", 0)))


def lease_for(settings: NetworkSettings, index: int, host: str, holders: tuple[str, ...],
              underlay_ip: str, updated_index: int) -> SubnetLease:
    """The lease of subnet ``index`` with its derived VTEP MAC: what the state machine grants."""
    subnet = settings.subnet(index)
    return SubnetLease(index, str(subnet), host, tuple(sorted(set(holders))), underlay_ip, vtep_mac(subnet),
                       updated_index)


def ipv4_problem(value: str, what: str) -> str:
    try:
        IPv4Address(value)
    except ValueError:
        return f"{what} {value!r} is not an IPv4 address"
    return ""


@dataclass(frozen=True, order=True)
class Publish:
    """A service port opened on every host (Swarm's routing mesh): a connection to any host's
    ``published`` port goes to a serving replica's ``target`` port, wherever it runs."""

    published: int
    target: int
    protocol: str = "tcp"

    def to_dict(self) -> dict[str, Any]:
        return {"published": self.published, "target": self.target, "protocol": self.protocol}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Publish:
        return cls(int(d["published"]), int(d["target"]), str(d.get("protocol", "tcp")))


def published_ports(publish: tuple[Publish, ...]) -> frozenset[tuple[int, str]]:
    """(port, protocol) pairs a service holds on every host: no two services may share one."""
    return frozenset((p.published, p.protocol) for p in publish)


# -- how a service is reached: its ServiceSpec fields, read here ----------------------------------

class Reached(Protocol):
    """A service's ``endpoint_mode``, ``publish`` and ``overlay`` (``orion.domain.service.ServiceSpec``)."""

    endpoint_mode: str
    publish: tuple[Publish, ...]
    overlay: bool


def reach_to_dict(spec: Reached) -> dict[str, Any]:
    """Only what differs from the default (a VIP on the overlay, nothing published): a service
    reached the default way is written exactly as before the overlay existed, so its log entries
    and snapshots (and their digests) do not change."""
    return {**({"endpoint_mode": spec.endpoint_mode} if spec.endpoint_mode != "vip" else {}),
            **({"publish": [p.to_dict() for p in spec.publish]} if spec.publish else {}),
            **({} if spec.overlay else {"overlay": False})}


def reach_from_dict(d: dict[str, Any]) -> dict[str, Any]:
    return {"endpoint_mode": str(d.get("endpoint_mode", "vip")),
            "publish": tuple(Publish.from_dict(p) for p in d.get("publish") or ()),
            "overlay": bool(d.get("overlay", True))}


def reach_changes(old: Reached, new: Reached) -> list[str]:
    """What a new spec changes in how the service is reached, named as the API names it. The VIP
    and the published ports are the load balancer's, in every host's kernel: the replicas keep
    their containers and addresses (``overlay`` is the template's, so it replaces them)."""
    return [name for name, changed in (("endpointMode", old.endpoint_mode != new.endpoint_mode),
                                       ("publish", old.publish != new.publish)) if changed]


def service_ports(publish: tuple[Publish, ...],
                  ports: tuple[PortBinding, ...]) -> tuple[tuple[int, str, int | None], ...]:
    """The ports a service's replicas answer on, as discovery and the load balancer take them:
    (target, protocol, published port or None), sorted. The container ports of its port
    bindings (``ports``, a replica's own: an older version's may bind others) and of ``publish``;
    reached through the VIP on the same number (Swarm's rule)."""
    published = {(p.target, p.protocol): p.published for p in publish}
    targets = {(p.container_port, p.protocol) for p in ports} | set(published)
    return tuple(sorted((target, proto, published.get((target, proto))) for target, proto in targets))
