"""The overlay on a real kernel: three lab hosts (namespaces with their own dockerd) whose
datapath loop applied their leases, containers talking across them, and the failure modes:
flushed tables, a deleted device, an agent restart under an open connection, MTU, Docker's
FORWARD DROP, VXLAN from a host without a lease, masquerade to the outside.

The leases are written by the test (the state machine's half comes later); everything else is
real: pyroute2 against the kernel, one dockerd per host, nft and iptables-nft.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Network

import pytest
from agent_kit import Agents, connect_from, in_netns_of, lease
from netlab_kit import IMAGE, Lab, LabHost

from orion.network.bridge_network import DockerNetworks, NetworkConflict, RecreateNetwork, decide, network_spec
from orion.network.firewall import FOREIGN_VXLAN
from orion.network.overlay import OverlaySettings, lease_of, vtep_mac

pytestmark = pytest.mark.netlab

SUBNETS = {"a": "10.42.1.0/24", "b": "10.42.2.0/24", "c": "10.42.3.0/24"}
SETTINGS = OverlaySettings(cluster_cidr=IPv4Network("10.42.0.0/16"), vni=1, port=4789, mtu=1450,
                           bridge="orion0", vxlan="orion.1")


@dataclass
class Overlay:
    lab: Lab
    agents: Agents
    leases: dict[str, dict]
    first: dict[str, dict]  # each host's first pass
    second: dict[str, dict]
    third: dict[str, dict]  # after the containers started: their bridge ports' hairpin
    ip: dict[str, str]  # container name -> overlay IP
    pid: dict[str, int]  # container name -> its init's pid (for its network namespace)

    def host(self, name: str) -> LabHost:
        return self.lab.hosts[name]

    def peers_of(self, name: str) -> list[dict]:
        return [v for k, v in self.leases.items() if k != name]

    def exec(self, container: str, script: str) -> tuple[int, str]:
        c = self.host(container[-1]).client()
        try:
            code, out = c.containers.get(container).exec_run(["sh", "-c", script])
        finally:
            c.close()
        return code, out.decode(errors="replace")

    def fetch(self, src: str, dst: str, timeout_s: int = 5) -> tuple[int, str]:
        # busybox's static wget crashes on -T; busybox's timeout bounds it instead.
        return self.exec(src, f"timeout {timeout_s} wget -qO- http://{self.ip[dst]}/")

    def blocked(self, src: str, dst: str) -> bool:
        """A fetch expected to fail: 2 s without an answer is enough on one kernel."""
        return self.fetch(src, dst, timeout_s=2)[0] != 0


@pytest.fixture(scope="module")
def overlay(lab: Lab) -> Iterator[Overlay]:
    agents = Agents(lab.workdir)
    leases = {n: lease(n, SUBNETS[n], lab.hosts[n].underlay_ip) for n in SUBNETS}
    first, second = {}, {}
    for n in SUBNETS:
        agents.set_leases(lab.hosts[n], leases[n], [v for k, v in leases.items() if k != n])
        first[n] = agents.once(lab.hosts[n])
    for n in SUBNETS:
        second[n] = agents.once(lab.hosts[n])
    ip, pid = {}, {}
    containers = [("a", "web-a", None), ("b", "web-b", None), ("c", "web-c", None),
                  ("c", "echo-c", ["nc", "-ll", "-p", "9000", "-e", "cat"])]
    for host, name, cmd in containers:
        client = lab.hosts[host].client()
        c = client.containers.run(IMAGE, cmd, name=name, network="orion", detach=True)
        attrs = client.api.inspect_container(c.id)
        ip[name] = attrs["NetworkSettings"]["Networks"]["orion"]["IPAddress"]
        pid[name] = attrs["State"]["Pid"]
        client.close()
    third = {n: agents.once(lab.hosts[n]) for n in SUBNETS}
    yield Overlay(lab, agents, leases, first, second, third, ip, pid)


def test_each_host_s_first_pass_builds_everything_and_its_second_changes_nothing(overlay):
    for n in SUBNETS:
        applied = overlay.first[n]["applied"]
        assert overlay.first[n]["failed"] == []
        assert applied[0] == f"network orion {SUBNETS[n]} create"
        assert "nft table ip orion applied (absent)" in applied
        assert any(a.startswith("create orion.1 vxlan id 1") for a in applied)
        assert sum(a.startswith(("neigh", "fdb", "route")) for a in applied) == 6
        assert overlay.second[n] == {"applied": [], "failed": [], "notes": [], "converged": True}


def test_a_container_on_a_reaches_containers_on_c_and_b_by_ip(overlay):
    assert overlay.fetch("web-a", "web-c") == (0, "hello from orion\n")
    code, out = overlay.exec("web-a", f"ping -c 2 -W 2 {overlay.ip['web-b']}")
    assert code == 0, out


def test_cluster_traffic_is_not_nated(overlay):
    """The receiver sees the sender's task IP, not its host's underlay address."""
    def listen() -> socket.socket:
        s = socket.socket()
        s.bind(("0.0.0.0", 9100))
        s.listen(1)
        s.settimeout(10)
        return s
    server = in_netns_of(overlay.pid["web-c"], listen)
    try:
        sender = threading.Thread(target=overlay.exec,
                                  args=("web-a", f"echo hi | timeout 5 nc {overlay.ip['web-c']} 9100"))
        sender.start()
        conn, peer = server.accept()
        conn.close()
        sender.join()
    finally:
        server.close()
    assert peer[0] == overlay.ip["web-a"]


def test_each_container_s_bridge_port_gets_hairpin_mode_in_the_next_pass(overlay):
    for n, containers in (("a", 1), ("b", 1), ("c", 2)):
        applied = overlay.third[n]["applied"]
        assert len(applied) == containers and all(a.startswith("hairpin on veth") for a in applied), applied
        links = overlay.host(n).sh("bridge", "-d", "link", "show", "master", "orion0").stdout
        assert links.count("hairpin on") == containers, links
    assert overlay.agents.once(overlay.host("c"))["converged"]


def test_docker_s_forward_drop_is_in_force_and_orion_s_docker_user_rule_lets_the_overlay_through(overlay):
    c = overlay.host("c")
    assert "-P FORWARD DROP" in c.sh("iptables", "-S", "FORWARD").stdout
    rule = next(line for line in c.sh("iptables", "-S", "DOCKER-USER").stdout.splitlines() if "orion" in line)
    c.sh("sh", "-c", f"iptables {rule.replace('-A ', '-D ', 1)}")
    try:
        assert overlay.blocked("web-a", "web-c"), "Docker's DROP did not stop a new connection into orion0"
        # An accept in a table of one's own does not override Docker's drop (every base chain runs).
        subprocess.run(["ip", "netns", "exec", c.netns, "nft", "-f", "-"], check=True, text=True, input=(
            "table ip scratch {\n chain forward {\n  type filter hook forward priority filter - 5; policy accept;\n"
            "  counter accept\n }\n}\n"))
        assert overlay.blocked("web-a", "web-c"), "an accept in another nft table overrode Docker's DROP"
    finally:
        c.sh("nft", "delete", "table", "ip", "scratch", check=False)
        healed = overlay.agents.once(c)
    assert healed["applied"] == ["iptables DOCKER-USER: accept mark 0x4200000 inserted"]
    assert overlay.fetch("web-a", "web-c") == (0, "hello from orion\n")


def test_flushed_fdb_neighbour_and_route_entries_come_back_in_one_pass(overlay):
    a = overlay.host("a")
    seen = overlay.agents.observe(a)
    for e in seen["fdb"]:
        a.sh("bridge", "fdb", "del", e["mac"], "dev", "orion.1", "dst", e["dst"])
    a.sh("ip", "neigh", "flush", "dev", "orion.1", "nud", "permanent")
    a.sh("ip", "route", "flush", "dev", "orion.1")
    assert overlay.blocked("web-a", "web-c")
    healed = overlay.agents.once(a)
    assert sorted(x.split()[0] for x in healed["applied"]) == ["fdb", "fdb", "neigh", "neigh", "route", "route"]
    assert overlay.fetch("web-a", "web-c") == (0, "hello from orion\n")
    assert overlay.agents.once(a)["converged"]


def test_a_deleted_vxlan_device_comes_back_in_one_pass(overlay):
    a = overlay.host("a")
    a.sh("ip", "link", "del", "orion.1")
    assert overlay.blocked("web-a", "web-b")
    healed = overlay.agents.once(a)
    assert healed["applied"][0].startswith("create orion.1 vxlan id 1 local")
    assert healed["failed"] == []
    assert overlay.fetch("web-a", "web-b") == (0, "hello from orion\n")
    assert overlay.agents.once(a)["converged"]


def test_a_fresh_agent_on_a_converged_host_changes_nothing_and_an_open_tcp_connection_survives_a_restart(overlay):
    a, c = overlay.host("a"), overlay.host("c")
    conn = connect_from(overlay.pid["web-a"], (overlay.ip["echo-c"], 9000))
    try:
        def echo(word: bytes) -> bytes:
            conn.sendall(word + b"\n")
            return conn.recv(64)
        assert echo(b"before") == b"before\n"
        first = [overlay.agents.serve(a, 1.0), overlay.agents.serve(c, 1.0)]
        for served in first:
            passes = served.wait_passes(2)
            assert all(p["converged"] for p in passes), passes
        assert echo(b"while-running") == b"while-running\n"
        for served in first:
            served.stop()
        assert echo(b"agents-down") == b"agents-down\n"  # the kernel carries the traffic alone
        second = [overlay.agents.serve(a, 1.0), overlay.agents.serve(c, 1.0)]
        try:
            for served in second:
                passes = served.wait_passes(2)
                assert all(p["applied"] == [] for p in passes), passes
            assert echo(b"after") == b"after\n"
        finally:
            for served in second:
                served.stop()
    finally:
        conn.close()


def test_1400_byte_packets_cross_with_dont_fragment_and_bigger_ones_do_not_and_10_mb_arrive(overlay):
    def ping(size: int) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", "-t", str(overlay.pid["web-a"]), "-n", "ping", "-M", "do", "-c", "2",
                               "-W", "2", "-s", str(size), overlay.ip["web-c"]], capture_output=True, text=True,
                              timeout=30, check=False)
    assert ping(1372).returncode == 0, ping(1372).stdout  # 1400 bytes on the wire
    assert ping(1422).returncode == 0  # 1450: exactly the overlay MTU
    too_big = ping(1423)
    assert too_big.returncode != 0 and "message too long" in (too_big.stdout + too_big.stderr).lower()
    code, out = overlay.exec("web-c", "dd if=/dev/urandom of=/www/big bs=1M count=10 2>/dev/null && md5sum /www/big")
    assert code == 0
    want = out.split()[0]
    code, got = overlay.exec("web-a", f"timeout 60 wget -qO- http://{overlay.ip['web-c']}/big | md5sum")
    assert (code, got.split()[0]) == (0, want)


def _foreign_drops(c: LabHost) -> int:
    rules = json.loads(c.sh("nft", "-j", "list", "chain", "ip", "orion", "input").stdout)["nftables"]
    for item in rules:
        rule = item.get("rule")
        if rule and rule.get("comment") == FOREIGN_VXLAN:
            return next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
    raise AssertionError(f"no rule {FOREIGN_VXLAN!r} on {c.netns}")


def _vxlan_rx(c: LabHost) -> int:
    """Packets C's VXLAN device decapsulated: a dropped VXLAN packet never reaches it."""
    return json.loads(c.sh("ip", "-j", "-s", "link", "show", "orion.1").stdout)[0]["stats64"]["rx"]["packets"]


def test_vxlan_from_an_underlay_host_without_a_lease_is_dropped_and_accepted_once_it_holds_one(overlay):
    x, c = overlay.host("x"), overlay.host("c")
    xs = "10.42.200.0/24"
    cl = overlay.leases["c"]
    # The stranger builds a correct VXLAN path to C by hand: same VNI, C's MAC, C's underlay address.
    for cmd in (f"ip link add orion.1 type vxlan id 1 local {x.underlay_ip} dstport 4789 nolearning",
                f"ip link set orion.1 address {vtep_mac(IPv4Network(xs))} mtu 1450 up",
                "ip addr add 10.42.200.0/32 dev orion.1",
                f"ip neigh replace 10.42.3.0 lladdr {vtep_mac(IPv4Network(cl['subnet']))} "
                "dev orion.1 nud permanent",
                f"bridge fdb replace {vtep_mac(IPv4Network(cl['subnet']))} dev orion.1 "
                f"dst {c.underlay_ip} self permanent",
                f"ip route replace {cl['subnet']} via 10.42.3.0 dev orion.1 onlink"):
        x.sh(*cmd.split())

    def ping_from_x() -> int:
        return x.sh("ping", "-c", "3", "-i", "0.2", "-W", "1", overlay.ip["web-c"], check=False).returncode

    before, rx = _foreign_drops(c), _vxlan_rx(c)
    assert ping_from_x() != 0
    assert _foreign_drops(c) >= before + 3
    assert _vxlan_rx(c) == rx, "a VXLAN packet from a host without a lease reached the VXLAN device"
    # Control: the same packets pass once x holds a lease in C's inputs ...
    stranger = lease("x", xs, x.underlay_ip)
    overlay.agents.set_leases(c, overlay.leases["c"], [*overlay.peers_of("c"), stranger])
    try:
        granted = overlay.agents.once(c)
        assert any("route 10.42.200.0/24" in a for a in granted["applied"])
        rx = _vxlan_rx(c)
        assert ping_from_x() == 0
        assert _vxlan_rx(c) >= rx + 3
    finally:
        overlay.agents.set_leases(c, overlay.leases["c"], overlay.peers_of("c"))
    # ... and are dropped again when it is released, with x's entries gone from C.
    released = overlay.agents.once(c)
    assert [a for a in released["applied"] if "remove" in a] == [
        "route 10.42.200.0/24 remove (no lease)", "neigh 10.42.200.0 remove (no lease)",
        f"fdb 0e:42:0a:2a:c8:00 dst {x.underlay_ip} remove (no lease)"]
    assert ping_from_x() != 0


def test_traffic_from_a_container_to_outside_the_cluster_is_masqueraded(overlay):
    lab = overlay.lab
    server = socket.socket()
    server.bind((str(lab.bridge_ip), 0))
    server.listen(1)
    server.settimeout(10)
    port = server.getsockname()[1]
    try:
        sender = threading.Thread(target=overlay.exec, args=("web-a", f"echo hi | timeout 5 nc {lab.bridge_ip} {port}"))
        sender.start()
        conn, peer = server.accept()
        conn.close()
        sender.join()
    finally:
        server.close()
    assert peer[0] == str(overlay.host("a").underlay_ip), f"seen from {peer[0]}, not host a's address"


def test_a_network_orion_with_another_subnet_is_left_alone_with_containers_and_recreated_without(overlay):
    """Real Docker: host b's ``orion`` holds web-b, so a different lease is a conflict, not a
    removal; a network of that kind with nothing attached is recreated on the new subnet."""
    client = overlay.host("b").client()
    try:
        networks = DockerNetworks(client)
        spec = network_spec(SETTINGS, lease_of("b", "10.42.9.0/24", "10.77.0.2"))
        seen = networks.observe("orion")
        assert seen is not None and str(seen.subnet) == SUBNETS["b"] and seen.containers >= 1
        conflict = decide(spec, seen)
        assert isinstance(conflict, NetworkConflict), conflict
        networks.apply(conflict)
        assert str(networks.observe("orion").subnet) == SUBNETS["b"]  # untouched

        spare = replace(SETTINGS, bridge="orionspare0", network_name="orion-spare")
        networks.apply(decide(network_spec(spare, lease_of("s", "10.42.50.0/24", "10.77.0.2")), None))
        new_spec = network_spec(spare, lease_of("s", "10.42.51.0/24", "10.77.0.2"))
        again = decide(new_spec, networks.observe("orion-spare"))
        assert isinstance(again, RecreateNetwork) and "subnet 10.42.50.0/24" in again.reason
        networks.apply(again)
        assert decide(new_spec, networks.observe("orion-spare")) is None
    finally:
        for n in client.networks.list(names=["orion-spare"]):
            n.remove()
        client.close()
