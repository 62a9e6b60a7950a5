"""Sustained placements per second against 1,000+ registered simulated nodes.

    .venv/bin/python bench/placement_throughput.py [--nodes 1000] [--tasks 20000]

Three real RaftStores (pysyncobj over TCP on loopback) in one process, the
leader's real scheduling loop (orion/control/placement_loop.py), and simulated nodes
registered through Raft with varied capacities. A batch of CreateTask commands
is submitted from a follower by several threads at once; the clock stops when
the last task is placed on every replica. No HTTP and no Docker: this is the
decision path (Raft commit + scheduler.plan + PlaceTasks apply).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import free_ports  # noqa: E402

from orion.control.placement_loop import PlacementLoop  # noqa: E402
from orion.domain.model import NodeInfo, Resources, TaskSpec  # noqa: E402
from orion.raft.store import RaftSettings, RaftStore  # noqa: E402
from orion.state.commands import CreateTask, RegisterNode, ScaleTask  # noqa: E402
from orion.state.entries import ReplicatedMachine  # noqa: E402
from orion.state.results import Refused  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--batch", type=int, default=0,
                        help="submit as a service scaled up by this many tasks per command (0: one per task)")
    parser.add_argument("--out", default="bench/results/placement_throughput.json")
    args = parser.parse_args()
    rng = random.Random(7)
    ports = free_ports(3)
    addrs = [f"127.0.0.1:{p}" for p in ports]
    with tempfile.TemporaryDirectory() as tmp:
        stores = [RaftStore(RaftSettings(a, a, f"{tmp}/{i}", "bench", election_min=1.0, election_max=2.0,
                                         compaction_entries=1_000_000, durability="fsync"),
                            [b for b in addrs if b != a], ReplicatedMachine()) for i, a in enumerate(addrs)]
        stop = threading.Event()
        try:
            while not all(s.has_leader() for s in stores):
                time.sleep(0.05)
            leader = next(s for s in stores if s.is_leader())
            follower = next(s for s in stores if not s.is_leader())
            loops = [PlacementLoop(s, interval=1.0, write_timeout=10.0) for s in stores]
            for loop in loops:
                threading.Thread(target=loop.run_forever, args=(stop,), daemon=True).start()
            for i in range(args.nodes):
                cap = Resources(rng.choice([4, 8, 16, 32]) << 30, rng.choice([2000, 4000, 8000]))
                leader.submit(RegisterNode(request_id=f"n{i}", node=NodeInfo(
                    f"sim{i:04d}", f"10.0.0.{i % 250}:8000", f"10.0.0.{i % 250}:7000", capacity=cap)), 10)
            spec = TaskSpec(image="orion/busybox:latest", memory=64 << 20, cpu_millis=50)

            def submit(n: int) -> None:
                for _ in range(n):
                    follower.submit(CreateTask(request_id=uuid.uuid4().hex, task_id=uuid.uuid4().hex[:12],
                                               spec=spec), 10)

            def placed() -> int:
                return follower.read(lambda m: m.counts_by_state().get("assigned", 0))[0]

            started = time.perf_counter()
            if args.batch:
                # A batch submit: services of ``batch`` identical tasks, each created by one
                # CreateTask and one ScaleTask command (what POST /tasks with "count" does).
                total = args.tasks - args.tasks % args.batch
                for g in range(total // args.batch):
                    follower.submit(CreateTask(request_id=f"svc{g}", task_id=f"svc{g}-0", spec=spec), 10)
                    ids = tuple(f"svc{g}-{k}" for k in range(1, args.batch))
                    result = follower.submit(ScaleTask(request_id=uuid.uuid4().hex, task_id=f"svc{g}-0",
                                                       count=args.batch, new_task_ids=ids), 10)
                    assert not isinstance(result, Refused), result
            else:
                with ThreadPoolExecutor(args.threads) as pool:
                    list(pool.map(submit, [args.tasks // args.threads] * args.threads))
                total = (args.tasks // args.threads) * args.threads
            submitted = time.perf_counter() - started
            deadline = time.monotonic() + 120
            while placed() < total:
                if time.monotonic() > deadline:
                    sys.exit(f"placement stalled at {placed()} of {total}: "
                             f"{follower.read(lambda m: m.counts_by_state())[0]}")
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
            # Every replica must hold the same state (pysyncobj logs re-sent entries under load).
            for store in stores:
                while store.status().applied_index < follower.status().commit_index:
                    time.sleep(0.01)
            views = {json.dumps(s.read(lambda m: m.snapshot()["tasks"])[0], sort_keys=True) for s in stores}
            converged = len(views) == 1
        finally:
            stop.set()
            for s in stores:
                s.close()
    result = {"nodes": args.nodes, "tasks": total, "submit_seconds": round(submitted, 3),
              "all_placed_seconds": round(elapsed, 3), "placements_per_s": round(total / elapsed, 1),
              "submissions_per_s": round(total / submitted, 1), "batch": args.batch,
              "replicas_converged": converged}
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
