"""The thin I/O shell around the gossip core: UDP + TCP sockets and real time.

One thread runs a selector loop: it sleeps until the core's next deadline or a
packet, feeds packets to ``Swim.handle`` and deadlines to ``Swim.tick``, and
sends what comes back. UDP carries the protocol; TCP carries push-pull and any
message too big for one datagram, as one length-prefixed frame per connection
(so no stream state to get wrong). Outgoing TCP connects run on a small pool so
a dead peer's connect timeout never stalls probing.

Every packet that fails to decode -- malformed, oversized, wrong version, or
not sealed with our key -- is dropped and counted in :attr:`GossipNode.counters`;
nothing a peer sends can raise out of the loop.

CLI (used by the multi-process tests)::

    python -m orion.gossip.transport --name n1 --bind 127.0.0.1:7946 --join 127.0.0.1:7947
"""

from __future__ import annotations

import argparse
import json
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from orion.gossip import codec
from orion.gossip.config import GossipConfig
from orion.gossip.member import ALIVE, Addr, Member, MemberEvent, MemberState
from orion.gossip.messages import TCP, Out
from orion.gossip.swim import Swim

Listener = Callable[[MemberEvent], None]
_LEN = struct.Struct(">I")


class GossipNode:
    """A gossip member on real sockets. Listeners run on the gossip thread (or the
    thread calling join/leave) and must return quickly."""

    def __init__(
        self, config: GossipConfig, name: str, bind_addr: Addr, meta: dict[str, Any] | None = None,
        key: codec.Keyring | bytes | None = None, incarnation: int | None = None, seed: int | None = None,
    ) -> None:
        self.config = config
        self.name = name
        self.bind_addr = bind_addr
        self.meta = dict(meta or {})
        self.keyring = codec.Keyring((key,)) if isinstance(key, bytes) else key
        # Milliseconds since the epoch: a restarted process outbids its previous
        # life's tombstone at once, without waiting to learn and refute it.
        self.incarnation = int(time.time() * 1000) if incarnation is None else incarnation
        self.rng = random.Random(seed)
        self.counters: dict[str, int] = defaultdict(int)
        self.core: Swim | None = None
        self.addr: Addr = bind_addr
        self._lock = threading.RLock()
        self._listeners: list[Listener] = []
        self._running = False
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix=f"gossip-tcp-{name}")
        self._sel = selectors.DefaultSelector()
        self._conns: dict[socket.socket, tuple[bytearray, float, Addr]] = {}

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._udp, self._tcp = self._bind()
        for s in (self._udp, self._tcp):
            s.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._udp, selectors.EVENT_READ, "udp")
        self._sel.register(self._tcp, selectors.EVENT_READ, "accept")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.core = Swim(self.config, Member(self.name, self.addr, self.meta, self.incarnation), self.rng)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name=f"gossip-{self.name}", daemon=True)
        self._thread.start()

    def _bind(self) -> tuple[socket.socket, socket.socket]:
        """UDP and TCP on the same port (peers know one address); with port 0,
        retry until the kernel's UDP pick is also free for TCP."""
        for attempt in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                udp.bind(self.bind_addr)
                self.addr = udp.getsockname()[:2]
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind(self.addr)
                tcp.listen(64)
                return udp, tcp
            except OSError:
                udp.close()
                tcp.close()
                if self.bind_addr[1] != 0 or attempt == 19:
                    raise
        raise AssertionError("unreachable")

    def stop(self) -> None:
        self._running = False
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        for s in [self._udp, self._tcp, self._wake_r, self._wake_w, *self._conns]:
            s.close()
        self._conns.clear()

    def join(self, seeds: list[Addr], timeout: float = 5.0) -> int:
        """Push-pull with the seeds; waits until some member answered. Returns how many are known."""
        self._call(lambda core: core.join(time.monotonic(), [tuple(s) for s in seeds]))  # type: ignore[misc]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.num_alive() <= 1:
            time.sleep(0.02)
        return self.num_alive() - 1

    def leave(self, linger: float = 0.5) -> None:
        """Announce a graceful leave and keep gossiping it for ``linger`` seconds."""
        self._call(lambda core: core.leave(time.monotonic()))
        time.sleep(linger)

    def update_meta(self, meta: dict[str, Any]) -> None:
        with self._lock:
            assert self.core is not None
            self.core.update_meta(meta)
        self._wake()

    def add_listener(self, cb: Listener) -> None:
        self._listeners.append(cb)

    def members(self) -> list[MemberState]:
        with self._lock:
            return self.core.members() if self.core else []

    def num_alive(self) -> int:
        return sum(1 for m in self.members() if m.state == ALIVE)

    @property
    def health_score(self) -> int:
        return self.core.health_score if self.core else 0

    # ------------------------------------------------------------------ loop

    def _call(self, fn: Callable[[Swim], list[Out]]) -> None:
        with self._lock:
            assert self.core is not None
            outs = fn(self.core)
            events = self.core.events()
        for out in outs:
            self._send(out)
        for ev in events:
            for cb in self._listeners:
                try:
                    cb(ev)
                except Exception:
                    self.counters["listener_errors"] += 1

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _loop(self) -> None:
        while self._running:
            with self._lock:
                assert self.core is not None
                wait = self.core.next_deadline() - time.monotonic()
            for key, _ in self._sel.select(timeout=min(max(wait, 0.0), 0.5)):
                try:
                    self._on_ready(key)
                except OSError:
                    self.counters["socket_errors"] += 1
            self._expire_conns()
            if self._running:
                self._call(lambda core: core.tick(time.monotonic()))

    def _on_ready(self, key: selectors.SelectorKey) -> None:
        if key.data == "udp":
            for _ in range(64):  # bounded, so a flood cannot starve the timers
                try:
                    data, src = self._udp.recvfrom(65536)
                except BlockingIOError:
                    return
                self.handle_packet(data, src[:2], max_size=self.config.udp_buffer_size)
        elif key.data == "accept":
            conn, src = self._tcp.accept()
            conn.setblocking(False)
            self._conns[conn] = (bytearray(), time.monotonic(), src[:2])
            self._sel.register(conn, selectors.EVENT_READ, "conn")
        elif key.data == "wake":
            self._wake_r.recv(4096)
        else:
            self._on_conn(key.fileobj)  # type: ignore[arg-type]

    def _on_conn(self, conn: socket.socket) -> None:
        buf, _, src = self._conns[conn]
        chunk = conn.recv(65536)
        buf.extend(chunk)
        if len(buf) >= _LEN.size:
            (size,) = _LEN.unpack_from(buf)
            if size > self.config.tcp_max_frame:
                self.counters["dropped_oversized"] += 1
                return self._close(conn)
            if len(buf) >= _LEN.size + size:
                self._close(conn)
                self.handle_packet(bytes(buf[_LEN.size : _LEN.size + size]), src, via=TCP)
                return
        if not chunk:
            self.counters["dropped_malformed"] += 1  # connection closed mid-frame
            self._close(conn)

    def _close(self, conn: socket.socket) -> None:
        self._sel.unregister(conn)
        self._conns.pop(conn, None)
        conn.close()

    def _expire_conns(self) -> None:
        horizon = time.monotonic() - self.config.tcp_timeout
        for conn, (_, started, _) in list(self._conns.items()):
            if started < horizon:
                self.counters["tcp_timeouts"] += 1
                self._close(conn)

    def handle_packet(self, data: bytes, src: Addr, via: str = "udp", max_size: int | None = None) -> None:
        """Decode and hand one packet to the core. Never raises for any ``data``."""
        self.counters["bytes_received"] += len(data)
        try:
            msg = codec.decode(data, self.keyring, max_size=max_size)
        except codec.Unauthenticated:
            self.counters["dropped_unauthenticated"] += 1
            return
        except codec.DecodeError as e:
            self.counters["dropped_oversized" if "oversized" in str(e) else "dropped_malformed"] += 1
            return
        self.counters["messages_received"] += 1
        self.counters[f"{via}_received"] += 1
        self._call(lambda core: core.handle(time.monotonic(), src, msg))

    # ------------------------------------------------------------------ send

    def _send(self, out: Out) -> None:
        data = codec.encode(out.msg, self.keyring)
        self.counters["messages_sent"] += 1
        self.counters["bytes_sent"] += len(data)
        if out.via == TCP or len(data) > self.config.udp_buffer_size:
            self.counters["tcp_sent"] += 1
            self._pool.submit(self._tcp_send, tuple(out.dest), data)  # type: ignore[arg-type]
            return
        self.counters["udp_sent"] += 1
        try:
            self._udp.sendto(data, tuple(out.dest))
        except OSError:
            self.counters["send_errors"] += 1

    def _tcp_send(self, dest: Addr, data: bytes) -> None:
        try:
            with socket.create_connection(dest, timeout=self.config.tcp_timeout) as s:
                s.sendall(_LEN.pack(len(data)) + data)
        except OSError:
            self.counters["send_errors"] += 1


def parse_addr(text: str) -> Addr:
    """``HOST:PORT`` -> (host, port); a bare ``:PORT`` means loopback. ValueError if no port."""
    host, _, port = text.rpartition(":")
    return (host or "127.0.0.1", int(port))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run one gossip member; prints member events as JSON lines.")
    p.add_argument("--name", required=True)
    p.add_argument("--bind", required=True, type=parse_addr)
    p.add_argument("--join", action="append", default=[], type=parse_addr)
    p.add_argument("--key-file")
    p.add_argument("--scale", type=float, default=1.0, help="multiply all protocol times (tests use 0.1)")
    p.add_argument("--meta", default="{}", help="JSON metadata")
    args = p.parse_args(argv)
    cfg = GossipConfig.fast(args.scale) if args.scale != 1.0 else GossipConfig()
    key = codec.Keyring.from_file(args.key_file) if args.key_file else None
    node = GossipNode(cfg, args.name, args.bind, json.loads(args.meta), key=key)
    out_lock = threading.Lock()

    def emit(obj: dict[str, Any]) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    node.add_listener(lambda ev: emit({"t": time.time(), "node": args.name, **ev.to_dict()}))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    node.start()
    emit({"t": time.time(), "node": args.name, "event": "started", "addr": f"{node.addr[0]}:{node.addr[1]}"})
    while args.join and not stop.is_set() and node.join(args.join, timeout=1.0) == 0:
        pass  # seeds may still be starting: keep trying
    stop.wait()
    node.leave(linger=cfg.gossip_interval * 3)
    emit({"t": time.time(), "node": args.name, "event": "stopped", "counters": dict(node.counters)})
    node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
