"""The Docker bridge network ``orion`` on this host's /24: decided in pure code, kept with the SDK.

The network is the host's half of the overlay: Docker's IPAM hands out task IPs from the
lease's subnet (so IPs are unique cluster-wide without a global allocator), the bridge is
``settings.bridge`` with the gateway .1, and the veth MTU is the overlay's. Docker's own
masquerade is off: Orion's table masquerades traffic leaving the cluster CIDR and must never
NAT cluster-to-cluster traffic, which Docker's rule (-s subnet ! -o bridge) would.

A network ``orion`` that exists with other settings (another subnet after the host's lease
changed, another MTU, masquerade on) is recreated when no container is attached to it. With
containers attached it is left alone and reported as a ``NetworkConflict``: removing it would
cut those containers off (Docker refuses anyway: "network has active endpoints"), so the
operator or the agent's task loop drains them first and the next pass recreates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

import docker
from docker.types import IPAMConfig, IPAMPool

from orion.network.overlay import Lease, OverlaySettings

OPTION_BRIDGE = "com.docker.network.bridge.name"
OPTION_MTU = "com.docker.network.driver.mtu"
OPTION_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
LABEL = "org.orion.network"  # marks the network as Orion's own


@dataclass(frozen=True)
class NetworkSpec:
    name: str
    subnet: IPv4Network
    gateway: IPv4Address
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ObservedNetwork:
    id: str
    driver: str
    subnet: IPv4Network | None
    gateway: IPv4Address | None
    options: tuple[tuple[str, str], ...]
    containers: int


@dataclass(frozen=True)
class CreateNetwork:
    spec: NetworkSpec

    def __str__(self) -> str:
        return f"network {self.spec.name} {self.spec.subnet} create"


@dataclass(frozen=True)
class RecreateNetwork:
    spec: NetworkSpec
    old_id: str
    reason: str

    def __str__(self) -> str:
        return f"network {self.spec.name} {self.spec.subnet} recreate ({self.reason})"


@dataclass(frozen=True)
class NetworkConflict:
    """Left as it is: containers are attached to a network with other settings."""

    spec: NetworkSpec
    reason: str

    def __str__(self) -> str:
        return f"network {self.spec.name} conflicts and has containers, left alone: {self.reason}"


NetworkDecision = CreateNetwork | RecreateNetwork | NetworkConflict


def network_spec(settings: OverlaySettings, own: Lease) -> NetworkSpec:
    options = ((OPTION_BRIDGE, settings.bridge), (OPTION_MASQUERADE, "false"), (OPTION_MTU, str(settings.mtu)))
    return NetworkSpec(settings.network_name, own.subnet, own.bridge_gateway, options)


def decide(spec: NetworkSpec, observed: ObservedNetwork | None) -> NetworkDecision | None:
    """None when the network is right."""
    if observed is None:
        return CreateNetwork(spec)
    wrong = []
    if observed.driver != "bridge":
        wrong.append(f"driver {observed.driver}")
    if observed.subnet != spec.subnet or observed.gateway != spec.gateway:
        wrong.append(f"subnet {observed.subnet} gateway {observed.gateway}")
    have = dict(observed.options)
    wrong += [f"{k}={have.get(k)!r}" for k, v in spec.options if have.get(k) != v]
    if not wrong:
        return None
    reason = ", ".join(wrong) + f", want {spec.subnet} gateway {spec.gateway}"
    if observed.containers:
        return NetworkConflict(spec, f"{reason}; {observed.containers} container(s) attached")
    return RecreateNetwork(spec, observed.id, reason)


class DockerNetworks:
    """Reads and creates the network through one engine's API (docker SDK >= 7)."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    def observe(self, name: str) -> ObservedNetwork | None:
        # The API matches names as substrings ("orion" finds "orion-lb"): pick the exact one.
        found = [n for n in self.client.networks.list(names=[name]) if n.name == name]
        if not found:
            return None
        attrs = self.client.api.inspect_network(found[0].id)
        configs = (attrs.get("IPAM") or {}).get("Config") or []
        first = configs[0] if configs else {}
        subnet, gateway = first.get("Subnet"), first.get("Gateway")
        return ObservedNetwork(
            id=attrs["Id"], driver=attrs.get("Driver", ""),
            subnet=IPv4Network(subnet) if subnet else None, gateway=IPv4Address(gateway) if gateway else None,
            options=tuple(sorted((attrs.get("Options") or {}).items())),
            containers=len(attrs.get("Containers") or {}))

    def apply(self, decision: NetworkDecision) -> None:
        if isinstance(decision, NetworkConflict):
            return
        if isinstance(decision, RecreateNetwork):
            self.client.api.remove_network(decision.old_id)
        spec = decision.spec
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(spec.subnet), gateway=str(spec.gateway))])
        self.client.networks.create(spec.name, driver="bridge", ipam=ipam, options=dict(spec.options),
                                    labels={LABEL: "true"}, check_duplicate=True)
