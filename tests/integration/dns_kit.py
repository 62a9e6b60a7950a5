"""Helpers for DNS tests on real loopback sockets: a fresh 127/8 address per server
(so parallel runs and other suites never collide on port 53), a fake upstream
resolver built with dnslib, and a view a test can change between queries."""

from __future__ import annotations

import os
import random
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

from dnslib import QTYPE, RCODE, RR, DNSRecord
from dnslib import A as RDATA_A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from orion.network.discovery import Outcome
from orion.network.view import DiscoveryView


def loopback_address(rng: random.Random | None = None) -> str:
    """An unused-looking 127.x.y.z (x in 100..199: far from 127.0.0.x conventions)."""
    rng = rng or random.Random()
    for _ in range(50):
        address = f"127.{rng.randint(100, 199)}.{rng.randint(0, 255)}.{rng.randint(2, 254)}"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((address, 53 if os.geteuid() == 0 else 0))
            except OSError:
                continue
        return address
    raise RuntimeError("no free loopback address for a DNS test")


class FakeUpstream(BaseResolver):
    """An upstream resolver: every name under ``example.test.`` answers ``address``
    (TEST-NET-1: documentation space, never contacted), ``many.example.test.`` answers 100
    A records (a reply that does not fit 512 bytes), everything else is NXDOMAIN."""

    def __init__(self, address: str = "192.0.2.10") -> None:
        self.address = address
        self.asked: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def resolve(self, request, handler):
        name = str(request.q.qname).lower()
        with self._lock:
            self.asked.append((name, handler.protocol))
        reply = request.reply()
        if name == "many.example.test.":
            for i in range(100):
                reply.add_answer(RR(name, QTYPE.A, rdata=RDATA_A(f"192.0.2.{i + 1}"), ttl=30))
        elif name.endswith("example.test."):
            reply.add_answer(RR(name, QTYPE.A, rdata=RDATA_A(self.address), ttl=30))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        if handler.protocol == "udp" and len(reply.pack()) > 512:
            reply = DNSRecord(reply.header, q=reply.q)
            reply.header.tc = 1
        return reply


@dataclass
class UpstreamServer:
    address: str
    resolver: FakeUpstream
    servers: list[DNSServer] = field(default_factory=list)

    def start(self) -> UpstreamServer:
        quiet = DNSLogger(log="-request,-reply,-truncated,-error", prefix=False)
        for tcp in (False, True):
            server = DNSServer(self.resolver, address=self.address, port=53, tcp=tcp, logger=quiet)
            server.start_thread()
            self.servers.append(server)
        return self

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
            server.server.server_close()


class MutableView:
    """The view source a server calls at query time; tests swap the view between queries."""

    def __init__(self, view: DiscoveryView) -> None:
        self.view = view
        self.fail = False

    def __call__(self) -> DiscoveryView:
        if self.fail:
            raise RuntimeError("replica unreadable (test)")
        return self.view


class Outcomes:
    """The metrics hook: counts outcomes as the agent's Prometheus counter would."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, outcome: Outcome) -> None:
        with self._lock:
            self.counts[str(outcome)] += 1
