"""What the state digest costs ``GET /raft`` (issue #14), in-process, no cluster.

    .venv/bin/python bench/raft_digest.py [--out bench/results/raft_digest.json]

For machines of 100 nodes and 0 / 1,000 / 10,000 tasks: the time to digest the
machine once (snapshot under the lock, then JSON and SHA-256 outside it), and
``GET /raft`` through the real Flask app when nothing changed between two reads
(the digest comes from the cache) and when every read follows a write, for
``--seconds`` (the digest is recomputed at most once a second: its cost shows in
the max), against ``GET /health`` as the floor of a request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from parts import api_deps  # noqa: E402

from orion.api.app import create_app  # noqa: E402
from orion.domain.model import NodeInfo, Resources, TaskSpec  # noqa: E402
from orion.state.commands import CreateTask, RegisterNode  # noqa: E402
from orion.store.local import LocalStore  # noqa: E402

RESULTS = Path(__file__).parent / "results"
GiB = 1 << 30


def fill(nodes: int, tasks: int) -> LocalStore:
    store = LocalStore()
    for i in range(nodes):
        store.submit(RegisterNode(request_id=f"r{i}", node=NodeInfo(f"n{i}", f"10.0.0.{i}:8000", f"10.0.0.{i}:7000",
                                                                     capacity=Resources(64 * GiB, 32000))), 1.0)
    for i in range(tasks):
        store.submit(CreateTask(request_id=f"c{i}", task_id=f"t{i}", spec=TaskSpec("orion/busybox:latest", 1 << 20)),
                     1.0)
    return store


def ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"reads": len(ordered), "p50_ms": round(1000 * statistics.median(ordered), 3),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "max_ms": round(1000 * ordered[-1], 3)}


def measure(tasks: int, seconds: float) -> dict:
    store = fill(100, tasks)
    client = create_app(api_deps(store)).test_client()
    started = time.perf_counter()
    store.digest()
    once = time.perf_counter() - started

    def timed(path: str, write_between: bool) -> list[float]:
        out, i, end = [], 0, time.monotonic() + seconds
        while time.monotonic() < end:
            i += 1
            if write_between:
                store.submit(CreateTask(request_id=f"w{tasks}-{i}-{path}", task_id=f"w{i}{path}",
                                        spec=TaskSpec("orion/busybox:latest", 1 << 20)), 1.0)
            t0 = time.perf_counter()
            assert client.get(path).status_code == 200
            out.append(time.perf_counter() - t0)
        return out

    timed("/raft", False)  # warm up
    return {"tasks": tasks, "nodes": 100, "digest_once_ms": round(1000 * once, 3),
            "health": ms(timed("/health", False)),
            "raft_cached": ms(timed("/raft", False)),
            "raft_after_each_write": ms(timed("/raft", True))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="of reads per figure")
    parser.add_argument("--out", default=str(RESULTS / "raft_digest.json"))
    args = parser.parse_args()
    rows = [measure(tasks, args.seconds) for tasks in (0, 1000, 10000)]
    for r in rows:
        print(f"{r['nodes']} nodes, {r['tasks']:>5} tasks: digest {r['digest_once_ms']:7.2f} ms | "
              f"/health p50 {r['health']['p50_ms']:.2f} ms | /raft cached p50 {r['raft_cached']['p50_ms']:.2f} "
              f"p99 {r['raft_cached']['p99_ms']:.2f} ms | /raft after each write p50 "
              f"{r['raft_after_each_write']['p50_ms']:.2f} p99 {r['raft_after_each_write']['p99_ms']:.2f} "
              f"max {r['raft_after_each_write']['max_ms']:.1f} ms ({r['raft_after_each_write']['reads']} reads)")
    Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
