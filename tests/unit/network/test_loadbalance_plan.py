"""The load balancer's plan and its nftables rendering (orion/network/loadbalance.py)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.network.firewall import ACCEPT_MARK
from orion.network.loadbalance import MASQ_MARK, Backend, Frontend, LbHost, plan, render
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort

HOST = LbHost("10.42.1.0/24")
WEB = Service("web", "vip", "10.43.0.5", (ServicePort(80, published=8080), ServicePort(53, "udp")))
API = Service("api", "vip", "10.43.0.6", (ServicePort(9000),))
RR = Service("rr", "dnsrr", None, (ServicePort(70, published=7070),))


def web_endpoints() -> tuple[Endpoint, ...]:
    return (Endpoint("web-1", "web", 1, "n1", "10.42.1.11", 80),
            Endpoint("web-2", "web", 2, "n2", "10.42.2.12", 80),
            Endpoint("web-3", "web", 3, "n1", "10.42.1.13", 80, healthy=False),
            Endpoint("web-4", "web", 4, "n3", "10.42.3.14", 80),  # n3 is dead
            Endpoint("rr-1", "rr", 1, "n2", "10.42.2.20", 70))


VIEW = DiscoveryView((WEB, API, RR), web_endpoints(),
                     (Node("n1"), Node("n2"), Node("n3", alive=False)))


def test_a_vip_port_balances_over_the_serving_replicas_only():
    lb = plan(VIEW, HOST)
    web_tcp = next(f for f in lb.frontends if f.vip == "10.43.0.5" and f.protocol == "tcp")
    assert web_tcp == Frontend("web", "tcp", 80, "10.43.0.5",
                               (Backend("10.42.1.11", 80, True), Backend("10.42.2.12", 80, False)))


def test_published_ports_are_ingress_frontends_for_vip_and_dnsrr_services_alike():
    ingress = {(f.service, f.port): f for f in plan(VIEW, HOST).frontends if f.vip is None}
    assert set(ingress) == {("web", 8080), ("rr", 7070)}
    assert [b.ip for b in ingress["rr", 7070].backends] == ["10.42.2.20"]
    assert [(b.ip, b.port) for b in ingress["web", 8080].backends] == [("10.42.1.11", 80), ("10.42.2.12", 80)]


def test_a_vip_without_backends_is_listed_to_be_rejected():
    lb = plan(VIEW, HOST)
    assert lb.vips == ("10.43.0.5", "10.43.0.6")
    assert [(f.service, f.port) for f in lb.without_backends()] == [("api", 9000)]
    text = render(lb).text
    assert "elements = { 10.43.0.5, 10.43.0.6 }" in text
    assert "ip daddr 10.43.0.6" not in text  # no DNAT rule: the reject chains see it
    assert "ip daddr @vips meta l4proto tcp reject with tcp reset" in text


def test_the_kernel_picks_a_backend_at_random_among_n():
    text = render(plan(VIEW, HOST)).text
    chain = re.search(r"chain svc-web-tcp-80 \{\n\t\t(.*)\n", text).group(1)
    assert chain == ("numgen random mod 2 vmap { 0 : goto svc-web-tcp-80-ep0, 1 : goto svc-web-tcp-80-ep1 }")
    assert "ip daddr 10.43.0.5 meta l4proto tcp th dport 80 goto svc-web-tcp-80" in text
    assert "ip daddr 10.43.0.5 meta l4proto udp th dport 53 goto svc-web-udp-53" in text
    assert "meta l4proto udp dnat to 10.42.1.11:53" in text


def test_only_a_local_client_to_a_local_backend_is_masqueraded_for_hairpin_and_ingress_always():
    text = render(plan(VIEW, HOST)).text
    mark = f"meta mark set meta mark | {MASQ_MARK:#010x}"
    local = re.search(r"chain svc-web-tcp-80-ep0 \{\n(.*?)\t\}", text, re.S).group(1)
    remote = re.search(r"chain svc-web-tcp-80-ep1 \{\n(.*?)\t\}", text, re.S).group(1)
    assert f"ip saddr 10.42.1.0/24 {mark}" in local and "dnat to 10.42.1.11:80" in local
    assert "mark" not in remote and "dnat to 10.42.2.12:80" in remote
    for i in (0, 1):
        ingress = re.search(rf"chain in-web-tcp-8080-ep{i} \{{\n(.*?)\t\}}", text, re.S).group(1)
        assert ingress.splitlines()[0].strip() == f"{mark} ct mark set ct mark | {ACCEPT_MARK:#010x}"
    assert f"meta mark & {MASQ_MARK:#010x} == {MASQ_MARK:#010x} masquerade" in text


def test_ingress_connections_carry_the_docker_user_accept_mark_both_ways():
    """Docker's FORWARD DROP lets through only what DOCKER-USER accepts (the mark): an ingress
    connection is marked in conntrack and every packet of it, reply included, gets the mark."""
    text = render(plan(VIEW, HOST)).text
    forward = re.search(r"chain forward \{\n(.*?)\t\}", text, re.S).group(1)
    assert "type filter hook forward priority filter - 2" in forward
    bit = f"{ACCEPT_MARK:#010x}"
    assert f"ct mark & {bit} == {bit} meta mark set meta mark | {bit}" in forward


def test_without_a_local_subnet_nothing_is_hairpin():
    lb = plan(VIEW, LbHost(None))
    assert not any(b.local for f in lb.frontends for b in f.backends)
    assert "ip saddr" not in render(lb).text


def test_the_script_replaces_the_table_in_one_transaction():
    text = render(plan(VIEW, HOST)).text
    assert text.startswith("table ip orion-lb {\n}\ndelete table ip orion-lb\ntable ip orion-lb {\n")
    assert "inet orion" not in text


def test_an_empty_view_still_renders_the_hooks_and_an_empty_vip_set():
    ruleset = render(plan(DiscoveryView(), HOST))
    assert "elements" not in ruleset.text
    assert "type nat hook prerouting priority dstnat - 1; policy accept;" in ruleset.text


def test_awkward_service_names_become_distinct_nft_identifiers():
    view = DiscoveryView((Service("a.b", "vip", "10.43.0.1", (ServicePort(80),)),
                          Service("a_b", "vip", "10.43.0.2", (ServicePort(80),))),
                         (Endpoint("x", "a.b", 1, "n1", "10.42.1.2"), Endpoint("y", "a_b", 1, "n1", "10.42.1.3")),
                         (Node("n1"),))
    text = render(plan(view, HOST)).text
    assert "chain svc-a_b-tcp-80 {" in text and "chain svc-a_b-tcp-80-2 {" in text


def test_a_bad_subnet_is_refused():
    with pytest.raises(ValueError, match="10.42.1.300"):
        LbHost("10.42.1.300/24")


@settings(max_examples=100)
@given(st.permutations(web_endpoints()), st.permutations((WEB, API, RR)))
def test_the_same_state_in_any_order_renders_the_same_digest(endpoints, services):
    reordered = DiscoveryView(tuple(services), tuple(endpoints), VIEW.nodes)
    assert render(plan(reordered, HOST)) == render(plan(VIEW, HOST))


def test_any_change_of_backends_changes_the_digest():
    base = render(plan(VIEW, HOST)).digest
    fewer = replace(VIEW, endpoints=VIEW.endpoints[1:])
    sick = replace(VIEW, endpoints=tuple(replace(e, healthy=False) if e.task_id == "web-2" else e
                                         for e in VIEW.endpoints))
    assert len({base, render(plan(fewer, HOST)).digest, render(plan(sick, HOST)).digest}) == 3
