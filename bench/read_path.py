"""Reads: linearizable (the default, Raft's ReadIndex) against ``?stale``, idle and under writes.

    .venv/bin/python bench/read_path.py [--duration 8] [--clients 16] [--writers 4] [--out FILE]

Three real agents on loopback (tests/integration/harness.py), no Docker engine
behind them (as bench/write_path.py: nothing here starts a container). A few
services are declared first; every read is ``GET /services/<name>`` of one of
them, from ``--clients`` clients spread over the three nodes (client i talks to
node i mod 3, as behind a load balancer), each on one keep-alive connection,
for ``--duration`` seconds after a one-second warm-up. Four runs:

* ``linearizable`` and ``stale`` with nothing else going on;
* the same two while ``--writers`` more clients (spread the same way) write as
  fast as they are answered: ``PUT /services/<name>`` with a new value in an
  in-place field, one committed Raft entry each.

Each run reports reads/s, p50/p99 of a read, errors (non-200 answers), and for
the runs under load the writes/s. ``read_index`` is what ``GET /raft`` counts:
the quorum rounds the leader started and the requests followers sent it, read
before and after each run — reads per round is the batching.

The goal (issue #20): a linearizable read at most 2x a stale one at p50. On a
shared 2-core machine the figures move with what else runs: the load average
before the run is recorded beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster, Node  # noqa: E402

SERVICES = 8
NOWHERE = {"orion-bench": "nowhere"}  # the one replica matches no node: no container is ever made


def spec(value: str) -> bytes:
    return json.dumps({"image": "orion/busybox:latest", "memory": "8M", "count": 1, "nodeSelectors": NOWHERE,
                       "healthCheck": {"exec": ["true", value], "interval": "1m"}}).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


class Conn:
    """One keep-alive HTTP/1.1 connection; raw, so the client costs the agents little CPU."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.latencies: list[float] = []
        self.errors = 0

    async def request(self, method: str, path: str, body: bytes = b"") -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.node.ip, self.node.port)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.node.ip}:{self.node.port}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        started = time.perf_counter()
        self.writer.write((head + "\r\n").encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        elapsed = time.perf_counter() - started
        if status in (200, 201):
            self.latencies.append(elapsed)
        else:
            self.errors += 1
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def reader(conn: Conn, stale: bool, until: float, rng: random.Random) -> None:
    query = "?stale" if stale else ""
    while time.perf_counter() < until:
        await conn.request("GET", f"/services/svc{rng.randrange(SERVICES)}{query}")


async def writer(conn: Conn, until: float, rng: random.Random) -> None:
    for n in itertools.count():
        if time.perf_counter() >= until:
            return
        await conn.request("PUT", f"/services/svc{rng.randrange(SERVICES)}", spec(f"w{id(conn)}-{n}"))


def read_index_counts(nodes: list[Node]) -> dict[str, int]:
    """Rounds the leaders started and requests followers sent, summed over the nodes."""
    counts = [n.get("/raft").json().get("read_index", {}) for n in nodes]
    return {k: sum(c.get(k, 0) for c in counts) for k in ("rounds", "asked_leader")}


async def run(nodes: list[Node], clients: int, writers: int, stale: bool, duration: float,
              warmup: float = 1.0) -> dict[str, object]:
    readers = [Conn(nodes[i % len(nodes)]) for i in range(clients)]
    writing = [Conn(nodes[i % len(nodes)]) for i in range(writers)]
    end = time.perf_counter() + warmup + duration
    rng = random.Random(7)
    tasks = [asyncio.create_task(reader(c, stale, end, random.Random(rng.random()))) for c in readers]
    tasks += [asyncio.create_task(writer(c, end, random.Random(rng.random()))) for c in writing]
    await asyncio.sleep(warmup)
    for c in readers + writing:  # the warm-up does not count
        c.latencies.clear()
        c.errors = 0
    before = read_index_counts(nodes)
    await asyncio.gather(*tasks)
    after = read_index_counts(nodes)
    for c in readers + writing:
        c.close()
    reads = [x for c in readers for x in c.latencies]
    out: dict[str, object] = {
        "reads": len(reads), "reads_per_s": round(len(reads) / duration, 1),
        "p50_ms": round(pct(reads, 50) * 1000, 2), "p99_ms": round(pct(reads, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(reads) * 1000, 2) if reads else None,
        "errors": sum(c.errors for c in readers)}
    if writers:
        writes = [x for c in writing for x in c.latencies]
        out.update(writes_per_s=round(len(writes) / duration, 1), write_p50_ms=round(pct(writes, 50) * 1000, 2),
                   write_errors=sum(c.errors for c in writing))
    if not stale:
        rounds = after["rounds"] - before["rounds"]
        out["read_index"] = {"rounds": rounds, "asked_leader": after["asked_leader"] - before["asked_leader"],
                             "reads_per_round": round(len(reads) / max(1, rounds), 2)}
    return out


async def declare(nodes: list[Node]) -> None:
    conn = Conn(nodes[0])
    for i in range(SERVICES):
        status = await conn.request("PUT", f"/services/svc{i}", spec("v0"))
        assert status in (200, 201), f"could not declare svc{i}: HTTP {status}"
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--duration", type=float, default=8.0)
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the agents (repeatable), "
                        "e.g. ORION_DURABILITY=none to see what the journal's fsync costs the reads")
    parser.add_argument("--out", default="", help="write the figures as JSON here")
    args = parser.parse_args()
    results: dict[str, object] = {"clients": args.clients, "writers": args.writers, "duration_s": args.duration,
                                  "cpus": os.cpu_count(), "load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"ORION_ENGINE_DOWN_GRACE": "86400", "ORION_LOG_LEVEL": "warning"}
        env.update(kv.split("=", 1) for kv in args.env)
        results["env"] = args.env
        cluster = Cluster(root=Path(tmp), docker_host=f"unix://{tmp}/no-engine.sock", extra_env=env)
        try:
            cluster.start()
            cluster.wait(cluster.leader, 20, "a leader")
            asyncio.run(declare(cluster.nodes))
            for name, writers, stale in (("stale", 0, True), ("linearizable", 0, False),
                                         ("stale_under_writes", args.writers, True),
                                         ("linearizable_under_writes", args.writers, False)):
                results[name] = asyncio.run(run(cluster.nodes, args.clients, writers, stale, args.duration))
                print(name, json.dumps(results[name]), flush=True)
        finally:
            cluster.stop()
    for suffix in ("", "_under_writes"):
        lin, stale = results[f"linearizable{suffix}"], results[f"stale{suffix}"]
        assert isinstance(lin, dict) and isinstance(stale, dict)
        results[f"p50_ratio{suffix}"] = round(lin["p50_ms"] / stale["p50_ms"], 2)
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    os._exit(0)


if __name__ == "__main__":
    main()
