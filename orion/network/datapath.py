"""The datapath planner: this host's lease, its peers' leases and the kernel's state -> changes.

Pure: values in, a ``Plan`` out, empty when the kernel already matches. flannel's VXLAN
backend is the model, for each peer lease P:

    neigh  P.vtep_ip -> P.vtep_mac             (ARP is never needed: permanent entries)
    fdb    P.vtep_mac -> P.underlay_ip         (where to send the encapsulated frame)
    route  P.subnet via P.vtep_ip onlink       (added last, so it never points at a hole)

on a VXLAN device with learning off, this host's VTEP MAC and address ``own.vtep_ip/32``;
and hairpin mode on every port of the Docker bridge (``hairpin``, below).

The one rule about removal: an entry goes only when no lease in the input claims it. The
planner has no notion of a peer that is suspected, slow or unreachable: gossip's opinion never
reaches it, so a network partition cannot tear down a peer's routes. The only change that
touches a lease holder's entry is one that makes it right again (a wrong MAC, underlay
address or gateway, a dynamic neighbour turned permanent).
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface

from orion.network.datapath_state import (
    AddAddress,
    Change,
    CreateDevice,
    FdbEntry,
    IgnoredLease,
    ObservedDevice,
    ObservedKernel,
    Plan,
    RemoveAddress,
    RemoveFdb,
    RemoveNeighbour,
    RemoveRoute,
    ReplaceDevice,
    SetFdb,
    SetHairpin,
    SetMtu,
    SetNeighbour,
    SetRoute,
    SetSysctl,
    SetUp,
    VxlanSpec,
)
from orion.network.overlay import Lease, OverlaySettings

NO_LEASE = "no lease"


@dataclass(frozen=True)
class DatapathInputs:
    """What Raft says: the settings, this host's lease and every other lease (any order)."""

    settings: OverlaySettings
    own: Lease
    peers: tuple[Lease, ...]


def device_spec(inputs: DatapathInputs) -> VxlanSpec:
    s, own = inputs.settings, inputs.own
    return VxlanSpec(name=s.vxlan, vni=s.vni, local=own.underlay_ip, port=s.port, mac=own.vtep_mac, mtu=s.mtu)


def wanted_sysctls(settings: OverlaySettings) -> tuple[tuple[str, str], ...]:
    """Forwarding on (the host routes between the bridge and the VXLAN device), and loose
    reverse-path filtering on the VXLAN device: decapsulated packets carry peer-subnet sources,
    which strict mode (rp_filter=1, the default of many distributions) drops whenever the
    route back is not yet or no longer in place, e.g. during a replace."""
    return (("net/ipv4/ip_forward", "1"), (f"net/ipv4/conf/{settings.vxlan}/rp_filter", "2"))


def sysctl_holds(key: str, wanted: str, actual: str) -> bool:
    """Whether ``actual`` already gives what ``wanted`` asks. Reverse-path filtering off (0) is
    looser than loose (2), so it drops nothing either: a host (or a container, like the fleet lab's,
    whose /proc/sys the agent may not write) that turned it off is left alone, not retried forever."""
    return actual == wanted or (key.endswith("/rp_filter") and wanted == "2" and actual == "0")


def usable_peers(inputs: DatapathInputs) -> tuple[list[Lease], list[IgnoredLease]]:
    """Peers sorted by subnet, minus this host and any lease that cannot be routed as given.

    Overlaps are resolved for the lowest (subnet, node id): the state machine never grants
    overlapping leases, so this only keeps a corrupt input from producing flapping entries.
    """
    cidr, own = inputs.settings.cluster_cidr, inputs.own
    used, ignored = [], []
    for peer in sorted(inputs.peers, key=lambda p: (p.subnet, p.node_id)):
        reason = ""
        if peer.node_id == own.node_id:
            continue
        if not peer.subnet.subnet_of(cidr):
            reason = f"outside the cluster CIDR {cidr}"
        elif peer.subnet.overlaps(own.subnet):
            reason = f"overlaps this host's {own.subnet}"
        elif peer.vtep_mac == own.vtep_mac:
            reason = f"has this host's VTEP MAC {own.vtep_mac}"
        else:
            clash = next((u for u in used if u.subnet.overlaps(peer.subnet) or u.vtep_mac == peer.vtep_mac), None)
            if clash is not None:
                reason = f"clashes with {clash.node_id}'s {clash.subnet} {clash.vtep_mac}"
        if reason:
            ignored.append(IgnoredLease(peer.node_id, peer.subnet, reason))
        else:
            used.append(peer)
    return used, ignored


def _device_changes(spec: VxlanSpec, dev: ObservedDevice | None) -> tuple[list[Change], bool]:
    """Changes to the device itself, and whether it is (re)created (so it starts empty)."""
    if dev is None:
        return [CreateDevice(spec)], True
    wrong = []
    if dev.kind != "vxlan":
        wrong.append(f"kind {dev.kind}")
    else:
        for name, have, want in (("vni", dev.vni, spec.vni), ("local", dev.local, spec.local),
                                 ("port", dev.port, spec.port), ("mac", dev.mac, spec.mac)):
            if have != want:
                wrong.append(f"{name} {have} != {want}")
        if dev.learning:
            wrong.append("learning on")
    if wrong:
        return [ReplaceDevice(spec, ", ".join(wrong))], True
    out: list[Change] = []
    if dev.mtu != spec.mtu:
        out.append(SetMtu(spec.mtu))
    if not dev.up:
        out.append(SetUp())
    return out, False


def _address_changes(want: IPv4Interface, have: frozenset[IPv4Interface]) -> list[Change]:
    out: list[Change] = [RemoveAddress(a) for a in sorted(have) if a != want]
    if want not in have:
        out.append(AddAddress(want))
    return out


def hairpin(observed: ObservedKernel) -> list[Change]:
    """Hairpin mode on each bridge port that lacks it. Docker turns br_netfilter on, so a
    connection to a VIP is DNATed while its frame is still being bridged; when the chosen
    backend is the client itself (a task reaching its own service), the frame must leave by
    the port it came in on, which a bridge port refuses unless its hairpin mode is on (Docker
    sets it only with the userland proxy off; kubelet's hairpin-veth does the same;
    tests/integration/test_loadbalance_netlab.py shows both ways). It changes nothing else: a
    bridge never floods a frame back to its source port, hairpin only allows a forward there."""
    return [SetHairpin(p.name) for p in sorted(observed.bridge_ports, key=lambda p: p.name) if not p.hairpin]


def plan(inputs: DatapathInputs, observed: ObservedKernel) -> Plan:
    """The changes that make ``observed`` match the leases, in a safe order.

    Order: the device, its address and sysctls; then removals (route before neighbour before
    FDB, the reverse of adding); then each peer's neighbour, FDB entry and route (route last);
    then the bridge ports' hairpin mode.
    """
    spec = device_spec(inputs)
    peers, ignored = usable_peers(inputs)
    changes, fresh = _device_changes(spec, observed.device)
    # A (re)created device starts with no addresses, entries or per-device sysctls.
    if fresh:
        view = ObservedKernel(sysctls=tuple((k, v) for k, v in observed.sysctls if "/conf/" not in k))
    else:
        view = observed
    have_addresses = view.device.addresses if view.device is not None else frozenset()
    changes += _address_changes(inputs.own.vtep_interface, have_addresses)
    changes += [SetSysctl(k, v) for k, v in wanted_sysctls(inputs.settings) if not sysctl_holds(k, v, view.sysctl(k))]

    want_route = {p.subnet: p for p in peers}
    want_neigh = {p.vtep_ip: p for p in peers}
    want_fdb = {p.vtep_mac: p for p in peers}

    for r in sorted(view.routes, key=lambda r: r.dst):
        if r.dst not in want_route:
            changes.append(RemoveRoute(r.dst, NO_LEASE))
    for n in sorted(view.neighbours, key=lambda n: n.ip):
        if n.ip not in want_neigh:
            changes.append(RemoveNeighbour(n.ip, NO_LEASE))
    for e in sorted(view.fdb, key=lambda e: (e.mac, e.dst)):
        holder = want_fdb.get(e.mac)
        if holder is None:
            changes.append(RemoveFdb(e.mac, e.dst, NO_LEASE))
        elif e.dst != holder.underlay_ip:
            # The one removal that touches a lease holder: a stale underlay address (the
            # subnet changed hands, or the host moved). A VXLAN FDB entry may hold several
            # destinations; only the lease's one may stay.
            changes.append(RemoveFdb(e.mac, e.dst, f"{holder.node_id} is at {holder.underlay_ip}"))

    neigh_by_ip = {n.ip: n for n in view.neighbours}
    routes_by_dst = {r.dst: r for r in view.routes}
    for p in peers:
        n = neigh_by_ip.get(p.vtep_ip)
        if n is None or n.mac != p.vtep_mac or not n.permanent:
            changes.append(SetNeighbour(p.vtep_ip, p.vtep_mac, p.node_id))
        if FdbEntry(p.vtep_mac, p.underlay_ip) not in view.fdb:
            changes.append(SetFdb(p.vtep_mac, p.underlay_ip, p.node_id))
        r = routes_by_dst.get(p.subnet)
        if r is None or r.gateway != p.vtep_ip or not r.onlink:
            changes.append(SetRoute(p.subnet, p.vtep_ip, p.node_id))
    changes += hairpin(observed)
    return Plan(tuple(changes), tuple(ignored))


def underlay_ips(inputs: DatapathInputs) -> tuple[IPv4Address, ...]:
    """Every lease holder's underlay address but this host's: who may send VXLAN here."""
    peers, _ = usable_peers(inputs)
    return tuple(sorted({p.underlay_ip for p in peers}))
