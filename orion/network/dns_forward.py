"""Names outside ``orion.``: asked of the host's own resolvers, so containers whose
only nameserver is Orion's still resolve the outside world.

The upstreams come from a resolv.conf (the host's, ``/etc/resolv.conf`` in
production), re-read when it changes (DHCP rewrites it). A resolver that would send
the query back to this very server is skipped: its own address, or a loopback
address when the server listens on every address, on the same port. Anything else
on loopback stays: ``127.0.0.53`` (systemd-resolved) is the host's real resolver and
the forwarder runs in the host's namespace.

Each forwarded query goes out under a fresh random id from a fresh connected socket
(a random source port), and only a reply with that id and the same question is
accepted: an off-path spoofer must guess both (RFC 5452). Upstreams are tried in
resolv.conf order, each within ``timeout``; when none answers the caller sends
SERVFAIL.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dnslib import DNSError, DNSRecord

# A reply above the classic 512 bytes needs EDNS0 in the query; the forwarder passes the
# client's query through unchanged, so it reads up to the largest UDP datagram.
_UDP_READ = 65535


@dataclass(frozen=True)
class Upstream:
    ip: str
    port: int = 53


def parse_resolv_conf(text: str, listen: tuple[str, int], port: int = 53) -> tuple[Upstream, ...]:
    """IPv4 ``nameserver`` lines of a resolv.conf, minus those that would reach ``listen``."""
    out: list[Upstream] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) < 2 or fields[0] != "nameserver":
            continue
        try:
            address = ipaddress.ip_address(fields[1])
        except ValueError:
            continue  # a typo in resolv.conf must not stop DNS
        if address.version != 4:
            continue  # the overlay and this server are IPv4 only
        upstream = Upstream(str(address), port)
        if not _points_at(upstream, listen) and upstream not in out:
            out.append(upstream)
    return tuple(out)


def _points_at(upstream: Upstream, listen: tuple[str, int]) -> bool:
    ip, listen_port = listen
    if upstream.port != listen_port:
        return False
    if upstream.ip == ip:
        return True
    return ip in ("", "0.0.0.0") and ipaddress.ip_address(upstream.ip).is_loopback


class ResolvConf:
    """The upstreams of a resolv.conf path, re-parsed when its mtime or size changes.
    A missing file means no upstream (every forwarded query is SERVFAIL)."""

    def __init__(self, path: Path, listen: tuple[str, int], port: int = 53) -> None:
        self._path = path
        self._listen = listen
        self._port = port
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._upstreams: tuple[Upstream, ...] = ()

    def upstreams(self) -> tuple[Upstream, ...]:
        try:
            stat = os.stat(self._path)
        except OSError:
            return ()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if stamp != self._stamp:
                try:
                    text = self._path.read_text(errors="replace")
                except OSError:
                    return ()
                self._upstreams = parse_resolv_conf(text, self._listen, self._port)
                self._stamp = stamp
            return self._upstreams


def forward(query: bytes, upstreams: tuple[Upstream, ...], *, tcp: bool, timeout: float) -> bytes | None:
    """The first upstream's reply to ``query`` (raw bytes, the client's id restored), or
    None when none answered within ``timeout`` each. ``tcp`` follows the client's
    transport, so a truncated UDP answer reaches the client, which retries over TCP."""
    if len(query) < 12:
        return None
    client_id = query[:2]
    try:
        question = DNSRecord.parse(query).q
    except (DNSError, struct.error, ValueError, IndexError):
        return None
    for upstream in upstreams:
        qid = secrets.token_bytes(2)
        try:
            raw = (_ask_tcp if tcp else _ask_udp)(qid + query[2:], upstream, timeout)
        except OSError:
            continue
        if raw is None or len(raw) < 12 or raw[:2] != qid:
            continue
        try:
            if DNSRecord.parse(raw).q != question:
                continue
        except (DNSError, struct.error, ValueError, IndexError):
            continue
        return client_id + raw[2:]
    return None


def _ask_udp(message: bytes, upstream: Upstream, timeout: float) -> bytes | None:
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((upstream.ip, upstream.port))  # the kernel drops datagrams from anyone else
        sock.send(message)
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                raw = sock.recv(_UDP_READ)
            except TimeoutError:
                return None
            if raw[:2] == message[:2]:
                return raw
        return None


def _ask_tcp(message: bytes, upstream: Upstream, timeout: float) -> bytes | None:
    with socket.create_connection((upstream.ip, upstream.port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        sock.sendall(struct.pack("!H", len(message)) + message)
        head = read_exact(sock, 2)
        if head is None:
            return None
        return read_exact(sock, struct.unpack("!H", head)[0])


def read_exact(sock: socket.socket, size: int) -> bytes | None:
    """``size`` bytes from a stream, or None if it ends or times out first."""
    data = b""
    while len(data) < size:
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            return None
        if not chunk:
            return None
        data += chunk
    return data
