"""DNS messages on the wire (dnslib): a query in, the zone's typed answer out as bytes
that fit the transport.

Kept apart from the sockets so the translation can be read and tested alone:
``parse_query`` refuses what the server must not answer (not a query, more than one
question, garbage), ``encode`` turns a :class:`discovery.Answer` into a reply and
``fit_udp`` truncates a reply that does not fit the client's UDP buffer to header and
question with TC set, so the client asks again over TCP (RFC 1035 §4.2.1, RFC 7766).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from dnslib import (
    CLASS,
    EDNS0,
    OPCODE,
    QTYPE,
    RCODE,
    RR,
    SOA,
    SRV,
    DNSError,
    DNSHeader,
    DNSRecord,
)
from dnslib import A as RDATA_A

from orion.network.discovery import A, Answer, Outcome, Record, Soa, Srv

# RFC 1035's limit for a client that does not speak EDNS0.
CLASSIC_UDP = 512
# The DNS flag day 2020 size: avoids IP fragmentation on any path with MTU >= 1280.
MAX_UDP = 1232
# QCLASS "*" (RFC 1035 §3.2.5): dnslib names it "*", not ANY.
_CLASS_ANY = 255


@dataclass(frozen=True)
class Query:
    """One parsed question and what the reply must respect."""

    record: DNSRecord
    name: str  # as asked, with the trailing dot
    qtype: str  # "A", "SRV", ... (TYPE65280 for unknown numbers)
    qclass: int
    udp_limit: int  # how many bytes a UDP reply may have
    edns: bool


@dataclass(frozen=True)
class Malformed:
    """A message the server answers with an error rcode (or not at all: ``reply`` None
    when not even the header could be read)."""

    reply: bytes | None
    outcome: Outcome = Outcome.REFUSED


def parse_query(data: bytes) -> Query | Malformed:
    try:
        record = DNSRecord.parse(data)
    except (DNSError, struct.error, ValueError, IndexError):
        return Malformed(_header_only(data, RCODE.FORMERR))
    if record.header.qr:
        return Malformed(None)  # a response sent to us: never answer it (reflection loops)
    if record.header.opcode != OPCODE.QUERY:
        return Malformed(_error(record, RCODE.NOTIMP))
    if len(record.questions) != 1:
        return Malformed(_error(record, RCODE.FORMERR))
    question = record.q
    opt = [rr for rr in record.ar if rr.rtype == QTYPE.OPT]
    limit = CLASSIC_UDP
    if opt:
        limit = max(CLASSIC_UDP, min(MAX_UDP, opt[0].rclass))
    return Query(record, str(question.qname), QTYPE.get(question.qtype), question.qclass, limit, bool(opt))


def encode(query: Query, answer: Answer) -> DNSRecord:
    """The authoritative reply for a zone answer (AA set, RA set: we also recurse)."""
    reply = _reply(query)
    if answer.outcome is Outcome.NXDOMAIN:
        reply.header.rcode = RCODE.NXDOMAIN
    for record in answer.answers:
        reply.add_answer(_rr(record))
    for record in answer.authority:
        reply.add_auth(_rr(record))
    for record in answer.additional:
        reply.add_ar(_rr(record))
    return reply


def refused(query: Query) -> DNSRecord:
    reply = _reply(query)
    reply.header.aa = 0
    reply.header.rcode = RCODE.REFUSED
    return reply


def servfail(query: Query) -> DNSRecord:
    reply = _reply(query)
    reply.header.aa = 0
    reply.header.rcode = RCODE.SERVFAIL
    return reply


def fit_udp(reply: DNSRecord, limit: int) -> bytes:
    """The packed reply, or header + question with TC when it exceeds ``limit`` bytes."""
    packed = reply.pack()
    if len(packed) <= limit:
        return packed
    truncated = DNSRecord(DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap, tc=1), q=reply.q)
    for rr in reply.ar:
        if rr.rtype == QTYPE.OPT:
            truncated.add_ar(rr)
    return truncated.pack()


def is_in_class(query: Query) -> bool:
    return query.qclass in (CLASS.IN, _CLASS_ANY)


def _reply(query: Query) -> DNSRecord:
    reply = query.record.reply()  # id, question, rd copied; qr, aa, ra set
    if query.edns:
        reply.add_ar(EDNS0(udp_len=MAX_UDP))
    return reply


def _rr(record: Record) -> RR:
    if isinstance(record, A):
        return RR(record.name, QTYPE.A, rdata=RDATA_A(record.ip), ttl=record.ttl)
    if isinstance(record, Srv):
        return RR(record.name, QTYPE.SRV, rdata=SRV(record.priority, record.weight, record.port, record.target),
                  ttl=record.ttl)
    if isinstance(record, Soa):
        times = (record.serial, record.refresh, record.retry, record.expire, record.minimum)
        return RR(record.name, QTYPE.SOA, rdata=SOA(record.mname, record.rname, times), ttl=record.ttl)
    raise TypeError(f"no wire form for {record!r}")


def _error(record: DNSRecord, rcode: int) -> bytes:
    header = DNSHeader(id=record.header.id, qr=1, opcode=record.header.opcode, rd=record.header.rd, ra=1,
                       rcode=rcode)
    return DNSRecord(header, q=record.q if len(record.questions) == 1 else None).pack()


def _header_only(data: bytes, rcode: int) -> bytes | None:
    """A FORMERR carrying the request's id when at least its 12-byte header arrived."""
    if len(data) < 12:
        return None
    (qid, flags) = struct.unpack("!HH", data[:4])
    if flags & 0x8000:  # a response: never answer
        return None
    return DNSRecord(DNSHeader(id=qid, qr=1, ra=1, rcode=rcode)).pack()
