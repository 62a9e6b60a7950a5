"""Orion's DNS server: the ``orion.`` zone over UDP and TCP, everything else forwarded.

One server per host, on the orion bridge's gateway, port 53 (containers reach it
through Docker's embedded resolver, which forwards what it does not know to the
network's ``dns`` servers). Each query is answered from ``view()``, called at query
time: the agent hands in a callable that reads its local Raft replica, so a task
that starts, dies or fails its check changes the answers as soon as the replica has
applied it, and there is no cache to invalidate.

Threads: one I/O thread owns the UDP socket and the TCP listener. A zone question
over UDP is answered inline on that thread (a dict lookup and a pack: faster than a
hand-off), a question to forward goes to a small pool because an upstream may take
``forward_timeout`` to fail, and each TCP client gets a thread that answers its
queries in turn (RFC 7766 pipelining) until it is idle for ``tcp_idle``.
``stop()`` closes everything and joins every thread it started.

Every query ends in one :class:`~orion.network.discovery.Outcome`, handed to
``on_query`` (the agent counts them in ``orion_dns_queries_total{result}``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dnslib import DNSRecord

from orion.network import dns_wire
from orion.network.discovery import Answer, Forward, Outcome, in_zone, resolve
from orion.network.dns_forward import ResolvConf, forward, read_exact
from orion.network.view import DiscoveryView

ViewSource = Callable[[], DiscoveryView]
QueryHook = Callable[[Outcome], None]

log = logging.getLogger(__name__)

# linux/in.h; the socket module has no name for it before Python 3.12.
_IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


@dataclass(frozen=True)
class DnsSettings:
    # An upstream that has not answered in 2 s is down or far: the client's own resolver
    # (glibc: 5 s, 2 attempts) still has time to get our SERVFAIL and try its next server.
    forward_timeout: float = 2.0
    # Forwarded queries in flight at once; more wait in the pool's queue.
    forward_workers: int = 8
    # Forwarded UDP queries waiting or in flight beyond which a new one gets SERVFAIL at
    # once: with every upstream down each costs forward_timeout, and a queue without a
    # bound would only grow (the client's resolver retries anyway).
    max_pending_forwards: int = 256
    # RFC 7766 asks servers to close idle TCP clients; 10 s is BIND's default idle timeout.
    tcp_idle: float = 10.0
    # Beyond this many open TCP clients a new one is closed at once: a thread each.
    max_tcp_clients: int = 64


class DnsServer:
    """The server; ``start()`` binds (port 0 picks one free for UDP and TCP alike)."""

    def __init__(self, address: str, port: int, view: ViewSource, resolv_conf: Path, *,
                 on_query: QueryHook | None = None, rng: random.Random | None = None,
                 settings: DnsSettings | None = None, upstream_port: int = 53) -> None:
        self._requested = (address, port)
        self._view = view
        self._resolv_conf_path = resolv_conf
        self._upstream_port = upstream_port
        self._on_query = on_query
        self._rng = rng or random.Random()
        self._settings = settings or DnsSettings()
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None
        self._selector: selectors.BaseSelector | None = None
        self._wake_r, self._wake_w = -1, -1
        self._io_thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._clients: dict[socket.socket, threading.Thread] = {}
        self._clients_lock = threading.Lock()
        self._stopping = threading.Event()
        self._upstreams: ResolvConf | None = None
        self._pending = 0  # forwarded UDP queries queued or in flight (I/O thread +, worker -)
        self._pending_lock = threading.Lock()

    @property
    def address(self) -> tuple[str, int]:
        """Where the server listens (after ``start``)."""
        if self._udp is None:
            raise RuntimeError("the DNS server is not started")
        host, port = self._udp.getsockname()[:2]
        return host, port

    def start(self) -> tuple[str, int]:
        self._udp, self._tcp = _bind_pair(*self._requested)
        self._upstreams = ResolvConf(self._resolv_conf_path, self.address, self._upstream_port)
        self._pool = ThreadPoolExecutor(self._settings.forward_workers, thread_name_prefix="orion-dns-fwd")
        self._wake_r, self._wake_w = os.pipe()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._udp, selectors.EVENT_READ, self._on_udp)
        self._selector.register(self._tcp, selectors.EVENT_READ, self._on_accept)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._io_thread = threading.Thread(target=self._serve, name="orion-dns", daemon=True)
        self._io_thread.start()
        log.info("DNS listening on %s:%d (udp, tcp)", *self.address)
        return self.address

    def stop(self, timeout: float = 5.0) -> None:
        """Stop answering, close every socket, join every thread (idempotent)."""
        if self._stopping.is_set() or self._io_thread is None:
            return
        self._stopping.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        self._io_thread.join(timeout)
        with self._clients_lock:
            clients = list(self._clients.items())
        for conn, _thread in clients:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for _conn, thread in clients:
            thread.join(timeout)
        assert self._pool is not None and self._selector is not None
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._selector.close()
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    # -- the answer, whatever the transport ------------------------------------------------

    def answer_local(self, data: bytes, *, tcp: bool) -> bytes | Forward | None:
        """The reply to ``data`` if this server can give it without an upstream,
        :class:`Forward` when the question is for the host's resolvers, None when the
        message deserves no reply at all. Counts the outcome."""
        query = dns_wire.parse_query(data)
        if isinstance(query, dns_wire.Malformed):
            self._count(query.outcome)
            return query.reply
        if not in_zone(query.name):
            return Forward(query.name)
        if not dns_wire.is_in_class(query):
            self._count(Outcome.REFUSED)
            return dns_wire.refused(query).pack()
        try:
            resolution = resolve(self._view(), query.name, query.qtype, self._rng)
        except Exception:  # the replica may be unreadable for a moment; a SERVFAIL makes the client retry
            log.exception("DNS view failed for %s %s", query.name, query.qtype)
            self._count(Outcome.SERVFAIL)
            return self._pack(dns_wire.servfail(query), query, tcp)
        assert isinstance(resolution, Answer)  # in_zone said so
        self._count(resolution.outcome)
        return self._pack(dns_wire.encode(query, resolution), query, tcp)

    def answer_forwarded(self, data: bytes, *, tcp: bool) -> bytes | None:
        """Ask the host's resolvers; SERVFAIL when none answers."""
        assert self._upstreams is not None
        reply = forward(data, self._upstreams.upstreams(), tcp=tcp, timeout=self._settings.forward_timeout)
        if reply is not None:
            self._count(Outcome.FORWARDED)
            return reply
        self._count(Outcome.SERVFAIL)
        query = dns_wire.parse_query(data)
        return None if isinstance(query, dns_wire.Malformed) else self._pack(dns_wire.servfail(query), query, tcp)

    def _pack(self, reply: DNSRecord, query: dns_wire.Query, tcp: bool) -> bytes:
        return reply.pack() if tcp else dns_wire.fit_udp(reply, query.udp_limit)

    def _count(self, outcome: Outcome) -> None:
        if self._on_query is None:
            return
        try:
            self._on_query(outcome)
        except Exception:  # a broken metrics hook must not take DNS down
            log.exception("DNS metrics hook failed")

    # -- sockets ---------------------------------------------------------------------------

    def _serve(self) -> None:
        assert self._selector is not None
        while not self._stopping.is_set():
            for key, _events in self._selector.select():
                if key.data is None:
                    return  # woken by stop()
                key.data()

    def _on_udp(self) -> None:
        assert self._udp is not None and self._pool is not None
        try:
            data, client = self._udp.recvfrom(dns_wire.MAX_UDP * 4)
        except OSError:
            return
        reply = self.answer_local(data, tcp=False)
        if isinstance(reply, Forward):
            with self._pending_lock:
                busy = self._pending >= self._settings.max_pending_forwards
                if not busy:
                    self._pending += 1
            if busy:
                reply = self._overloaded(data)
            else:
                self._pool.submit(self._forward_udp, data, client)
                return
        if reply is not None:
            self._send_udp(reply, client)

    def _forward_udp(self, data: bytes, client: tuple[str, int]) -> None:
        try:
            reply = self.answer_forwarded(data, tcp=False)
            if reply is not None:
                self._send_udp(reply, client)
        finally:
            with self._pending_lock:
                self._pending -= 1

    def _overloaded(self, data: bytes) -> bytes | None:
        self._count(Outcome.SERVFAIL)
        query = dns_wire.parse_query(data)
        return None if isinstance(query, dns_wire.Malformed) else dns_wire.fit_udp(dns_wire.servfail(query),
                                                                                   query.udp_limit)

    def _send_udp(self, reply: bytes, client: tuple[str, int]) -> None:
        assert self._udp is not None
        with contextlib.suppress(OSError):  # the client may be gone; UDP does not care
            self._udp.sendto(reply, client)

    def _on_accept(self) -> None:
        assert self._tcp is not None
        try:
            conn, _peer = self._tcp.accept()
        except OSError:
            return
        with self._clients_lock:
            if len(self._clients) >= self._settings.max_tcp_clients:
                conn.close()
                return
            thread = threading.Thread(target=self._serve_tcp, args=(conn,), name="orion-dns-tcp", daemon=True)
            self._clients[conn] = thread
        thread.start()

    def _serve_tcp(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(self._settings.tcp_idle)
            while not self._stopping.is_set():
                head = read_exact(conn, 2)
                if head is None:
                    return
                data = read_exact(conn, struct.unpack("!H", head)[0])
                if data is None:
                    return
                reply = self.answer_local(data, tcp=True)
                if isinstance(reply, Forward):
                    reply = self.answer_forwarded(data, tcp=True)
                if reply is None:
                    return  # nothing sensible to say: RFC 7766 lets the server close
                conn.sendall(struct.pack("!H", len(reply)) + reply)
        except OSError:
            return
        finally:
            with self._clients_lock:
                self._clients.pop(conn, None)
            conn.close()


def _bind_pair(address: str, port: int, attempts: int = 20) -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket on the same address and port (port 0: any port free for both).

    IP_FREEBIND lets the server bind the bridge gateway before the bridge exists (the
    agent starts DNS first, the datapath creates the network later, e.g. after a reboot);
    it answers as soon as the address appears."""
    for _ in range(attempts):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart while old clients sit in TIME_WAIT
        for sock in (udp, tcp):
            sock.setsockopt(socket.IPPROTO_IP, _IP_FREEBIND, 1)
        try:
            udp.bind((address, port))
            tcp.bind((address, udp.getsockname()[1]))
            tcp.listen(128)
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
    raise OSError(f"no port free for both UDP and TCP on {address} after {attempts} attempts")
