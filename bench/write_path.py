"""POST /tasks answered with its placement: latency for one client, throughput for many.

    .venv/bin/python bench/write_path.py [--duration 10] [--clients 16] [--src DIR] [--profile NAME]

Three real agents on loopback (tests/integration/harness.py). Every request is a
``POST /tasks`` whose 201 must carry a ``nodeId`` (placed within the answer, as a
user sees it); one that comes back pending counts as ``unplaced``. Measured:

* one client, sequential, against the leader and against a follower: p50/p99;
* ``--clients`` clients at once, spread over the three nodes (a load balancer in
  front of the cluster), for ``--duration`` seconds: acknowledged creates/s, p50/p99.

Tasks ask for 6 MiB (Docker's minimum), so the three nodes hold ~11,000 on
this machine: five seconds at 2,000/s fit. The agents' engine refuses
connections (a socket that does not exist) and their engine grace is a day:
tasks are placed but no container starts, so the figure is Orion's write path
(HTTP, Raft, placement, reconcile bookkeeping), not how fast one Docker engine
starts thousands of containers. ``--src DIR`` runs the
agents from another checkout (``PYTHONPATH``), for a before/after in one run.
``--profile NAME`` records py-spy profiles of the leader's and a follower's worker
during the many-client run into ``bench/results/NAME-{leader,follower}.{svg,txt}``.

The clients are raw HTTP/1.1 on keep-alive connections in one asyncio loop: a
request costs the client a few tens of microseconds, so on two cores the
agents, not the load generator, get the CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster, Node  # noqa: E402

BODY = json.dumps({"image": "orion/busybox:latest", "memory": 6 << 20, "command": ["sleep", "3600"]}).encode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(latencies: list[float], seconds: float | None = None, unplaced: int = 0,
            errors: int = 0) -> dict[str, float]:
    out = {"n": len(latencies), "p50_ms": round(pct(latencies, 50) * 1000, 2),
           "p99_ms": round(pct(latencies, 99) * 1000, 2), "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
           "unplaced": unplaced, "errors": errors}
    if seconds:
        out["creates_per_s"] = round(len(latencies) / seconds, 1)
    return out


class Client:
    """One keep-alive connection posting tasks one after another."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.latencies: list[float] = []
        self.acked = 0  # warm-up included
        self.unplaced = 0
        self.errors = 0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.node.ip, self.node.port)

    async def post(self) -> None:
        assert self.reader is not None and self.writer is not None
        head = (f"POST /tasks HTTP/1.1\r\nHost: {self.node.ip}:{self.node.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n").encode()
        started = time.perf_counter()
        self.writer.write(head + BODY)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length)
        elapsed = time.perf_counter() - started
        if b" 201 " not in status_line:
            self.errors += 1
            return
        if json.loads(body).get("nodeId") is None:
            self.unplaced += 1
        self.latencies.append(elapsed)
        self.acked += 1

    async def run_for(self, count: int | None, until: float | None) -> None:
        await self.connect()
        done = 0
        while (count is None or done < count) and (until is None or time.perf_counter() < until):
            await self.post()
            done += 1
        assert self.writer is not None
        self.writer.close()


async def sequential(node: Node, count: int) -> dict[str, float]:
    client = Client(node)
    await client.run_for(count, None)
    return summary(client.latencies, unplaced=client.unplaced, errors=client.errors)


async def concurrent(nodes: list[Node], clients: int, duration: float, after_warmup: Callable[[], None],
                     warmup: float = 1.0) -> dict[str, float]:
    pool = [Client(nodes[i % len(nodes)]) for i in range(clients)]
    end = time.perf_counter() + warmup + duration
    runs = [asyncio.create_task(c.run_for(None, end)) for c in pool]
    await asyncio.sleep(warmup)
    for c in pool:  # what finished during the warm-up does not count
        c.latencies.clear()
        c.unplaced = c.errors = 0
    after_warmup()
    await asyncio.gather(*runs)
    latencies = [x for c in pool for x in c.latencies]
    out = summary(latencies, duration, sum(c.unplaced for c in pool), sum(c.errors for c in pool))
    out["acked_with_warmup"] = sum(c.acked for c in pool)
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pid(node: Node) -> int:
    """The gunicorn worker (the child that holds the replica and serves requests)."""
    assert node.proc is not None
    children = Path(f"/proc/{node.proc.pid}/task/{node.proc.pid}/children").read_text().split()
    return int(children[0])


def profile(name: str, nodes: dict[str, Node], duration: float) -> list[subprocess.Popen]:
    """py-spy on each node's worker while the many-client run lasts: a flame graph
    (``NAME-ROLE.svg``) and the same samples as collapsed stacks (``NAME-ROLE.txt``, for
    bench/profile_top.py). ``--gil``: only the thread holding the GIL is sampled, so the
    figures are where the CPU of this one-worker process goes."""
    if not name:
        return []
    spy, results = str(Path(sys.executable).parent / "py-spy"), Path(__file__).resolve().parent / "results"
    procs = []
    for role, node in nodes.items():
        for fmt, ext in (("flamegraph", "svg"), ("raw", "txt")):
            procs.append(subprocess.Popen(
                [spy, "record", "--format", fmt, "-o", str(results / f"{name}-{role}.{ext}"), "--gil",
                 "--rate", "200", "--pid", str(worker_pid(node)), "--duration", str(int(duration)),
                 "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=300, help="sequential requests per single-client run")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--src", default="", help="run the agents from this checkout (PYTHONPATH)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the agents (repeatable)")
    parser.add_argument("--profile", default="", help="py-spy flame graph of the leader: bench/results/NAME.svg")
    parser.add_argument("--out", default="", help="write the figures as JSON here")
    args = parser.parse_args()
    results: dict[str, object] = {"src": args.src or "this checkout", "clients": args.clients}
    with tempfile.TemporaryDirectory() as tmp:
        env = {"ORION_ENGINE_DOWN_GRACE": "86400", "ORION_LOG_LEVEL": "warning"}
        if args.src:
            env["PYTHONPATH"] = str(Path(args.src).resolve())
        env.update(kv.split("=", 1) for kv in args.env)
        cluster = Cluster(root=Path(tmp), docker_host=f"unix://{tmp}/no-engine.sock", extra_env=env)
        try:
            cluster.start()
            leader = cluster.wait(cluster.leader, 20, "a leader")
            follower = next(n for n in cluster.nodes if n is not leader)
            asyncio.run(sequential(leader, 50))  # warm-up: connections, code paths
            results["one_client_leader"] = asyncio.run(sequential(leader, args.trials))
            results["one_client_follower"] = asyncio.run(sequential(follower, args.trials))
            spies = profile(args.profile, {"leader": leader, "follower": follower}, args.duration)
            fsyncs_before = {n.id: n.get("/raft").json().get("fsyncs") or 0 for n in cluster.nodes}
            pids = {n.id: worker_pid(n) for n in cluster.nodes}
            before: dict[str, float] = {}

            def mark() -> None:
                before.update({k: cpu_seconds(p) for k, p in pids.items()}, client=time.process_time())

            results["many_clients"] = many = asyncio.run(
                concurrent(cluster.nodes, args.clients, args.duration, mark))
            used = {k: cpu_seconds(p) - before[k] for k, p in pids.items()}
            used["client"] = time.process_time() - before["client"]
            # Two cores: CPU per acknowledged create says where the ceiling is and who spends it.
            results["cpu_ms_per_create"] = {k: round(1000 * v / max(1, many["n"]), 3) for k, v in used.items()}
            for spy in spies:
                spy.wait(timeout=120)
            # Writes this node sent to Raft, and in how many entries (batched writes, GET /raft);
            # its journal syncs (durability fsync) and engine restarts after a truncation.
            raft = {n.id: n.get("/raft").json() for n in cluster.nodes}
            batched = {k: r.get("batched_writes", {"entries": 0, "commands": 0}) for k, r in raft.items()}
            results["commands_per_entry"] = {k: round(g["commands"] / max(1, g["entries"]), 2)
                                             for k, g in batched.items()}
            # Journal syncs per acknowledged create, each node (durability = "fsync"; 0 with "none").
            results["fsyncs_per_create"] = {k: round(((r.get("fsyncs") or 0) - fsyncs_before[k])
                                                     / max(1, many["acked_with_warmup"]), 3) for k, r in raft.items()}
            results["durability"] = next(iter(raft.values())).get("durability")
            results["resyncs"] = {k: r.get("resyncs") for k, r in raft.items()}
            counts = [len(n.get("/tasks", timeout=30).json()) for n in cluster.nodes]
            results["tasks_on_each_replica"] = counts
        finally:
            cluster.stop()
    print(json.dumps(results, indent=2))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    os._exit(0)


if __name__ == "__main__":
    main()
