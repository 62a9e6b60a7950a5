"""The agent's settings, fourth part: the overlay network (issue #19, docs/service-discovery.md).

Each field declares one setting (``orion/config/setting.py``); ``AgentConfig``
(``orion/config/agent.py``) puts the parts together. What relates two of them (the
two CIDRs apart, the host prefix inside the cluster's) is checked in ``rules.py``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from orion.config.setting import port_number, positive, setting
from orion.defaults import NETWORK_DEFAULTS


def _ipv4_network(value: str) -> str | None:
    try:
        ipaddress.IPv4Network(value)
    except ValueError as exc:
        return f"{value!r} is not an IPv4 network ({exc})"
    return None


def _vni(value: int) -> str | None:
    return None if 0 < value < 1 << 24 else f"{value} is not a VXLAN id (1..16777215)"


def _mtu(value: int) -> str | None:
    return None if value == 0 or 576 <= value <= 65485 else \
        f"{value} must be 0 (the underlay's minus 50) or from 576 to 65485"


@dataclass(frozen=True)
class Network:
    """Whether the node joins the overlay, the overlay's shape (fixed at bootstrap), DNS and the datapath."""

    network: bool = setting(
        True, "Join the overlay: task IPs, service names and VIPs",
        "Tasks get flat IPs over VXLAN, names in DNS and VIPs. On by default: a service that other "
        "tasks reach by name is the point. Off: the agent runs tasks on the engine's default bridge "
        "with port bindings only (tests that share one engine between clusters run it off).", flag=True)
    network_cidr: str = setting(
        NETWORK_DEFAULTS["cidr"], "The cluster's task addresses, fixed at bootstrap",
        "The cluster's overlay, fixed by the first leader's InitNetwork (later values are ignored: "
        "a Docker network's subnet and MTU cannot change under running containers). flannel's and "
        "k3s's 10.42.0.0/16, a /24 per host: 254 tasks on each of 256 hosts.",
        flag=True, checks=(_ipv4_network,))
    network_host_prefix: int = setting(
        NETWORK_DEFAULTS["host_prefix"], "Prefix of each host's subnet, fixed at bootstrap",
        "A /24 per host: 253 container addresses each (.0 is the VTEP, .1 the bridge gateway), "
        "Docker's and flannel's size; 256 of them in the default network_cidr.")
    network_vni: int = setting(
        NETWORK_DEFAULTS["vni"], "VXLAN network identifier, fixed at bootstrap",
        "One overlay, one VXLAN network identifier: VNI 1, flannel's default too.", checks=(_vni,))
    network_port: int = setting(
        NETWORK_DEFAULTS["port"], "VXLAN UDP port, fixed at bootstrap",
        "IANA's VXLAN port (RFC 7348); Linux's own default of 8472 predates it. The fleet role "
        "opens it between members only.", checks=(port_number,))
    network_mtu: int = setting(
        0, "The overlay's MTU, fixed at bootstrap (0: the underlay's minus 50)",
        "0: the underlay interface's MTU minus the 50 bytes VXLAN over IPv4 adds, measured by the "
        "node that initializes the network (capped at 9,000: a jumbo-frame overlay is plenty, and a "
        "loopback underlay's 65,536 would make an overlay no real host can join).", flag=True, checks=(_mtu,))
    service_cidr: str = setting(
        NETWORK_DEFAULTS["service_cidr"], "Service VIPs, fixed at bootstrap",
        "VIPs of vip-mode services; k3s's service CIDR beside its cluster CIDR.",
        flag=True, checks=(_ipv4_network,))
    dns_resolv_conf: str = setting(
        "/etc/resolv.conf", "The host's resolvers, for names outside orion.",
        "Where the host's own resolvers are listed: names outside orion. are forwarded to them.")
    dns_port: int = setting(
        53, "The DNS server's port on the bridge gateway",
        "The DNS server's port on the bridge gateway: 53, the one port a container's resolver asks.",
        checks=(port_number,))
    datapath_interval: float = setting(
        2.0, "Seconds between the datapath loop's periodic passes",
        "The datapath loop runs on every Raft apply and this often besides: a flushed table or a "
        "deleted device heals within 5 s (the issue's bound), and a pass that changes nothing costs "
        "one netlink dump and two nft listings (~10 ms).", checks=(positive,))
