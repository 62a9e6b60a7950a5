"""Blocking-query watchers on one node: what they cost its /health, writes and reads (issue #20).

    .venv/bin/python bench/blocking_watchers.py [--watchers 0,16,1000] [--samples 60]

For each count a fresh real 3-node cluster on loopback (real agents, gunicorn,
pysyncobj over TCP; no Docker engine: the tasks carry a node selector nothing
matches, so they stay pending and no container starts), seeded with 50 tasks.
``W`` watchers hold ``GET /tasks?index=N&wait=60s`` on node 1 (one asyncio
thread over raw sockets, ``tests/integration/watch_kit.py``; each asks again
as soon as it is answered, as ``orion top`` does). Then, on the same node,
one request at a time: ``GET /health``, ``POST /tasks`` (each one wakes every
watcher), ``GET /tasks`` — p50/p99 of each, failures counted (a 5 s timeout is
a failure). Last, write -> watcher: ``POST /tasks`` and the time until each
watcher has the answer carrying that write's index (p50/p99 over every watcher
and write, and the first and last watcher of each write).

Run it with another checkout's interpreter (``/work/main/.venv/bin/python
bench/blocking_watchers.py``) to measure that code: the harness starts the
``orion`` beside the interpreter.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster  # noqa: E402
from watch_kit import Watchers, percentile  # noqa: E402

NO_ENGINE = "unix:///nonexistent/orion-bench-docker.sock"
TASK = {"image": "busybox", "memory": "8M", "nodeSelectors": {"bench": "nowhere"}}
TIMEOUT = 5.0


def timed(call, samples: int) -> dict[str, float]:
    """p50/p99 (ms) of ``samples`` calls, one at a time; failures (an error, a timeout) counted."""
    ms: list[float] = []
    failed = 0
    for _ in range(samples):
        t0 = time.perf_counter()
        try:
            ok = call().status_code < 300
        except requests.RequestException:
            ok = False
        if ok:
            ms.append((time.perf_counter() - t0) * 1000)
        else:
            failed += 1
    if not ms:
        return {"ok": 0, "failed": failed}
    return {"ok": len(ms), "failed": failed, "p50_ms": round(statistics.median(ms), 2),
            "p99_ms": round(percentile(ms, 0.99), 2), "max_ms": round(max(ms), 2)}


def write_to_watchers(session: requests.Session, url: str, watchers: Watchers, writes: int) -> dict[str, float]:
    """Per write: each watcher's delay from sending the POST to having an answer that carries it."""
    all_ms: list[float] = []
    firsts: list[float] = []
    lasts: list[float] = []
    missing = 0
    for _ in range(writes):
        settle = time.monotonic() + 10
        while watchers.sent < watchers.answered() + len(watchers.watchers) and time.monotonic() < settle:
            time.sleep(0.01)  # every watcher asked again after the previous write
        time.sleep(0.2)  # and its request reached its wait
        # The create is the first entry beyond what every watcher holds (nothing else writes here;
        # the answer to the POST may carry a later index: the leader's pass notes it unplaceable).
        held = int(session.get(url + "/tasks", timeout=TIMEOUT).headers["X-Orion-Index"])
        watchers.expect(held + 1)
        t0 = time.perf_counter()
        session.post(url + "/tasks", json=TASK, timeout=TIMEOUT)
        watchers.wait_for(10)
        ms = [(at - t0) * 1000 for at in watchers.first_answers_at_or_beyond(held + 1)]
        missing += len(watchers.watchers) - len(ms)
        if ms:
            all_ms += ms
            firsts.append(min(ms))
            lasts.append(max(ms))
    return {"writes": writes, "answers": len(all_ms), "missing": missing,
            "p50_ms": round(statistics.median(all_ms), 2), "p99_ms": round(percentile(all_ms, 0.99), 2),
            "first_watcher_p50_ms": round(statistics.median(firsts), 2),
            "last_watcher_p50_ms": round(statistics.median(lasts), 2),
            "last_watcher_max_ms": round(max(lasts), 2)}


def phase(n_watchers: int, samples: int, writes: int) -> dict:
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(root=Path(root), docker_host=NO_ENGINE)
        try:
            cluster.start()
            node = cluster.nodes[0]
            session = requests.Session()
            for _ in range(50):
                session.post(node.url + "/tasks", json=TASK, timeout=TIMEOUT)
            index = int(session.get(node.url + "/tasks", timeout=TIMEOUT).headers["X-Orion-Index"])
            watchers = Watchers("127.0.0.1", node.port, "/tasks", n_watchers)
            if n_watchers:
                watchers.start(index)
                time.sleep(1.0)  # every request reaches its wait
            result: dict = {"watchers": n_watchers}
            result["health"] = timed(lambda: session.get(node.url + "/health", timeout=TIMEOUT), samples)
            result["post_tasks"] = timed(lambda: session.post(node.url + "/tasks", json=TASK, timeout=TIMEOUT),
                                         samples)
            result["get_tasks"] = timed(lambda: session.get(node.url + "/tasks", timeout=TIMEOUT), samples)
            if n_watchers and writes:
                result["write_to_watcher"] = write_to_watchers(session, node.url, watchers, writes)
                result["watcher_errors"] = len(watchers.errors())
            try:
                result["tasks_listed"] = len(session.get(node.url + "/tasks", timeout=TIMEOUT).json())
            except requests.RequestException as exc:  # the node is starved (the code before issue #20)
                result["tasks_listed"] = f"{type(exc).__name__}"
            watchers.close()
            return result
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--watchers", default="0,16,1000")
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--out", default="bench/results/blocking_watchers.json")
    args = parser.parse_args()
    results = [phase(int(n), args.samples, args.writes) for n in args.watchers.split(",")]
    print(json.dumps(results, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"node": "one of 3, loopback, 2 cores", "phases": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
