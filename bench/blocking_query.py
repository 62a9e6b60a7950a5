"""Blocking queries: time from a write to a waiting reader's answer.

    .venv/bin/python bench/blocking_query.py [--samples 200]

A real 3-node cluster on loopback (real agents, gunicorn, pysyncobj over TCP;
no Docker engine needed: the tasks written carry a node selector nothing
matches, so they stay pending and no container is ever started). For each
sample a reader holds ``GET /tasks?index=N&wait=30s`` (the CLI client's
``watch``, as ``orion top`` uses it) on the leader and another on a follower;
the clock starts just before ``POST /tasks`` is sent to the leader and stops
when each reader has its answer. Goal: p50 and p99 <= 20 ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster  # noqa: E402

from orion.cli.client import OrionClient  # noqa: E402

NO_ENGINE = "unix:///nonexistent/orion-bench-docker.sock"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def sample(reader_clients: dict[str, OrionClient], writer: OrionClient, i: int) -> dict[str, float]:
    answered: dict[str, float] = {}
    started = threading.Barrier(len(reader_clients) + 1)

    def read(role: str, client: OrionClient, index: int) -> None:
        started.wait()
        _, new_index = client.watch("/tasks", index, 30)
        answered[role] = time.perf_counter()
        assert new_index > index, f"{role}: wait elapsed without the write"

    threads = []
    for role, client in reader_clients.items():
        _, index = client.watch("/raft", 0, 0)  # the reader's current index
        threads.append(threading.Thread(target=read, args=(role, client, index)))
        threads[-1].start()
    started.wait()
    time.sleep(0.05)  # let both requests reach their wait
    t0 = time.perf_counter()
    writer.run({"image": "busybox", "memory": "8M", "nodeSelectors": {"bench": "nowhere"}},
               idempotency_key=f"blocking-{i}")
    for thread in threads:
        thread.join()
    return {role: (t - t0) * 1000 for role, t in answered.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--out", default="bench/results/blocking_query.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(root=Path(root), docker_host=NO_ENGINE)
        try:
            cluster.start()
            leader = cluster.wait(cluster.leader, 30, "a leader")
            follower = next(n for n in cluster.nodes if n is not leader)
            readers = {"leader": OrionClient(leader.url), "follower": OrionClient(follower.url)}
            writer = OrionClient(leader.url)
            for i in range(10):  # warm the connections and the code paths
                sample(readers, writer, -1 - i)
            results: dict[str, list[float]] = {"leader": [], "follower": []}
            for i in range(args.samples):
                for role, ms in sample(readers, writer, i).items():
                    results[role].append(ms)
        finally:
            cluster.stop()
    summary = {role: {"samples": len(ms), "p50_ms": round(statistics.median(ms), 2),
                      "p99_ms": round(percentile(ms, 0.99), 2), "max_ms": round(max(ms), 2)}
               for role, ms in results.items()}
    print(json.dumps(summary, indent=2))
    Path(args.out).write_text(json.dumps({"goal_ms": 20, "readers": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
