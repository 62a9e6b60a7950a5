"""The load balancer in a real kernel: nftables NAT in network namespaces (lb_lab.py),
real TCP and UDP between them. Needs root and nftables; every namespace is removed
afterwards, and the next run removes what a killed run left."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import replace

import pytest
from lb_lab import BACKENDS, SUBNETS, UNDERLAY, Lab, missing_prerequisites, remove_leftovers, wait_until

from orion.network.loadbalance import LbHost, plan, render
from orion.network.loadbalance_loop import LoadBalanceLoop, Nft
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort

pytestmark = [pytest.mark.netlab, pytest.mark.skipif(missing_prerequisites() is not None,
                                                     reason=missing_prerequisites() or "")]

VIP = "10.43.0.10"
WEB = Service("web", "vip", VIP, (ServicePort(80, published=8080), ServicePort(80, "udp")))
NODES = (Node("hA", True, "10.42.1.1"), Node("hB", True, "10.42.2.1"))


def web_view(*, unhealthy: tuple[str, ...] = (), extra: tuple[Service, ...] = ()) -> DiscoveryView:
    endpoints = tuple(Endpoint(f"web-{name}", "web", i, "hA", ip, 80, True, name not in unhealthy)
                      for i, (name, ip) in enumerate(sorted(BACKENDS.items()), start=1))
    return DiscoveryView((WEB, *extra), endpoints, NODES)


class Hosts:
    """One load-balancer loop per lab host, all reading the same (test-controlled) view."""

    def __init__(self, lab: Lab) -> None:
        self.view = web_view()
        self.loops = {host: LoadBalanceLoop(lambda: self.view, lambda host=host: LbHost(SUBNETS[host]),
                                            Nft(lab.prefix(host)), verify_every=0.0)
                      for host in SUBNETS}

    def apply(self, view: DiscoveryView) -> None:
        self.view = view
        for host, loop in self.loops.items():
            result = loop.run_once()
            assert result.error is None, f"{host}: {result.error}"


@pytest.fixture(scope="module")
def lab():
    remove_leftovers()
    built = Lab()
    try:
        built.build()
        yield built
    finally:
        built.destroy()


@pytest.fixture
def hosts(lab: Lab) -> Hosts:
    hosts = Hosts(lab)
    hosts.apply(web_view())
    return hosts


def names(answers: list[str]) -> Counter[str]:
    return Counter(answers)


def test_sixty_requests_to_the_vip_reach_all_three_backends(lab, hosts):
    answers = names(lab.get("cB", f"http://{VIP}", 60))
    assert set(answers) == set(BACKENDS), answers
    assert all(count >= 5 for count in answers.values()), answers  # random, not stuck on one


def test_the_host_itself_reaches_the_vip_through_the_output_hook(lab, hosts):
    assert set(lab.get("hB", f"http://{VIP}", 30)) == set(BACKENDS)


def test_udp_to_the_vip_is_balanced_too(lab, hosts):
    answers = names(lab.udp("cB", VIP, 80, 30))
    assert set(answers) == set(BACKENDS), answers


def test_a_removed_backend_gets_no_new_connection_after_the_next_apply(lab, hosts):
    hosts.apply(web_view(unhealthy=("b3",)))
    answers = names(lab.get("cB", f"http://{VIP}", 40))
    assert set(answers) == {"b1", "b2"}, answers
    hosts.apply(web_view())
    assert "b3" in names(lab.get("cB", f"http://{VIP}", 40))


def test_an_established_connection_survives_reapplies_and_its_backends_removal(lab, hosts):
    session = lab.session("cB", VIP, 80)
    try:
        first = session.ask()
        assert first in BACKENDS
        other = Service("other", "vip", "10.43.0.11", (ServicePort(81),))
        hosts.apply(web_view(extra=(other,)))  # an unrelated change: the table is replaced
        assert session.ask() == first
        hosts.apply(web_view(unhealthy=(first,), extra=(other,)))  # its own backend leaves the pool
        assert session.ask() == first  # conntrack keeps the connection where it was
        assert first not in lab.get("cB", f"http://{VIP}", 20)  # but nothing new goes there
    finally:
        session.close()


def test_a_vip_without_healthy_backends_resets_instead_of_hanging(lab, hosts):
    hosts.apply(web_view(unhealthy=tuple(BACKENDS)))
    for client in ("cB", "hB"):  # prerouting and output
        answers = lab.get(client, f"http://{VIP}", 3, timeout=5)
        assert answers == ["error ConnectionRefusedError"] * 3, (client, answers)
    assert lab.get("cB", f"http://{VIP}:81", 1, timeout=5) == ["error ConnectionRefusedError"]  # a port it lacks


BR_NETFILTER = "net.bridge.bridge-nf-call-iptables"


@contextlib.contextmanager
def bridge_mode(lab: Lab, br_netfilter: str, port_hairpin: bool):
    """hA's bridge as Docker leaves it (br_netfilter on) or without br_netfilter, with or
    without hairpin mode on the backends' bridge ports; back to the lab's default after."""
    if not lab.sh("hA", "sysctl", "-n", BR_NETFILTER, check=False).strip():
        pytest.skip("no br_netfilter in this kernel")

    def ports(on: bool) -> None:
        for backend in BACKENDS:
            lab.sh("hA", "ip", "link", "set", f"v-{backend}", "type", "bridge_slave", "hairpin", "on" if on else "off")

    lab.sh("hA", "sysctl", "-qw", f"{BR_NETFILTER}={br_netfilter}")
    ports(port_hairpin)
    try:
        yield
    finally:
        lab.sh("hA", "sysctl", "-qw", f"{BR_NETFILTER}=0")
        ports(False)


@pytest.mark.parametrize("br_netfilter, port_hairpin", [("0", False), ("1", True)],
                         ids=["plain-bridge", "docker-bridge-with-port-hairpin"])
def test_hairpin_a_client_on_the_backends_bridge_reaches_them_through_the_vip(lab, hosts, br_netfilter,
                                                                              port_hairpin):
    with bridge_mode(lab, br_netfilter, port_hairpin):
        answers = names(lab.get("cA", f"http://{VIP}", 30))
        assert set(answers) == set(BACKENDS), answers
        for backend in ("b1", "b2"):  # a backend reaching its own service may land on itself
            answers = lab.get(backend, f"http://{VIP}", 10)
            assert all(a in BACKENDS for a in answers), (backend, answers)


def test_with_br_netfilter_a_backend_reaching_itself_needs_hairpin_mode_on_its_bridge_port(lab, hosts):
    """What the datapath must do on Docker hosts: with br_netfilter (Docker turns it on)
    the DNAT happens while the frame is still being bridged, so a connection from b1 that
    lands on b1 must leave through the port it came in by, which a bridge port refuses
    unless its hairpin mode is on (Docker sets it only with userland-proxy off)."""
    hosts.apply(web_view(unhealthy=("b2", "b3")))  # b1 is the only backend
    with bridge_mode(lab, "1", port_hairpin=False):
        assert lab.get("b1", f"http://{VIP}", 2, timeout=1) == ["error TimeoutError"] * 2
        assert lab.get("b2", f"http://{VIP}", 2, timeout=1) == ["b1"] * 2
    with bridge_mode(lab, "1", port_hairpin=True):
        assert lab.get("b1", f"http://{VIP}", 2, timeout=1) == ["b1"] * 2


def test_without_the_hairpin_masquerade_the_same_clients_fail(lab, hosts):
    """The control for the test above: the masquerade is what makes hairpin work."""
    ruleset = render(plan(web_view(), LbHost(SUBNETS["hA"])))
    stripped = "\n".join(line for line in ruleset.text.splitlines() if "ip saddr 10.42.1.0/24" not in line)
    Nft(lab.prefix("hA")).apply(stripped)
    try:
        answers = lab.get("cA", f"http://{VIP}", 3, timeout=1)
        assert all(a.startswith("error") for a in answers), answers
    finally:
        hosts.apply(web_view())


def test_the_published_port_answers_on_every_host_including_one_without_replicas(lab, hosts):
    for host in ("hB", "hA"):  # hB runs no replica
        answers = names(lab.get("ext", f"http://{UNDERLAY[host]}:8080", 30))
        assert set(answers) == set(BACKENDS), (host, answers)
    # and from a container, to its own host's underlay address
    assert set(lab.get("cB", f"http://{UNDERLAY['hB']}:8080", 30)) == set(BACKENDS)


def test_a_published_port_follows_backend_removal(lab, hosts):
    hosts.apply(web_view(unhealthy=("b1", "b2")))
    assert set(lab.get("ext", f"http://{UNDERLAY['hB']}:8080", 10)) == {"b3"}


def test_the_loop_rebuilds_a_deleted_table_and_stopping_it_leaves_the_table(lab, hosts):
    loop = LoadBalanceLoop(lambda: web_view(), lambda: LbHost(SUBNETS["hB"]), Nft(lab.prefix("hB")),
                           interval=0.2, verify_every=0.2)
    nft = Nft(lab.prefix("hB"))
    digest = render(plan(web_view(), LbHost(SUBNETS["hB"]))).digest
    loop.start()
    try:
        nft.delete_table()
        assert wait_until(lambda: nft.digest() == digest, timeout=5)
    finally:
        loop.stop()
    assert nft.digest() == digest  # nothing torn down on stop
    assert set(lab.get("cB", f"http://{VIP}", 15)) <= set(BACKENDS)


def test_an_unchanged_view_is_not_applied_again(lab, hosts):
    loop = hosts.loops["hB"]
    assert not loop.run_once().applied
    changed = replace(web_view(), services=(replace(WEB, ports=(ServicePort(80),)),))
    hosts.view = changed
    assert loop.run_once().applied
