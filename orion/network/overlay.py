"""The values the datapath is built from: the overlay's settings and the hosts' subnet leases.

They arrive from Raft (the settings fixed at bootstrap, a lease per host); this package takes
them as plain frozen values and never reads the state machine itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

# The VTEP MAC rule is the domain's: the state machine writes it into each lease it grants.
from orion.domain.network import VTEP_MAC_PREFIX, vtep_mac

__all__ = ["VTEP_MAC_PREFIX", "Lease", "OverlaySettings", "lease_of", "normal_mac", "vtep_mac"]


def normal_mac(mac: str) -> str:
    """``0E-42-0A-2A-03-00`` or ``0e:42:a:2a:3:0`` -> ``0e:42:0a:2a:03:00``; ValueError otherwise."""
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    try:
        octets = [int(p, 16) for p in parts]
    except ValueError:
        raise ValueError(f"not a MAC address: {mac!r}") from None
    if any(not 0 <= o <= 255 for o in octets):
        raise ValueError(f"not a MAC address: {mac!r}")
    return ":".join(f"{o:02x}" for o in octets)


@dataclass(frozen=True)
class OverlaySettings:
    """The cluster's overlay, fixed at bootstrap (a Docker network's MTU cannot change later).

    ``mtu`` is the overlay's: the underlay's minus the 50 bytes VXLAN over IPv4 adds.
    """

    cluster_cidr: IPv4Network
    vni: int
    port: int
    mtu: int
    bridge: str  # the Docker bridge device, e.g. orion0
    vxlan: str  # the VXLAN device, e.g. orion.1
    network_name: str = "orion"  # the Docker network's name

    def __post_init__(self) -> None:
        if not 0 < self.vni < 1 << 24:
            raise ValueError(f"vni {self.vni} is not a 24-bit VXLAN network identifier (1..16777215)")
        if not 0 < self.port < 1 << 16:
            raise ValueError(f"port {self.port} is not a UDP port")
        if not 576 <= self.mtu <= 65_485:
            raise ValueError(f"mtu {self.mtu} is outside 576..65485")
        for field, name in (("bridge", self.bridge), ("vxlan", self.vxlan)):
            if not 0 < len(name) <= 15 or "/" in name or " " in name:
                raise ValueError(f"{field} {name!r} is not a Linux interface name (1..15 characters)")


@dataclass(frozen=True)
class Lease:
    """One host's subnet lease as Raft holds it."""

    node_id: str
    subnet: IPv4Network
    underlay_ip: IPv4Address
    vtep_mac: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "vtep_mac", normal_mac(self.vtep_mac))
        if self.subnet.prefixlen > 30:
            raise ValueError(f"subnet {self.subnet} of {self.node_id} is too small for containers")

    @property
    def vtep_ip(self) -> IPv4Address:
        """The VXLAN device's own address (flannel's choice): the subnet's network address.

        It is never a container's (Docker hands out .2 upwards, .1 is the bridge gateway), and
        every peer derives it from the lease alone, so a route needs no extra field.
        """
        return self.subnet.network_address

    @property
    def vtep_interface(self) -> IPv4Interface:
        return IPv4Interface(f"{self.vtep_ip}/32")

    @property
    def bridge_gateway(self) -> IPv4Address:
        """The Docker bridge's address: .1 of the subnet."""
        return self.subnet.network_address + 1


def lease_of(node_id: str, subnet: str, underlay_ip: str) -> Lease:
    """A lease with its derived VTEP MAC: what the state machine stores when it grants one."""
    net = IPv4Network(subnet)
    return Lease(node_id=node_id, subnet=net, underlay_ip=IPv4Address(underlay_ip), vtep_mac=vtep_mac(net))
