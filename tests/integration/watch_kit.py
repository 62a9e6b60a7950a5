"""Many blocking-query watchers held by one client thread: a selector over raw sockets.

A thousand watchers as a thousand threads would measure the client, not the
node (and so would asyncio's streams: ~0.5 ms of Python per answer, measured,
which put the last of 1,000 answers a second behind the node's last write).
Here one thread holds them all over non-blocking sockets with one ``epoll``:
each is a keep-alive connection that asks ``GET <path>?index=<last>&wait=<wait>``
again as soon as it is answered (what ``orion top`` and ``--watch`` do), and
records when its answer's first bytes arrived (the time ``epoll`` returned) and
the index it carried. Between writes the thread only sleeps in ``epoll``.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Answer:
    at: float  # time.perf_counter() when the answer's first bytes were readable
    status: int
    index: int


@dataclass
class Watcher:
    sock: socket.socket | None = None
    index: int = 0  # the index its request waits beyond
    buf: bytearray = field(default_factory=bytearray)
    first_byte: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    error: str | None = None


class Watchers:
    """``n`` watchers of ``path`` on ``host:port``, started from ``index``, each holding ``wait``."""

    def __init__(self, host: str, port: int, path: str, n: int, wait: str = "60s",
                 headers: dict[str, str] | None = None) -> None:
        self.host, self.port, self.path, self.wait = host, port, path, wait
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.watchers = [Watcher() for _ in range(n)]
        self.sent = 0  # requests written (the first of each watcher and every re-ask)
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchers", daemon=True)
        # expect(index)/wait_for: how many watchers have an answer at or beyond it, counted by the
        # loop, so the waiting thread sleeps instead of scanning every watcher's answers.
        self._target: int | None = None
        self._reached = 0
        self._all_reached = threading.Event()

    def start(self, index: int) -> None:
        """Connect every watcher and send its first request, then serve them in a thread."""
        for w in self.watchers:
            w.index = index
            w.sock = socket.create_connection((self.host, self.port), timeout=10)
            w.sock.setblocking(False)
            self._ask(w)
            self._selector.register(w.sock, selectors.EVENT_READ, w)
        self._thread.start()

    def _ask(self, w: Watcher) -> None:
        assert w.sock is not None
        try:
            w.sock.send(f"GET {self.path}?index={w.index}&wait={self.wait} HTTP/1.1\r\nHost: {self.host}\r\n"
                        f"{self.headers}\r\n".encode())  # ~150 bytes into an empty socket buffer: never short
        except OSError as exc:  # the node closed the connection meanwhile
            w.error = f"{type(exc).__name__}: {exc}"
            return
        self.sent += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            events = self._selector.select(0.2)
            now = time.perf_counter()
            for key, _ in events:
                self._readable(key.data, now)

    def _readable(self, w: Watcher, now: float) -> None:
        assert w.sock is not None
        try:
            data = w.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as exc:
            data, w.error = b"", f"{type(exc).__name__}: {exc}"
        if not data:  # the node closed (it stops): close too, as an HTTP client does
            w.error = w.error or "closed by the node"
            self._selector.unregister(w.sock)
            w.sock.close()
            return
        if not w.buf:
            w.first_byte = now
        w.buf += data
        end = w.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        lines = w.buf[:end].decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if len(w.buf) < end + 4 + int(fields.get("content-length", "0")):
            return
        status, got = int(lines[0].split()[1]), int(fields.get("x-orion-index", w.index))
        w.buf.clear()
        w.answers.append(Answer(w.first_byte, status, got))
        target = self._target
        if target is not None and w.index < target <= got:
            self._reached += 1
            if self._reached == len(self.watchers):
                self._all_reached.set()
        if status != 200:
            w.error = f"status {status}"
            self._selector.unregister(w.sock)
            return
        w.index = max(w.index, got)
        self._ask(w)

    def expect(self, index: int) -> None:
        """Count, from now, the watchers that get an answer at or beyond ``index`` (``wait_for``).
        Call it before the write that makes ``index``: every watcher still holds a lower one."""
        self._all_reached.clear()
        self._reached = 0
        self._target = index

    def wait_for(self, timeout: float) -> bool:
        """True once every watcher has an answer at or beyond the index given to ``expect``."""
        return self._all_reached.wait(timeout)

    def answered(self) -> int:
        return sum(len(w.answers) for w in self.watchers)

    def errors(self) -> list[str]:
        return [w.error for w in self.watchers if w.error]

    def first_answers_at_or_beyond(self, index: int) -> list[float]:
        """For each watcher, when it first had an answer with an index >= ``index`` (missing: none yet)."""
        out = []
        for w in self.watchers:
            at = next((a.at for a in list(w.answers) if a.index >= index), None)
            if at is not None:
                out.append(at)
        return out

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        for w in self.watchers:
            if w.sock is not None:
                w.sock.close()  # closing twice is harmless
        self._selector.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
