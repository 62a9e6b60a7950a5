"""The datapath planner: scenario transcripts (what a pass prints) and properties over random kernels."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from hypothesis import given, settings
from hypothesis import strategies as st
from kernel_model import apply_all

from orion.network.datapath import DatapathInputs, plan
from orion.network.datapath_state import (
    BridgePort,
    FdbEntry,
    NeighEntry,
    ObservedDevice,
    ObservedKernel,
    RemoveFdb,
    RemoveNeighbour,
    RemoveRoute,
    ReplaceDevice,
    RouteEntry,
    SetFdb,
    SetNeighbour,
    SetRoute,
)
from orion.network.overlay import Lease, OverlaySettings, lease_of, vtep_mac

SETTINGS = OverlaySettings(cluster_cidr=IPv4Network("10.42.0.0/16"), vni=1, port=4789, mtu=1450,
                           bridge="orion0", vxlan="orion.1")
A = lease_of("a", "10.42.1.0/24", "10.77.0.1")
B = lease_of("b", "10.42.2.0/24", "10.77.0.2")
C = lease_of("c", "10.42.3.0/24", "10.77.0.3")


def transcript(inputs: DatapathInputs, kernel: ObservedKernel) -> list[str]:
    return [str(c) for c in plan(inputs, kernel).changes]


def converged(inputs: DatapathInputs) -> ObservedKernel:
    return apply_all(ObservedKernel(), plan(inputs, ObservedKernel()).changes)


def test_vtep_mac_is_the_subnet_in_hex_behind_a_locally_administered_prefix():
    assert vtep_mac(IPv4Network("10.42.3.0/24")) == "0e:42:0a:2a:03:00"
    assert A.vtep_mac == "0e:42:0a:2a:01:00"
    assert int(A.vtep_mac[:2], 16) & 0b11 == 0b10  # unicast, locally administered


def test_a_fresh_host_gets_the_device_then_each_peer_neighbour_fdb_route_in_that_order():
    assert transcript(DatapathInputs(SETTINGS, A, (C, B, A)), ObservedKernel()) == [
        "create orion.1 vxlan id 1 local 10.77.0.1 dstport 4789 nolearning 0e:42:0a:2a:01:00 mtu 1450",
        "address 10.42.1.0/32 add",
        "sysctl net/ipv4/ip_forward=1",
        "sysctl net/ipv4/conf/orion.1/rp_filter=2",
        "neigh 10.42.2.0 lladdr 0e:42:0a:2a:02:00 set (b)",
        "fdb 0e:42:0a:2a:02:00 dst 10.77.0.2 set (b)",
        "route 10.42.2.0/24 via 10.42.2.0 onlink set (b)",
        "neigh 10.42.3.0 lladdr 0e:42:0a:2a:03:00 set (c)",
        "fdb 0e:42:0a:2a:03:00 dst 10.77.0.3 set (c)",
        "route 10.42.3.0/24 via 10.42.3.0 onlink set (c)",
    ]


def test_reverse_path_filtering_off_is_as_good_as_loose_and_strict_is_set_loose():
    inputs = DatapathInputs(SETTINGS, A, (B,))
    kernel = converged(inputs)
    others = [kv for kv in kernel.sysctls if not kv[0].endswith("/rp_filter")]
    off = replace(kernel, sysctls=(*others, ("net/ipv4/conf/orion.1/rp_filter", "0")))
    strict = replace(kernel, sysctls=(*others, ("net/ipv4/conf/orion.1/rp_filter", "1")))
    assert transcript(inputs, off) == []
    assert transcript(inputs, strict) == ["sysctl net/ipv4/conf/orion.1/rp_filter=2"]


def test_a_converged_kernel_needs_nothing():
    inputs = DatapathInputs(SETTINGS, A, (B, C))
    assert transcript(inputs, converged(inputs)) == []


def test_flushed_tables_come_back_route_last():
    inputs = DatapathInputs(SETTINGS, A, (B,))
    flushed = replace(converged(inputs), fdb=frozenset(), neighbours=frozenset(), routes=frozenset())
    assert transcript(inputs, flushed) == [
        "neigh 10.42.2.0 lladdr 0e:42:0a:2a:02:00 set (b)",
        "fdb 0e:42:0a:2a:02:00 dst 10.77.0.2 set (b)",
        "route 10.42.2.0/24 via 10.42.2.0 onlink set (b)",
    ]


def test_every_bridge_port_without_hairpin_gets_it_and_nothing_else_changes():
    inputs = DatapathInputs(SETTINGS, A, (B,))
    ports = frozenset({BridgePort("veth2", False), BridgePort("veth1", True), BridgePort("veth0", False)})
    assert transcript(inputs, replace(converged(inputs), bridge_ports=ports)) == [
        "hairpin on veth0",
        "hairpin on veth2",
    ]


def test_hairpin_is_set_before_the_overlay_exists_too():
    """A port is the bridge's, not the VXLAN device's: a task may already run (on a host whose
    lease came back, say) while the device is being made."""
    inputs = DatapathInputs(SETTINGS, A, ())
    changes = transcript(inputs, ObservedKernel(bridge_ports=frozenset({BridgePort("veth9", False)})))
    assert changes[-1] == "hairpin on veth9" and changes[0].startswith("create orion.1")


def test_a_released_lease_is_removed_route_first_and_the_others_are_untouched():
    kernel = converged(DatapathInputs(SETTINGS, A, (B, C)))
    assert transcript(DatapathInputs(SETTINGS, A, (C,)), kernel) == [
        "route 10.42.2.0/24 remove (no lease)",
        "neigh 10.42.2.0 remove (no lease)",
        "fdb 0e:42:0a:2a:02:00 dst 10.77.0.2 remove (no lease)",
    ]


def test_a_peer_that_moved_underlay_gets_its_fdb_entry_replaced_and_nothing_else():
    kernel = converged(DatapathInputs(SETTINGS, A, (B,)))
    moved = replace(B, underlay_ip=IPv4Address("10.77.0.9"))
    assert transcript(DatapathInputs(SETTINGS, A, (moved,)), kernel) == [
        "fdb 0e:42:0a:2a:02:00 dst 10.77.0.2 remove (b is at 10.77.0.9)",
        "fdb 0e:42:0a:2a:02:00 dst 10.77.0.9 set (b)",
    ]


def test_a_device_with_a_random_mac_or_learning_on_is_replaced_and_refilled():
    inputs = DatapathInputs(SETTINGS, A, (B,))
    good = converged(inputs)
    assert good.device is not None
    for wrong, reason in ((replace(good.device, mac="aa:bb:cc:dd:ee:ff"), "mac aa:bb:cc:dd:ee:ff != 0e:42:0a:2a:01:00"),
                          (replace(good.device, learning=True), "learning on")):
        lines = transcript(inputs, replace(good, device=wrong))
        assert lines[0] == f"replace orion.1 ({reason})"
        assert lines[1:] == transcript(inputs, ObservedKernel(sysctls=good.sysctls))[1:]


def test_mtu_and_link_state_are_fixed_in_place():
    inputs = DatapathInputs(SETTINGS, A, (B,))
    good = converged(inputs)
    assert good.device is not None
    down = replace(good, device=replace(good.device, mtu=1500, up=False))
    assert transcript(inputs, down) == ["mtu 1450", "link up"]


def test_dynamic_neighbour_and_a_route_without_onlink_are_made_right():
    inputs = DatapathInputs(SETTINGS, A, (B,))
    good = converged(inputs)
    odd = replace(good, neighbours=frozenset({NeighEntry(B.vtep_ip, B.vtep_mac, permanent=False)}),
                  routes=frozenset({RouteEntry(B.subnet, B.vtep_ip, onlink=False)}))
    assert transcript(inputs, odd) == [
        "neigh 10.42.2.0 lladdr 0e:42:0a:2a:02:00 set (b)",
        "route 10.42.2.0/24 via 10.42.2.0 onlink set (b)",
    ]


def test_bad_leases_are_ignored_with_a_reason_and_this_host_is_never_its_own_peer():
    outside = lease_of("x", "10.43.0.0/24", "10.77.0.7")
    clash = lease_of("y", "10.42.1.0/24", "10.77.0.8")
    result = plan(DatapathInputs(SETTINGS, A, (A, outside, clash)), ObservedKernel())
    assert [str(i) for i in result.ignored] == [
        "lease 10.42.1.0/24 of y ignored: overlaps this host's 10.42.1.0/24",
        "lease 10.43.0.0/24 of x ignored: outside the cluster CIDR 10.42.0.0/16",
    ]
    assert not [c for c in result.changes if isinstance(c, SetFdb | SetNeighbour | SetRoute)]


# -- properties ---------------------------------------------------------------------------------

subnet_indexes = st.lists(st.integers(0, 40), min_size=1, max_size=8, unique=True)


@st.composite
def worlds(draw) -> tuple[DatapathInputs, ObservedKernel]:
    """Leases (the first is this host's) and a kernel holding a random mix of right, stale,
    wrong and foreign entries, with a device that may be missing or wrong."""
    idx = draw(subnet_indexes)
    leases = [lease_of(f"n{i}", f"10.42.{i}.0/24", f"10.77.0.{i + 1}") for i in idx]
    inputs = DatapathInputs(SETTINGS, leases[0], tuple(leases[1:]))
    gone = [lease_of(f"g{i}", f"10.42.{i}.0/24", f"10.77.1.{i}") for i in draw(st.lists(st.integers(41, 60),
                                                                                          max_size=4, unique=True))]
    pool = leases[1:] + gone
    macs = st.sampled_from([p.vtep_mac for p in pool] + ["02:00:00:00:00:01"])
    ips = st.sampled_from([p.underlay_ip for p in pool] + [IPv4Address("10.77.2.2")])
    fdb = draw(st.frozensets(st.builds(FdbEntry, macs, ips), max_size=10))
    neigh = draw(st.frozensets(st.builds(NeighEntry, st.sampled_from([p.vtep_ip for p in pool] or [A.vtep_ip]),
                                         macs, st.booleans()), max_size=8))
    routes = draw(st.frozensets(st.builds(RouteEntry, st.sampled_from([p.subnet for p in pool] or [A.subnet]),
                                          st.sampled_from([p.vtep_ip for p in pool] + [None]), st.booleans()),
                                max_size=8))
    device = draw(st.one_of(st.none(), st.builds(
        ObservedDevice, name=st.just("orion.1"), kind=st.sampled_from(["vxlan", "vxlan", "bridge"]),
        mac=st.sampled_from([leases[0].vtep_mac, "aa:00:00:00:00:01"]), mtu=st.sampled_from([1450, 1500]),
        up=st.booleans(), vni=st.sampled_from([1, 2]), local=st.sampled_from([leases[0].underlay_ip, None]),
        port=st.sampled_from([4789, 8472]), learning=st.booleans(),
        addresses=st.frozensets(st.sampled_from([leases[0].vtep_interface, IPv4Interface("192.0.2.1/24")])))))
    sysctls = draw(st.sampled_from([(), (("net/ipv4/ip_forward", "0"),), (("net/ipv4/ip_forward", "1"),)]))
    # Routes are keyed by destination in the kernel's main table: one per subnet.
    routes = frozenset({r.dst: r for r in sorted(routes, key=lambda r: str(r))}.values())
    neigh = frozenset({n.ip: n for n in sorted(neigh, key=lambda n: str(n))}.values())
    ports = draw(st.frozensets(st.builds(BridgePort, st.sampled_from(["veth1", "veth2", "veth3"]), st.booleans()),
                               max_size=3))
    ports = frozenset({p.name: p for p in sorted(ports, key=lambda p: str(p))}.values())
    return inputs, ObservedKernel(device, fdb, neigh, routes, sysctls, ports)


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_applying_a_plan_converges_in_one_pass(world):
    inputs, kernel = world
    after = apply_all(kernel, plan(inputs, kernel).changes)
    assert plan(inputs, after).changes == ()


def already_right(c: SetNeighbour | SetFdb | SetRoute, kernel: ObservedKernel) -> bool:
    if isinstance(c, SetNeighbour):
        return NeighEntry(c.ip, c.mac, True) in kernel.neighbours
    if isinstance(c, SetFdb):
        return FdbEntry(c.mac, c.dst) in kernel.fdb
    return RouteEntry(c.dst, c.gateway, True) in kernel.routes


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_no_change_touches_a_lease_holder_except_to_make_its_entry_right(world):
    inputs, kernel = world
    result = plan(inputs, kernel)
    holders = {p.node_id: p for p in inputs.peers if p.node_id != inputs.own.node_id}
    macs = {p.vtep_mac: p for p in holders.values()}
    recreated = kernel.device is None or any(isinstance(c, ReplaceDevice) for c in result.changes)
    for c in result.changes:
        if isinstance(c, RemoveRoute):
            assert all(c.dst != p.subnet for p in holders.values()), c
        elif isinstance(c, RemoveNeighbour):
            assert all(c.ip != p.vtep_ip for p in holders.values()), c
        elif isinstance(c, RemoveFdb) and c.mac in macs:
            assert c.dst != macs[c.mac].underlay_ip, f"removed a holder's right FDB entry: {c}"
        elif isinstance(c, SetNeighbour | SetFdb | SetRoute) and not recreated:
            assert not already_right(c, kernel), f"rewrote an entry that was already right: {c}"


@settings(max_examples=200, deadline=None)
@given(subnet_indexes, st.data())
def test_removing_a_lease_removes_only_that_lease_s_entries(idx, data):
    leases = [lease_of(f"n{i}", f"10.42.{i}.0/24", f"10.77.0.{i + 1}") for i in idx]
    own, peers = leases[0], leases[1:]
    kernel = converged(DatapathInputs(SETTINGS, own, tuple(peers)))
    if not peers:
        return
    gone = data.draw(st.sampled_from(peers))
    changes = plan(DatapathInputs(SETTINGS, own, tuple(p for p in peers if p != gone)), kernel).changes
    assert {type(c) for c in changes} == {RemoveRoute, RemoveNeighbour, RemoveFdb}
    assert [str(c) for c in changes] == [f"route {gone.subnet} remove (no lease)",
                                         f"neigh {gone.vtep_ip} remove (no lease)",
                                         f"fdb {gone.vtep_mac} dst {gone.underlay_ip} remove (no lease)"]


def test_leases_reject_a_malformed_mac_and_normalise_the_rest():
    assert Lease("a", IPv4Network("10.42.1.0/24"), IPv4Address("10.77.0.1"), "0E-42-0A-2A-01-00").vtep_mac \
        == "0e:42:0a:2a:01:00"
    try:
        Lease("a", IPv4Network("10.42.1.0/24"), IPv4Address("10.77.0.1"), "nope")
    except ValueError as e:
        assert "not a MAC address" in str(e)
    else:
        raise AssertionError("a malformed MAC was accepted")
