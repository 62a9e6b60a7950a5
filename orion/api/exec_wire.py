"""``orion exec``'s wire: the frames, the HTTP upgrade that starts them, and the splice that relays them.

A session is an HTTP/1.1 request upgraded to a bidirectional byte stream, as
Docker's own attach and exec are (``POST /tasks/<id>/exec`` with ``Connection:
Upgrade`` and ``Upgrade: orion-exec.v1``; ``101 Switching Protocols``, then frames
both ways on the same connection, TLS or not). After the ``101`` each side sends
frames of an 8-byte header and a payload::

    channel (1 byte) | 0 0 0 | payload length (4 bytes, big-endian) | payload

The header is Docker's own stream header (``stdcopy``), so a non-tty exec's output
passes from the engine to the client unchanged; the channel numbers are those of
Kubernetes' ``channel.k8s.io`` for the same things:

===  ========  =================  ==============================================
 0   stdin     client -> server   bytes for the process; an empty payload closes its stdin
 1   stdout    server -> client   the process's output (all of it with a tty)
 2   stderr    server -> client   its error output (none with a tty: a tty merges them)
 3   status    server -> client   last frame: JSON ``{"exitCode": N}``, or ``{"exitCode": null, "error": ...}``
 4   resize    client -> server   JSON ``{"rows": R, "cols": C}``: the terminal's new size
===  ========  =================  ==============================================

Nothing here knows Flask or Docker: :func:`dial` is the client side of the upgrade
(the CLI, and a node forwarding to the task's node), :func:`splice` relays between
two sockets in one thread, with :class:`Decoder` to read frames on the way.
"""

from __future__ import annotations

import errno
import json
import select
import socket
import ssl
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

PROTOCOL = "orion-exec.v1"
STDIN, STDOUT, STDERR, STATUS, RESIZE = 0, 1, 2, 3, 4
HEADER = struct.Struct(">B3xI")
# A frame's payload at most: a terminal's input and a pipe's reads are far smaller; a
# peer announcing more is broken or hostile, and the session ends.
MAX_FRAME = 1 << 20
# Read at most this much at once, and hold at most this much for a side that does not read
# (back-pressure: the other side is not read from until it drains).
CHUNK = 64 * 1024
BUFFERED = 4 * CHUNK
# How often a quiet session looks at ``stop`` (the agent shutting down).
POLL = 0.5


class ProtocolError(Exception):
    """The other side sent something that is not a frame of this protocol."""


def frame(channel: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(channel, len(payload)) + payload


def status_frame(exit_code: int | None, error: str = "") -> bytes:
    body: dict[str, object] = {"exitCode": exit_code}
    if error:
        body["error"] = error
    return frame(STATUS, json.dumps(body).encode())


def resize_frame(rows: int, cols: int) -> bytes:
    return frame(RESIZE, json.dumps({"rows": rows, "cols": cols}).encode())


def parse_resize(payload: bytes) -> tuple[int, int]:
    """``{"rows": R, "cols": C}`` -> (R, C), each 1..65535; ProtocolError otherwise."""
    try:
        data = json.loads(payload)
        rows, cols = int(data["rows"]), int(data["cols"])
    except (ValueError, KeyError, TypeError):
        raise ProtocolError("a resize frame holds {\"rows\": R, \"cols\": C}") from None
    if not (0 < rows < 65536 and 0 < cols < 65536):
        raise ProtocolError(f"a terminal of {rows}x{cols} cannot be")
    return rows, cols


class Decoder:
    """Frames out of a byte stream that arrives in arbitrary pieces."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        self._buf += data
        while len(self._buf) >= HEADER.size:
            channel, size = HEADER.unpack_from(self._buf)
            if channel > RESIZE or size > MAX_FRAME:
                raise ProtocolError(f"not a frame of {PROTOCOL} (channel {channel}, {size} bytes)")
            end = HEADER.size + size
            if len(self._buf) < end:
                return
            payload = bytes(self._buf[HEADER.size:end])
            del self._buf[:end]
            yield channel, payload

    @property
    def pending(self) -> int:
        return len(self._buf)


# -- the upgrade, client side --------------------------------------------------------------


@dataclass(frozen=True)
class Upgraded:
    """The answer to an upgrade: ``status`` 101 with ``sock`` streaming (``early``: frames that
    arrived with the headers), or a refusal with its JSON ``body``."""

    status: int
    headers: Mapping[str, str]
    sock: socket.socket | None = None
    early: bytes = b""
    body: bytes = b""

    def json(self) -> dict[str, object]:
        try:
            data = json.loads(self.body)
        except ValueError:
            data = None
        return data if isinstance(data, dict) else {"error": f"answered {self.status} without a JSON body"}


@dataclass(frozen=True)
class Target:
    """Where to dial: ``url`` (http or https, with the path), the TLS context for https."""

    url: str
    context: ssl.SSLContext | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


def dial(target: Target, body: bytes, timeout: float, answer_timeout: float | None = None) -> Upgraded:
    """POST ``body`` to ``target`` asking to upgrade; OSError/ssl.SSLError when the connection fails.
    ``timeout`` bounds the connection (and the TLS handshake), ``answer_timeout`` (default: the
    same) the wait for the answer, which comes once the server has started the process."""
    parts = urlsplit(target.url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if parts.scheme == "https":
            sock = (target.context or ssl.create_default_context()).wrap_socket(sock, server_hostname=host)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", "Connection: Upgrade", f"Upgrade: {PROTOCOL}",
                 "Content-Type: application/json", f"Content-Length: {len(body)}",
                 *(f"{k}: {v}" for k, v in target.headers.items())]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        sock.settimeout(timeout if answer_timeout is None else answer_timeout)
        status, headers, rest = _read_head(sock)
        if status == 101:
            sock.settimeout(None)
            return Upgraded(status, headers, sock, rest)
        answer = _read_body(sock, headers, rest)
        sock.close()
        return Upgraded(status, headers, body=answer)
    except BaseException:
        sock.close()
        raise


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(CHUNK)
        if not chunk:
            raise ConnectionError("the server closed the connection without an answer")
        buf += chunk
        if len(buf) > 64 * 1024:
            raise ConnectionError("the server's answer has no end of headers")
    head, rest = buf.split(b"\r\n\r\n", 1)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(status_line.split()[1])
    except (IndexError, ValueError):
        raise ConnectionError(f"not an HTTP answer: {status_line[:80]!r}") from None
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().title()] = value.strip()
    return status, headers, rest


def _read_body(sock: socket.socket, headers: Mapping[str, str], rest: bytes) -> bytes:
    """A refusal's body: by Content-Length, chunked, or until the server closes."""
    data = rest
    if "Content-Length" in headers:
        want = int(headers["Content-Length"])
        while len(data) < want and (chunk := sock.recv(CHUNK)):
            data += chunk
        return data[:want]
    while chunk := sock.recv(CHUNK):
        data += chunk
        if headers.get("Transfer-Encoding", "").lower() == "chunked" and data.endswith(b"0\r\n\r\n"):
            break
    if headers.get("Transfer-Encoding", "").lower() == "chunked":
        return _unchunk(data)
    return data


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2:]
    return out


def upgrade_answer(node: str) -> bytes:
    """The ``101`` a server writes on the raw connection before the first frame."""
    return (f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: {PROTOCOL}\r\n"
            f"X-Orion-Node: {node}\r\n\r\n").encode("latin-1")


# -- the splice: two sockets, one thread ------------------------------------------------------


class Way:
    """One direction of a splice: what is read from ``src`` is transformed and written to ``dst``.

    ``feed`` turns bytes read into bytes to write; ``end`` is called once ``src`` is at its
    end and returns the last bytes to write. ``close_dst`` set by ``feed``: once what is
    buffered is written, shut ``dst``'s sending side (the process's stdin closes)."""

    def __init__(self, src: socket.socket, dst: socket.socket, feed: Callable[[bytes], bytes] = bytes,
                 end: Callable[[], bytes] = bytes) -> None:
        self.src, self.dst = src, dst
        self.feed, self.end = feed, end
        self.buf = bytearray()
        self.done = False  # src ended (or failed)
        self.close_dst = False
        self.dst_closed = False


def _recv(sock: socket.socket) -> bytes | None:
    """Bytes read; None when nothing is there yet; b"" at the end (or a broken connection)."""
    try:
        return sock.recv(CHUNK)
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
        return None
    except (ssl.SSLError, ConnectionError, OSError):
        return b""


def _send(sock: socket.socket, data: bytearray) -> int:
    """Bytes written (0: try again later); OSError when the other side is gone."""
    try:
        return sock.send(data[:CHUNK])
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError):
        return 0
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            return 0
        raise


def splice(up: Way, down: Way, stop: Callable[[], bool], poll: float = POLL) -> str:
    """Relay both ways until ``down`` (server to client) has ended and been written out, the
    client (``up.src``) leaves or cannot be written to, or ``stop()`` says so. Returns why:
    ``done``, ``client gone`` or ``stopped``. Both sockets are made
    non-blocking; closing them is the caller's."""
    for sock in {up.src, up.dst}:
        sock.setblocking(False)
    ways = (up, down)
    while True:
        if stop():
            return "stopped"
        readers = [w.src for w in ways if not w.done and len(w.buf) < BUFFERED]
        writers = [w.dst for w in ways if w.buf and not w.dst_closed]
        ready = [s for s in readers if isinstance(s, ssl.SSLSocket) and s.pending()]
        readable, _, _ = select.select(readers, writers, [], 0 if ready else poll)
        readable = {*readable, *ready}
        for way in ways:
            if way.src in readable and not way.done:
                data = _recv(way.src)
                if data == b"":
                    way.done = True
                    if way is up:
                        return "client gone"
                    way.buf += way.end()
                elif data:
                    way.buf += way.feed(data)
        for way in ways:
            if way.buf and not way.dst_closed:
                try:
                    sent = _send(way.dst, way.buf)
                except OSError:
                    if way is down:
                        return "client gone"
                    # The server side stopped taking input (the process ended, or closed its
                    # stdin): what it still has to say comes on the way down.
                    way.buf.clear()
                    way.dst_closed = True
                    continue
                del way.buf[:sent]
            if way.close_dst and not way.buf and not way.dst_closed:
                way.dst_closed = True
                try:
                    way.dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
        if down.done and not down.buf:
            return "done"
