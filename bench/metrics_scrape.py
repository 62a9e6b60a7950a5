"""GET /metrics cost with 10,000 tasks in the replicated state (goal: <= 50 ms, <= 100 KB).

The state is built through real commands on a LocalStore (the same StateMachine
a Raft replica runs): 50 nodes, 10,000 tasks placed by the real scheduling loop,
some reported running, some stopped, and a few that fit nowhere (so the pending
path of the collector is paid too). Scrapes go through the Flask app exactly as
Prometheus's would (minus the socket), a few hundred times; we report p50/p99
and the body size, plain and gzip-compressed (Prometheus asks for gzip).

    .venv/bin/python bench/metrics_scrape.py [--tasks 10000] [--scrapes 300]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import time
import uuid
from pathlib import Path

from orion.api.app import ApiDeps, create_app
from orion.config import shipped
from orion.control.placement_loop import PlacementLoop
from orion.domain.model import RUNNING, STOPPED, NodeInfo, Resources, TaskSpec
from orion.metrics.registry import Metrics
from orion.state.commands import CreateTask, RegisterNode, ReportTaskState
from orion.store.local import LocalStore

GiB = 1 << 30
MiB = 1 << 20
RESULTS = Path(__file__).resolve().parent / "results"


def build_state(tasks: int, nodes: int, unschedulable: int) -> LocalStore:
    store = LocalStore(self_addr="127.0.0.1:7000")
    for i in range(nodes):
        node = NodeInfo(f"node{i:03d}", f"10.0.0.{i}:8000", f"10.0.0.{i}:7000",
                        capacity=Resources(64 * GiB, 32_000))
        store.submit(RegisterNode(request_id=uuid.uuid4().hex, node=node), 5)
    spec = TaskSpec("orion/busybox:latest", 32 * MiB, 50)
    for i in range(tasks - unschedulable):
        store.submit(CreateTask(request_id=uuid.uuid4().hex, task_id=f"t{i:06d}", spec=spec), 5)
    huge = TaskSpec("orion/busybox:latest", 1 << 50, 50)
    for i in range(unschedulable):
        store.submit(CreateTask(request_id=uuid.uuid4().hex, task_id=f"u{i:06d}", spec=huge), 5)
    scheduler = PlacementLoop(store, interval=1, write_timeout=5)
    while scheduler.run_once().detail.placed:
        pass
    placed, _ = store.read(lambda m: [t for t in m.tasks() if t.node_id])
    for n, task in enumerate(placed):
        state = RUNNING if n % 10 else STOPPED
        store.submit(ReportTaskState(request_id=uuid.uuid4().hex, task_id=task.id, node_id=task.node_id or "",
                                     generation=task.generation, state=state, container_id=f"c{n}"), 5)
    return store


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10_000)
    ap.add_argument("--nodes", type=int, default=50)
    ap.add_argument("--unschedulable", type=int, default=20)
    ap.add_argument("--scrapes", type=int, default=300)
    args = ap.parse_args()

    t0 = time.perf_counter()
    store = build_state(args.tasks, args.nodes, args.unschedulable)
    built = time.perf_counter() - t0
    metrics = Metrics("node000", store)
    deps = ApiDeps(store=store, node_id="node000", **shipped("api"))
    app = metrics.instrument(create_app(deps))
    client = app.test_client()
    # Traffic on a few routes, so the HTTP series are there as in production.
    for path in ("/tasks/t000001", "/health", "/raft", "/nodes", "/no/such"):
        client.get(path)
    counts, _ = store.read(lambda m: m.counts_by_state())

    times = []
    body = b""
    for _ in range(args.scrapes):
        started = time.perf_counter()
        resp = client.get("/metrics")
        body = resp.get_data()
        times.append((time.perf_counter() - started) * 1000)
        assert resp.status_code == 200
    result = {
        "tasks": args.tasks, "nodes": args.nodes, "task_states": counts, "scrapes": args.scrapes,
        "scrape_ms_p50": round(statistics.median(times), 2), "scrape_ms_p99": round(pct(times, 0.99), 2),
        "scrape_ms_max": round(max(times), 2), "body_bytes": len(body),
        "body_bytes_gzip": len(gzip.compress(body)),
        "series": sum(1 for line in body.decode().splitlines() if line and not line.startswith("#")),
        "build_state_s": round(built, 1),
    }
    result["goal_met"] = result["scrape_ms_p99"] <= 50 and result["body_bytes"] <= 100_000
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "metrics_scrape.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
