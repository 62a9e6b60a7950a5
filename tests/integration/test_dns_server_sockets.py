"""Orion's DNS server over real UDP and TCP sockets on loopback, with dnspython as the
client and a dnslib upstream on another loopback address (never anything outside)."""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from dns_kit import FakeUpstream, MutableView, Outcomes, UpstreamServer, loopback_address

from orion.network.dns_server import DnsServer, DnsSettings
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="binds port 53 on loopback (needs root)")

NODES = (Node("n1", True, "10.42.1.1"), Node("n2", True, "10.42.2.1"))


def web_view(n: int = 3, **changes) -> DiscoveryView:
    endpoints = tuple(Endpoint(f"web-{i}", "web", i, "n1" if i % 2 else "n2", f"10.42.{1 if i % 2 else 2}.{10 + i}", 80,
                               True, True) for i in range(1, n + 1))
    view = DiscoveryView(services=(Service("web", "dnsrr", None, (ServicePort(80),)),
                                   Service("api", "vip", "10.43.0.9", (ServicePort(8080),))),
                         endpoints=endpoints, nodes=NODES, serial=7)
    return replace(view, **changes)


@pytest.fixture(scope="module")
def upstream_server():
    server = UpstreamServer(loopback_address(), FakeUpstream()).start()
    yield server
    server.stop()  # socketserver's shutdown polls every 0.5 s: once per module, not per test


@pytest.fixture
def upstream(upstream_server: UpstreamServer) -> UpstreamServer:
    upstream_server.resolver.asked.clear()
    return upstream_server


@pytest.fixture
def served(tmp_path: Path, upstream: UpstreamServer):
    """A started server on a fresh 127/8 address, port 53, forwarding to ``upstream``."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"# test\nsearch example.test\nnameserver {upstream.address}\n")
    view = MutableView(web_view())
    outcomes = Outcomes()
    server = DnsServer(loopback_address(), 53, view, resolv, on_query=outcomes, rng=random.Random(1),
                       settings=DnsSettings(forward_timeout=0.5))
    server.start()
    yield server, view, outcomes, resolv
    server.stop()


def ask(server: DnsServer, name: str, qtype: str = "A", *, tcp: bool = False, **query_args) -> dns.message.Message:
    query = dns.message.make_query(name, qtype, **query_args)
    host, port = server.address
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, host, port=port, timeout=3)


def a_records(reply: dns.message.Message) -> list[str]:
    return sorted(rd.address for rrset in reply.answer if rrset.rdtype == dns.rdatatype.A for rd in rrset)


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_a_dnsrr_service_answers_every_healthy_replica_with_ttl_5(served, tcp):
    server, _view, outcomes, _ = served
    reply = ask(server, "web.service.orion.", tcp=tcp)
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.flags & dns.flags.AA
    assert a_records(reply) == ["10.42.1.11", "10.42.1.13", "10.42.2.12"]
    assert {rrset.ttl for rrset in reply.answer} == {5}
    assert outcomes.counts["answer"] == 1


def test_answers_follow_the_view_at_query_time(served):
    server, view, _, _ = served
    assert len(a_records(ask(server, "web.service.orion"))) == 3
    view.view = web_view(endpoints=tuple(replace(e, healthy=e.task_id != "web-2") for e in view.view.endpoints))
    assert a_records(ask(server, "web.service.orion")) == ["10.42.1.11", "10.42.1.13"]
    view.view = replace(view.view, nodes=(Node("n1", False, "10.42.1.1"), NODES[1]))
    reply = ask(server, "web.service.orion")
    assert reply.answer == [] and reply.rcode() == dns.rcode.NOERROR  # NODATA: nobody serves


def test_a_vip_service_answers_its_vip_and_srv_points_at_it(served):
    server, _, _, _ = served
    assert a_records(ask(server, "api.service.orion")) == ["10.43.0.9"]
    reply = ask(server, "api.service.orion", "SRV")
    (srv,) = reply.answer[0]
    assert (srv.port, str(srv.target)) == (8080, "api.service.orion.")
    assert [rd.address for rrset in reply.additional for rd in rrset] == ["10.43.0.9"]


def test_srv_of_a_dnsrr_service_carries_the_targets_addresses(served):
    server, _, _, _ = served
    reply = ask(server, "web.service.orion", "SRV")
    targets = sorted(str(rd.target) for rrset in reply.answer for rd in rrset)
    assert targets == ["web-1.task.orion.", "web-2.task.orion.", "web-3.task.orion."]
    glue = {str(rrset.name): rrset[0].address for rrset in reply.additional}
    assert glue == {"web-1.task.orion.": "10.42.1.11", "web-2.task.orion.": "10.42.2.12",
                    "web-3.task.orion.": "10.42.1.13"}


def test_nxdomain_and_nodata_carry_the_soa_with_minimum_5(served):
    server, _, outcomes, _ = served
    missing = ask(server, "nope.service.orion")
    assert missing.rcode() == dns.rcode.NXDOMAIN
    (soa,) = missing.authority[0]
    assert soa.minimum == 5 and soa.serial == 7 and missing.authority[0].ttl == 5
    nodata = ask(server, "web.service.orion", "AAAA")
    assert nodata.rcode() == dns.rcode.NOERROR and nodata.answer == []
    assert nodata.authority[0].rdtype == dns.rdatatype.SOA
    assert outcomes.counts["nxdomain"] == 1 and outcomes.counts["nodata"] == 1


def test_a_large_answer_is_truncated_over_udp_and_complete_over_tcp(served):
    server, view, _, _ = served
    view.view = web_view(60)
    host, port = server.address
    query = dns.message.make_query("web.service.orion", "A")
    over_udp = dns.query.udp(query, host, port=port, timeout=3, ignore_trailing=True)
    assert over_udp.flags & dns.flags.TC and over_udp.answer == []
    reply, used_tcp = dns.query.udp_with_fallback(query, host, port=port, timeout=3)
    assert used_tcp
    assert len(a_records(reply)) == 60


def test_an_edns_client_gets_up_to_1232_bytes_over_udp(served):
    server, view, _, _ = served
    view.view = web_view(60)  # ~1,000 bytes: over 512, under 1232
    reply = ask(server, "web.service.orion", use_edns=0, payload=4096)
    assert not reply.flags & dns.flags.TC
    assert len(a_records(reply)) == 60


def test_tcp_answers_pipelined_queries_on_one_connection(served):
    server, _, _, _ = served
    with socket.create_connection(server.address, timeout=3) as sock:
        for name in ("web.service.orion", "api.service.orion", "n2.node.orion"):
            reply = dns.query.tcp(dns.message.make_query(name, "A"), None, sock=sock, timeout=3)
            assert reply.answer, name


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_names_outside_the_zone_are_forwarded_to_the_resolv_conf_upstream(served, upstream, tcp):
    server, _, outcomes, _ = served
    reply = ask(server, "www.example.test", tcp=tcp)
    assert a_records(reply) == ["192.0.2.10"]
    assert upstream.resolver.asked == [("www.example.test.", "tcp" if tcp else "udp")]
    assert ask(server, "unknown.invalid", tcp=tcp).rcode() == dns.rcode.NXDOMAIN  # the upstream's verdict
    assert outcomes.counts["forwarded"] == 2


def test_a_truncated_upstream_answer_reaches_the_client_which_retries_over_tcp(served, upstream):
    server, _, _, _ = served
    host, port = server.address
    reply, used_tcp = dns.query.udp_with_fallback(dns.message.make_query("many.example.test", "A"), host,
                                                  port=port, timeout=3)
    assert used_tcp and len(a_records(reply)) == 100
    assert [proto for _, proto in upstream.resolver.asked] == ["udp", "tcp"]


def test_servfail_when_no_upstream_answers_within_the_timeout(served, upstream):
    server, _, outcomes, resolv = served
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives, never answers
    silent_address = loopback_address()
    silent.bind((silent_address, 53))
    try:
        resolv.write_text(f"nameserver {silent_address}\n")
        started = time.monotonic()
        reply = ask(server, "www.example.test")
        assert reply.rcode() == dns.rcode.SERVFAIL
        assert 0.4 < time.monotonic() - started < 2.5
        assert outcomes.counts["servfail"] == 1
    finally:
        silent.close()
    resolv.write_text(f"nameserver {loopback_address()}\nnameserver {upstream.address}\n")  # refused, then good
    assert a_records(ask(server, "www.example.test")) == ["192.0.2.10"]


def test_beyond_the_pending_bound_forwarded_queries_fail_at_once(tmp_path):
    silent_address = loopback_address()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind((silent_address, 53))
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {silent_address}\n")
    outcomes = Outcomes()
    server = DnsServer(loopback_address(), 53, MutableView(web_view()), resolv, on_query=outcomes,
                       settings=DnsSettings(forward_timeout=1.0, max_pending_forwards=1))
    server.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(3)
            started = time.monotonic()
            for i in range(3):
                sock.sendto(dns.message.make_query(f"q{i}.example.test", "A").to_wire(), server.address)
            replies = [(dns.message.from_wire(sock.recv(512)), time.monotonic() - started) for _ in range(3)]
        assert all(reply.rcode() == dns.rcode.SERVFAIL for reply, _ in replies)
        assert [str(reply.question[0].name) for reply, _ in replies[:2]] == ["q1.example.test.", "q2.example.test."]
        assert replies[1][1] < 0.5 <= 0.9 < replies[2][1]  # two refused at once, the first after its timeout
        assert outcomes.counts["servfail"] == 3
    finally:
        server.stop()
        silent.close()


def test_a_resolver_that_points_back_at_the_server_is_skipped(served, upstream):
    server, _, _, resolv = served
    resolv.write_text(f"nameserver {server.address[0]}\n")
    started = time.monotonic()
    assert ask(server, "www.example.test").rcode() == dns.rcode.SERVFAIL
    assert time.monotonic() - started < 0.4  # skipped, not asked and timed out
    assert upstream.resolver.asked == []


def test_an_unreadable_view_is_servfail_and_the_server_keeps_answering(served):
    server, view, outcomes, _ = served
    view.fail = True
    assert ask(server, "web.service.orion").rcode() == dns.rcode.SERVFAIL
    view.fail = False
    assert len(a_records(ask(server, "web.service.orion"))) == 3
    assert outcomes.counts["servfail"] == 1


def test_garbage_gets_formerr_and_responses_get_nothing(served):
    server, _, outcomes, _ = served
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1)
        sock.sendto(b"\x12\x34\x01\x00" + b"\xff" * 20, server.address)
        reply = dns.message.from_wire(sock.recv(512), question_only=True)
        assert reply.id == 0x1234 and reply.rcode() == dns.rcode.FORMERR
        response = dns.message.make_response(dns.message.make_query("web.service.orion", "A"))
        sock.sendto(response.to_wire(), server.address)
        with pytest.raises(TimeoutError):
            sock.recv(512)
    assert ask(server, "web.service.orion").answer  # still serving
    assert outcomes.counts["refused"] == 2


def test_stop_closes_both_sockets_and_joins_every_thread(tmp_path):
    address = loopback_address()
    server = DnsServer(address, 53, MutableView(web_view()), tmp_path / "missing-resolv.conf")
    server.start()
    with socket.create_connection((address, 53), timeout=3) as idle_client:
        assert ask(server, "web.service.orion", tcp=True).answer
        time.sleep(0.1)  # the idle client's thread is running
        server.stop()
        assert idle_client.recv(10) == b""  # closed by the server, not left to the idle timeout
    assert not [t for t in threading.enumerate() if t.name.startswith("orion-dns")]
    again = DnsServer(address, 53, MutableView(web_view()), tmp_path / "missing-resolv.conf")
    again.start()  # both ports free again at once
    try:
        assert ask(again, "www.example.test").rcode() == dns.rcode.SERVFAIL  # no resolv.conf: no upstream
    finally:
        again.stop()
