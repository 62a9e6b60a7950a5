"""``orion ps --watch``: time from a write to the watch printing it.

    flock -w 1500 /tmp/orion-it.lock .venv/bin/python bench/cli_watch.py [--samples 100]

A real 3-node cluster on loopback (no Docker engine needed: the tasks written
carry a node selector nothing matches, so they stay pending). A real
``orion ps --watch -o json`` process follows a follower (one JSON document per
line on a pipe); for each sample the clock starts just before ``POST /tasks``
is sent to the leader and stops when the watch prints a line holding the new
task's id. Goal (issue 13): a change printed within 1 s of the write.
"""

from __future__ import annotations

import argparse
import json
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import ORION, Cluster  # noqa: E402

from orion.cli.client import OrionClient  # noqa: E402

NO_ENGINE = "unix:///nonexistent/orion-bench-docker.sock"
GOAL_MS = 1000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--out", default="bench/results/cli_watch.json")
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(root=Path(root), docker_host=NO_ENGINE)
        watch = None
        try:
            cluster.start()
            leader = cluster.wait(cluster.leader, 30, "a leader")
            follower = next(n for n in cluster.nodes if n is not leader)
            watch = subprocess.Popen([*ORION, "--addr", follower.url, "ps", "--watch", "-o", "json"],
                                     stdout=subprocess.PIPE, text=True)
            lines: queue.Queue[tuple[float, str]] = queue.Queue()

            def read() -> None:
                for line in watch.stdout:
                    lines.put((time.perf_counter(), line))

            threading.Thread(target=read, daemon=True).start()
            lines.get(timeout=10)  # the first snapshot
            writer = OrionClient(leader.url)
            for i in range(args.samples + 5):  # the first 5 warm the paths
                time.sleep(0.05)
                t0 = time.perf_counter()
                task = writer.run({"image": "busybox", "memory": "8M", "nodeSelectors": {"bench": "nowhere"}},
                                  idempotency_key=f"cli-watch-{i}")
                while True:
                    printed, line = lines.get(timeout=10)
                    if task["id"] in line:
                        break
                if i >= 5:
                    latencies.append((printed - t0) * 1000)
        finally:
            if watch is not None:
                watch.terminate()
                watch.wait(timeout=10)
            cluster.stop()
    summary = {"samples": len(latencies), "p50_ms": round(statistics.median(latencies), 1),
               "p99_ms": round(percentile(latencies, 0.99), 1), "max_ms": round(max(latencies), 1)}
    print(json.dumps(summary, indent=2))
    Path(args.out).write_text(json.dumps({"goal_ms": GOAL_MS, "ps_watch": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
