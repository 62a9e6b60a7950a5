"""Orion's DNS server: queries per second and latency (issue #19's DNS figures).

    .venv/bin/python bench/dns_query.py [--seconds 5] [--clients 2] [--window 8] [--out FILE]
    .venv/bin/python bench/dns_query.py --target 10.42.1.1:53      # an already running server

Without ``--target`` it starts the server in a child process on a fresh 127/8 address
(port 53 as root, else a free port) with a synthetic view (``--services`` services of 3
replicas, dnsrr, plus as many vip services), so the clients do not share its GIL.
``--target`` measures any server, e.g. from inside a container on the orion network
(copy this file in; it needs only the standard library there with ``--target``).

Latency: one client, one query at a time, ``--latency-queries`` A queries for a
rotating set of names; p50/p99/max in ms. Throughput: ``--clients`` processes, each
keeping ``--window`` UDP queries in flight for ``--seconds``; answered queries / s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import select
import socket
import struct
import sys
import time
from pathlib import Path


def make_query(name: str, qid: int, qtype: int = 1) -> bytes:
    """A standard query, RD set, no EDNS: standard library only (containers have no dnslib)."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def latency(target: tuple[str, int], names: list[str], count: int) -> dict[str, float]:
    times = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(target)
        sock.settimeout(2)
        for i in range(count):
            qid = i & 0xFFFF
            message = make_query(names[i % len(names)], qid)
            started = time.perf_counter()
            sock.send(message)
            while True:
                reply = sock.recv(4096)
                if reply[:2] == message[:2]:
                    break
            times.append(time.perf_counter() - started)
            if reply[3] & 0x0F not in (0, 3):  # NOERROR or NXDOMAIN
                raise SystemExit(f"unexpected rcode {reply[3] & 0x0F} for {names[i % len(names)]}")
    return {"n": count, "p50_ms": round(pct(times, 50) * 1000, 3), "p99_ms": round(pct(times, 99) * 1000, 3),
            "max_ms": round(max(times) * 1000, 3)}


def load_client(target: tuple[str, int], names: list[str], seconds: float, window: int, out: mp.Queue) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(target)
    sock.setblocking(False)
    rng = random.Random(os.getpid())
    inflight: dict[int, float] = {}
    answered = lost = 0
    deadline = time.monotonic() + seconds

    def send() -> None:
        qid = rng.randrange(65536)
        while qid in inflight:
            qid = rng.randrange(65536)
        inflight[qid] = time.monotonic()
        sock.send(make_query(rng.choice(names), qid))

    for _ in range(window):
        send()
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 0.5)
        if not ready:  # lost datagrams: forget them and refill the window
            lost += len(inflight)
            inflight.clear()
            for _ in range(window):
                send()
            continue
        while True:
            try:
                reply = sock.recv(4096)
            except BlockingIOError:
                break
            if inflight.pop(struct.unpack("!H", reply[:2])[0], None) is not None:
                answered += 1
                send()
    out.put((answered, lost))


def throughput(target: tuple[str, int], names: list[str], seconds: float, clients: int, window: int) -> dict:
    queue: mp.Queue = mp.Queue()
    procs = [mp.Process(target=load_client, args=(target, names, seconds, window, queue)) for _ in range(clients)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 30) for _ in procs]
    for p in procs:
        p.join(10)
    answered = sum(a for a, _ in results)
    return {"clients": clients, "window": window, "seconds": seconds, "answered": answered,
            "lost": sum(lost for _, lost in results), "qps": round(answered / seconds)}


def serve(address: str, port: int, services: int, ready: mp.Queue, stop: mp.Event) -> None:
    """The server under test, in its own process (imports Orion only here)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from orion.network.dns_server import DnsServer
    from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort

    nodes = tuple(Node(f"n{i}", True, f"10.42.{i}.1") for i in range(1, 4))
    svcs, eps = [], []
    for s in range(services):
        svcs.append(Service(f"rr{s}", "dnsrr", None, (ServicePort(80),)))
        svcs.append(Service(f"vip{s}", "vip", f"10.43.{s // 250}.{s % 250 + 1}", (ServicePort(80),)))
        for r in range(3):
            eps.append(Endpoint(f"rr{s}-{r}", f"rr{s}", r, f"n{r + 1}", f"10.42.{r + 1}.{(s % 250) + 2}", 80,
                                True, True))
    view = DiscoveryView(tuple(svcs), tuple(eps), nodes, serial=1)
    server = DnsServer(address, port, lambda: view, Path("/nonexistent/resolv.conf"))
    ready.put(server.start())
    stop.wait()
    server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", help="HOST:PORT of a running server (default: start one)")
    parser.add_argument("--services", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--latency-queries", type=int, default=5000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    names = [f"rr{s}.service.orion" for s in range(min(args.services, 50))]
    names += [f"vip{s}.service.orion" for s in range(min(args.services, 50))] + ["missing.service.orion"]
    server = None
    if args.target:
        host, _, port = args.target.rpartition(":")
        target = (host, int(port))
    else:
        ready: mp.Queue = mp.Queue()
        stop = mp.Event()
        address = f"127.{random.randint(100, 199)}.{random.randint(0, 255)}.{random.randint(2, 254)}"
        server = mp.Process(target=serve, args=(address, 53 if os.geteuid() == 0 else 0, args.services, ready, stop))
        server.start()
        target = tuple(ready.get(timeout=30))
    try:
        result = {"target": f"{target[0]}:{target[1]}", "cpus": os.cpu_count(),
                  "latency": latency(target, names, args.latency_queries),
                  "throughput": throughput(target, names, args.seconds, args.clients, args.window)}
    finally:
        if server is not None:
            stop.set()
            server.join(10)
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
