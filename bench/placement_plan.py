"""The placement planner alone: ``placement.plan`` over 1,000 nodes, no Raft, no I/O.

    .venv/bin/python bench/placement_plan.py [--nodes 1000] [--tasks 20000] [--rounds 5]

``bench/placement_throughput.py`` measures the whole decision path (Raft commit, plan,
apply); this isolates the planner's hot loop, so a change to it shows without the noise
of three Raft engines on two cores. Three shapes: lone tasks (the packer's fast path,
one comparison per group of identical nodes), a service's replicas (spread: the fewest
of its replicas first), and, where the planner knows them, replicas with constraints,
a spread over a zone label and a per-node maximum. The best and the median of ``--rounds`` runs (the best is the one
a shared, loaded machine disturbs least).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

from orion.control import placement
from orion.domain.model import NodeInfo, Resources, Task, TaskSpec


def nodes(count: int, rng: random.Random) -> list[NodeInfo]:
    zones = ("a", "b", "c")
    return [NodeInfo(f"sim{i:04d}", f"10.0.{i // 250}.{i % 250}:8000", "", labels=(("zone", zones[i % 3]),),
                     capacity=Resources(rng.choice([4, 8, 16, 32]) << 30, rng.choice([2000, 4000, 8000])))
            for i in range(count)]


def timed(tasks: list[Task], fleet: list[NodeInfo], rounds: int) -> tuple[float, float]:
    """(best, median) seconds of ``placement.plan`` over ``tasks``."""
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        placements, _ = placement.plan(tasks, fleet, {})
        runs.append(time.perf_counter() - started)
        assert placements, "nothing placed"
    return min(runs), statistics.median(runs)


def policies(count: int) -> list[tuple[str, list[Task]]]:
    """Replicas with the placement rules of issue #22, where this build has them (none before)."""
    try:
        from orion.domain.constraints import parse
    except ImportError:
        return []
    shapes = {"constrained": {"constraints": (parse("node.labels.zone != c"), parse("node.hostname != x"))},
              "zone_spread": {"spread": "zone"}, "max_per_node": {"max_per_node": 3}}
    return [(name, [Task(f"{name}.{i}", TaskSpec(image="x", memory=64 << 20, cpu_millis=50, group=name, **extra),
                         service=name, slot=i) for i in range(count)]) for name, extra in shapes.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--replicas", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", default="bench/results/placement_plan.json")
    args = parser.parse_args()
    fleet = nodes(args.nodes, random.Random(7))
    spec = TaskSpec(image="orion/busybox:latest", memory=64 << 20, cpu_millis=50)
    lone = [Task(id=f"t{i}", spec=spec) for i in range(args.tasks)]
    replicas = [Task(id=f"web.{i}", spec=TaskSpec(image="x", memory=64 << 20, cpu_millis=50, group="web"),
                     service="web", slot=i) for i in range(args.replicas)]
    result = {"nodes": args.nodes, "lone_tasks": args.tasks, "replicas": args.replicas}
    for name, tasks in (("lone", lone), ("replicas", replicas), *policies(args.replicas)):
        best, median = timed(tasks, fleet, args.rounds)
        result[f"{name}_per_s_best"] = round(len(tasks) / best)
        result[f"{name}_per_s_median"] = round(len(tasks) / median)
    result["load_average"] = os.getloadavg()[0]
    print(json.dumps(result, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
