"""The DNS wire translation and resolv.conf parsing, without sockets."""

from __future__ import annotations

import random

from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from orion.network import dns_wire
from orion.network.discovery import Answer, resolve
from orion.network.dns_forward import Upstream, parse_resolv_conf
from orion.network.view import DiscoveryView, Endpoint, Node, Service


def many(n: int) -> DiscoveryView:
    return DiscoveryView(services=(Service("web", "dnsrr"),), nodes=(Node("n1"),),
                         endpoints=tuple(Endpoint(f"w{i}", "web", i, "n1", f"10.42.1.{i + 2}") for i in range(n)))


def reply_for(view: DiscoveryView, question: DNSRecord) -> tuple[dns_wire.Query, DNSRecord]:
    query = dns_wire.parse_query(question.pack())
    assert isinstance(query, dns_wire.Query)
    answer = resolve(view, query.name, query.qtype, random.Random(0))
    assert isinstance(answer, Answer)
    return query, dns_wire.encode(query, answer)


def test_a_reply_over_512_bytes_is_cut_to_header_and_question_with_tc():
    query, reply = reply_for(many(40), DNSRecord.question("web.service.orion", "A"))
    assert query.udp_limit == 512
    assert len(reply.pack()) > 512
    cut = DNSRecord.parse(dns_wire.fit_udp(reply, query.udp_limit))
    assert cut.header.tc == 1 and cut.rr == [] and str(cut.q.qname) == "web.service.orion."
    assert cut.header.id == reply.header.id


def test_an_edns_client_may_get_1232_bytes_but_no_more():
    question = DNSRecord.question("web.service.orion", "A")
    question.add_ar(EDNS0(udp_len=65000))
    query, reply = reply_for(many(40), question)
    assert query.udp_limit == 1232
    fitted = DNSRecord.parse(dns_wire.fit_udp(reply, query.udp_limit))
    assert fitted.header.tc == 0 and len(fitted.rr) == 40
    assert [rr.rtype for rr in fitted.ar] == [QTYPE.OPT]


def test_what_is_not_one_query_is_refused():
    notify = DNSRecord.question("web.service.orion")
    notify.header.opcode = 4
    result = dns_wire.parse_query(notify.pack())
    assert isinstance(result, dns_wire.Malformed) and result.reply is not None
    assert DNSRecord.parse(result.reply).header.rcode == RCODE.NOTIMP
    assert dns_wire.parse_query(b"\x00\x01") == dns_wire.Malformed(None)


def test_resolv_conf_keeps_ipv4_nameservers_in_order_and_skips_the_server_itself():
    text = """# generated
search example.test
nameserver 10.255.255.53
nameserver 10.42.1.1   # orion's own address
nameserver fe80::1
nameserver not-an-ip
nameserver 127.0.0.53
nameserver 10.255.255.53
options ndots:2
"""
    assert parse_resolv_conf(text, ("10.42.1.1", 53)) == (Upstream("10.255.255.53"), Upstream("127.0.0.53"))
    # Listening on every address, a loopback resolver on our port would be ourselves.
    assert parse_resolv_conf(text, ("0.0.0.0", 53)) == (Upstream("10.255.255.53"), Upstream("10.42.1.1"))
    # On another port nothing points back at us.
    assert len(parse_resolv_conf(text, ("0.0.0.0", 5353))) == 3
