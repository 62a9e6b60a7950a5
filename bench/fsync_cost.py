"""What durable acknowledgements cost: POST /tasks with durability fsync vs none.

    flock -w 1200 /tmp/orion-it.lock .venv/bin/python bench/fsync_cost.py [--seconds 15] \\
        [--out bench/results/fsync_cost.json]

A fresh 3-agent loopback cluster per mode (harness.Cluster, ORION_DURABILITY),
real HTTP, real Docker for node capacity. Per mode:

* ``placed_1_client``: POST /tasks with a placeable task, answered once the
  leader placed it (201 with nodeId), then DELETE — one client, p50/p99;
* ``decided_1_client`` / ``decided_16_clients``: POST /tasks whose node
  selector no node has, so the leader's answer is a committed no-fit decision
  instead of a placement: the same two Raft commits per create (CreateTask,
  then the scheduler's command) without starting thousands of containers on a
  shared 2-core machine. One client, then 16 clients (spread over the three
  agents) for ``--seconds``: acknowledged creates/s, p50/p99;
* ``fsyncs_per_ack``: journal fsyncs (``GET /raft`` ``fsyncs``) during the
  16-client run divided by the creates acknowledged in it, per node (leader
  first) and for the cluster; ``entries_per_ack``: log entries per create.

And ``raft_only``: three RaftStores in this process (real pysyncobj over TCP, no
HTTP), 1, 16 and 64 threads submitting CreateTask for ``--seconds`` / 3 each:
commits/s, p50/p99 and the leader's fsyncs per commit — how far one sync
stretches when writes arrive faster than the HTTP path can bring them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster, Node, free_ports  # noqa: E402

from orion.domain.model import TaskSpec  # noqa: E402
from orion.raft.store import RaftSettings, RaftStore  # noqa: E402
from orion.state.commands import CreateTask  # noqa: E402
from orion.state.entries import ReplicatedMachine  # noqa: E402

IMAGE = os.environ.get("ORION_TEST_IMAGE", "orion/busybox:latest")
RAFT_THREADS = (1, 16, 64)
UNPLACEABLE = {"image": IMAGE, "memory": 8 << 20, "nodeSelectors": {"bench": "nowhere"}}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(pct(values, 50) * 1000, 2), "p99_ms": round(pct(values, 99) * 1000, 2),
            "mean_ms": round(statistics.fmean(values) * 1000, 2)}


def post(session: requests.Session, node: Node, body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    resp = session.post(node.url + "/tasks", json=body, timeout=30)
    elapsed = time.perf_counter() - started
    assert resp.status_code == 201, resp.text
    return elapsed, resp.json()


def placed_one_client(node: Node, trials: int) -> list[float]:
    session, times = requests.Session(), []
    for _ in range(trials):
        elapsed, body = post(session, node, {"image": IMAGE, "memory": 8 << 20, "command": ["sleep", "30"]})
        assert body["nodeId"], body
        times.append(elapsed)
        session.delete(node.url + f"/tasks/{body['id']}", timeout=30)
    return times


def decided_one_client(node: Node, trials: int) -> list[float]:
    session, times = requests.Session(), []
    for _ in range(trials):
        elapsed, body = post(session, node, UNPLACEABLE)
        assert body.get("reason"), body  # the leader's no-fit decision is in the answer
        times.append(elapsed)
    return times


def decided_clients(nodes: list[Node], clients: int, seconds: float) -> tuple[list[float], float]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds

    def client(i: int) -> None:
        session, node = requests.Session(), nodes[i % len(nodes)]
        while time.monotonic() < stop:
            latencies[i].append(post(session, node, UNPLACEABLE)[0])

    started = time.perf_counter()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for per in latencies for x in per], time.perf_counter() - started


def disk_probe(directory: str, n: int = 200) -> dict[str, float]:
    """fdatasync latency of the data directory's disk now (a record appended, then synced):
    what one sync costs on this machine while the figures are taken."""
    fd = os.open(os.path.join(directory, "probe"), os.O_RDWR | os.O_CREAT, 0o600)
    times = []
    try:
        for i in range(n):
            os.pwrite(fd, b"x" * 300, i * 300)
            started = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - started)
    finally:
        os.close(fd)
    return {k: v for k, v in summary(times).items() if k != "n"}


def raft_view(nodes: list[Node]) -> dict[str, dict]:
    return {n.id: n.get("/raft").json() for n in nodes}


def run_mode(durability: str, docker_host: str, seconds: float, trials: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(root=Path(tmp), docker_host=docker_host, extra_env={"ORION_DURABILITY": durability})
        try:
            cluster.start()
            leader = cluster.wait(cluster.leader, 20, "leader")
            follower = next(n for n in cluster.nodes if n is not leader)
            assert follower.get("/raft").json()["durability"] == durability
            decided_one_client(follower, 20)  # warm-up
            result: dict[str, object] = {"durability": durability, "fdatasync_ms": disk_probe(tmp)}
            result["placed_1_client"] = summary(placed_one_client(follower, trials // 4))
            result["decided_1_client"] = summary(decided_one_client(follower, trials))
            before = raft_view(cluster.nodes)
            times, elapsed = decided_clients(cluster.nodes, 16, seconds)
            after = raft_view(cluster.nodes)
            acks = len(times)
            result["decided_16_clients"] = {**summary(times), "creates_per_s": round(acks / elapsed, 1)}
            order = [leader] + [n for n in cluster.nodes if n is not leader]
            per_node = {("leader " if n is leader else "follower ") + n.id:
                        round((after[n.id]["fsyncs"] - before[n.id]["fsyncs"]) / acks, 4) for n in order}
            result["fsyncs_per_ack"] = {**per_node, "cluster": round(sum(per_node.values()), 4)}
            entries = after[leader.id]["commit_index"] - before[leader.id]["commit_index"]
            result["entries_per_ack"] = round(entries / acks, 3)
            return result
        finally:
            cluster.stop()
            client = docker.DockerClient(base_url=docker_host)
            for n in cluster.nodes:
                for c in client.containers.list(all=True, filters={"label": f"orion.node={n.id}"}):
                    c.remove(force=True)


def raft_only(durability: str, threads: int, seconds: float) -> dict[str, float]:
    addrs = [f"127.0.0.1:{p}" for p in free_ports(3)]
    with tempfile.TemporaryDirectory() as tmp:
        stores = [RaftStore(RaftSettings(a, a, f"{tmp}/{i}", "bench", election_min=1.0, election_max=2.0,
                                         compaction_entries=1_000_000, durability=durability),
                            [b for b in addrs if b != a], ReplicatedMachine()) for i, a in enumerate(addrs)]
        try:
            while not all(s.has_leader() for s in stores):
                time.sleep(0.05)
            leader = next(s for s in stores if s.is_leader())
            latencies: list[list[float]] = [[] for _ in range(threads)]
            stop = time.monotonic() + seconds

            def writer(i: int) -> None:
                store, n = stores[i % 3], 0
                while time.monotonic() < stop:
                    started = time.perf_counter()
                    store.submit(CreateTask(request_id=f"{i}-{n}", task_id=f"t{i}-{n}",
                                            spec=TaskSpec(image="busybox", memory=1 << 20)), timeout=10)
                    latencies[i].append(time.perf_counter() - started)
                    n += 1

            before, started = leader.status().extra["fsyncs"], time.perf_counter()
            pool = [threading.Thread(target=writer, args=(i,)) for i in range(threads)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()
            elapsed, fsyncs = time.perf_counter() - started, leader.status().extra["fsyncs"] - before
            times = [x for per in latencies for x in per]
            return {**summary(times), "commits_per_s": round(len(times) / elapsed, 1),
                    "leader_fsyncs_per_commit": round(fsyncs / len(times), 4)}
        finally:
            for store in stores:
                store.close()


def table(results: list[dict]) -> str:
    rows = ["| | " + " | ".join(r["durability"] for r in results) + " |", "|---" * (len(results) + 1) + "|"]

    def row(name: str, fn) -> None:
        rows.append(f"| {name} | " + " | ".join(fn(r) for r in results) + " |")

    def p50_p99(key: str):
        return lambda r: f"{r[key]['p50_ms']} / {r[key]['p99_ms']}"

    row("placed, 1 client: p50 / p99 ms", p50_p99("placed_1_client"))
    row("decided, 1 client: p50 / p99 ms", p50_p99("decided_1_client"))
    row("decided, 16 clients: creates/s", lambda r: str(r["decided_16_clients"]["creates_per_s"]))
    row("decided, 16 clients: p50 / p99 ms", p50_p99("decided_16_clients"))
    row("fsyncs per acknowledged create (leader)",
        lambda r: str(next(v for k, v in r["fsyncs_per_ack"].items() if k.startswith("leader"))))
    row("fsyncs per acknowledged create (cluster)", lambda r: str(r["fsyncs_per_ack"]["cluster"]))
    row("log entries per create", lambda r: str(r["entries_per_ack"]))
    row("this disk's fdatasync: p50 / p99 ms", p50_p99("fdatasync_ms"))
    for threads in RAFT_THREADS:
        key = f"raft_only_{threads}"
        row(f"Raft only, {threads} threads: commits/s", lambda r, k=key: str(r[k]["commits_per_s"]))
        row(f"Raft only, {threads} threads: p50 / p99 ms", p50_p99(key))
        row(f"Raft only, {threads} threads: leader fsyncs per commit",
            lambda r, k=key: str(r[k]["leader_fsyncs_per_commit"]))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--modes", default="none,fsync")
    parser.add_argument("--out", default="bench/results/fsync_cost.json")
    args = parser.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
    if not docker_host:
        sys.exit("fsync_cost: set DOCKER_HOST (scripts/ensure-dockerd.sh starts an engine)")
    results = [run_mode(mode, docker_host, args.seconds, args.trials) for mode in args.modes.split(",")]
    for result in results:
        for threads in RAFT_THREADS:
            result[f"raft_only_{threads}"] = raft_only(str(result["durability"]), threads, args.seconds / 3)
    print(json.dumps(results, indent=2))
    print(table(results))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"results": results, "table": table(results).splitlines()}, indent=2) + "\n")


if __name__ == "__main__":
    main()
