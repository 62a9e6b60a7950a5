"""Agent start -> ``/health`` ready, fresh and rejoining (issue #14, "Start fast").

    flock -w 1500 /tmp/orion-it.lock .venv/bin/python bench/start_ready.py [--trials 10]
                                                [--out bench/results/start_ready.json]

*fresh*: a single agent with an empty data directory bootstraps a new cluster;
timed from ``Popen`` of ``orion agent`` to the first 200 of ``GET /health``.
*rejoining*: in a 3-node loopback cluster a follower is stopped (SIGTERM, the
graceful stop: its node is ``restarting``) and started again with its data
directory; timed the same way. Goals: fresh <= 1 s, rejoining <= 0.5 s (p50).

Docker: ``ORION_TEST_DOCKER_HOST``, else ``DOCKER_HOST``; nothing is started on it.
Bounded: every wait has a deadline; everything started is torn down.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {"trials": len(values), "p50": round(pct(values, 50), 3), "p99": round(pct(values, 99), 3),
            "min": round(min(values), 3), "max": round(max(values), 3),
            "mean": round(statistics.mean(values), 3), "values": [round(v, 3) for v in values]}


def until_healthy(cluster: Cluster, node, started: float, deadline: float = 30.0) -> float:
    """Seconds from ``started`` to the node's first healthy answer (polled every 10 ms)."""
    end = started + deadline
    while time.monotonic() < end:
        if node.healthy():
            return time.monotonic() - started
        time.sleep(0.01)
    raise RuntimeError(f"{node.id} not healthy within {deadline}s:\n{cluster.logs()}")


def fresh(docker_host: str, trials: int) -> list[float]:
    out = []
    for _ in range(trials):
        with tempfile.TemporaryDirectory() as root:
            cluster = Cluster(Path(root), docker_host, size=1)
            try:
                started = time.monotonic()
                cluster.start_node(cluster.nodes[0], bootstrap=True)
                out.append(until_healthy(cluster, cluster.nodes[0], started))
            finally:
                cluster.stop()
    return out


def rejoining(docker_host: str, trials: int) -> list[float]:
    out = []
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(Path(root), docker_host, size=3)
        try:
            cluster.start()
            for n in range(trials):
                leader = cluster.wait(cluster.leader, 30, "a leader")
                node = next(x for x in cluster.live() if x is not leader)
                cluster.kill(node, signal.SIGTERM)
                started = time.monotonic()
                cluster.start_node(node)
                out.append(until_healthy(cluster, node, started))
                # Let it settle (registered, caught up) before the next trial.
                cluster.wait(lambda node=node: node.get("/nodes").status_code == 200, 30, f"trial {n} settled")
                time.sleep(1.0)
        finally:
            cluster.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--out", default="bench/results/start_ready.json")
    args = parser.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST") \
        or "unix:///var/run/docker.sock"
    result = {"fresh": summary(fresh(docker_host, args.trials)),
              "rejoining": summary(rejoining(docker_host, args.trials))}
    print(f"fresh single-node bootstrap -> ready: p50 {result['fresh']['p50']} s, p99 {result['fresh']['p99']} s")
    print(f"rejoining follower -> ready:          p50 {result['rejoining']['p50']} s, "
          f"p99 {result['rejoining']['p99']} s")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
