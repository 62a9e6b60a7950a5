"""Agent start -> ``/health`` ready, fresh and rejoining (issue #14, "Start fast").

    flock -w 1500 /tmp/orion-it.lock .venv/bin/python bench/start_ready.py [--trials 10]
                                                [--out bench/results/start_ready.json]

*fresh*: a single agent with an empty data directory bootstraps a new cluster;
timed from ``Popen`` of ``orion agent`` to the first 200 of ``GET /health``.
*rejoining*: in a 3-node loopback cluster a follower is stopped (SIGTERM, the
graceful stop: its node is ``restarting``) and started again with its data
directory; timed the same way. Goals: fresh <= 1 s, rejoining <= 0.5 s (p50).

Breakdown: each trial's agent log is read back for the milestones it prints
(:data:`MILESTONES`, timestamps to the millisecond) and reported as seconds
after ``Popen`` (median over the trials): where the time to ready goes.

Docker: ``ORION_TEST_DOCKER_HOST``, else ``DOCKER_HOST``; nothing is started on it.
Bounded: every wait has a deadline; everything started is torn down.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster  # noqa: E402

# Log lines the agent prints on its way to ready, in order (a milestone the running tree
# does not print is left out of the breakdown).
MILESTONES = (
    ("cli_ready", re.compile(r"orion\.agent\.server: orion agent ")),   # interpreter + CLI imports + config
    ("worker_building", re.compile(r"orion\.agent\.server: worker: building")),  # + gunicorn forks its worker
    ("capacity_measured", re.compile(r"orion\.agent\.compose: capacity: ")),  # + imports, docker /info
    ("agent_started", re.compile(r"orion\.agent\.server: worker: agent started")),
    ("registered", re.compile(r"orion\.agent\.compose: registered node ")),
)
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) ")


def milestones(log: Path, since_wall: float) -> dict[str, float]:
    """Seconds after ``since_wall`` (``time.time()`` at Popen) of each milestone's first line
    written after it (a rejoining node's log holds its earlier runs too)."""
    found: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        stamp = _STAMP.match(line)
        if stamp is None:
            continue
        at = time.mktime(time.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S")) + int(stamp.group(2)) / 1000
        if at < since_wall - 0.002:
            continue
        for name, pattern in MILESTONES:
            if name not in found and pattern.search(line):
                found[name] = round(at - since_wall, 3)
    return found


def breakdown(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median seconds after Popen of each milestone (and of ready), in the order they happen."""
    names = [name for name, _ in MILESTONES] + ["health_ready"]
    out = {name: round(statistics.median([r[name] for r in runs if name in r]), 3)
           for name in names if any(name in r for r in runs)}
    return dict(sorted(out.items(), key=lambda item: item[1]))


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


def fresh(docker_host: str, trials: int) -> tuple[list[float], list[dict[str, float]]]:
    out, runs = [], []
    for _ in range(trials):
        with tempfile.TemporaryDirectory() as root:
            cluster = Cluster(Path(root), docker_host, size=1)
            node = cluster.nodes[0]
            try:
                wall, started = time.time(), time.monotonic()
                cluster.start_node(node, bootstrap=True)
                out.append(until_healthy(cluster, node, started))
                cluster.wait(lambda node=node: node.get("/nodes").status_code == 200, 30, "registered")
                time.sleep(0.3)  # the registration's log line
                runs.append({**milestones(node.log_path, wall), "health_ready": round(out[-1], 3)})
            finally:
                cluster.stop()
    return out, runs


def rejoining(docker_host: str, trials: int) -> tuple[list[float], list[dict[str, float]]]:
    out, runs = [], []
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(Path(root), docker_host, size=3)
        try:
            cluster.start()
            for n in range(trials):
                leader = cluster.wait(cluster.leader, 30, "a leader")
                node = next(x for x in cluster.live() if x is not leader)
                cluster.kill(node, signal.SIGTERM)
                wall, started = time.time(), time.monotonic()
                cluster.start_node(node)
                out.append(until_healthy(cluster, node, started))
                # Let it settle (registered, caught up) before the next trial.
                cluster.wait(lambda node=node: node.get("/nodes").status_code == 200, 30, f"trial {n} settled")
                time.sleep(1.0)
                runs.append({**milestones(node.log_path, wall), "health_ready": round(out[-1], 3)})
        finally:
            cluster.stop()
    return out, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--out", default="bench/results/start_ready.json")
    parser.add_argument("--label", default="",
                        help="keep the other labels' runs in --out and store this one under LABEL "
                             "(e.g. before/after a change, measured in the same session)")
    args = parser.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST") \
        or "unix:///var/run/docker.sock"
    result: dict = {"measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    "load_average_1m_before": round(os.getloadavg()[0], 2)}
    for name, run in (("fresh", fresh), ("rejoining", rejoining)):
        values, runs = run(docker_host, args.trials)
        result[name] = {**summary(values), "breakdown_s_after_popen": breakdown(runs)}
        print(f"{name} breakdown (median s after Popen): {result[name]['breakdown_s_after_popen']}")
    print(f"fresh single-node bootstrap -> ready: p50 {result['fresh']['p50']} s, p99 {result['fresh']['p99']} s")
    print(f"rejoining follower -> ready:          p50 {result['rejoining']['p50']} s, "
          f"p99 {result['rejoining']['p99']} s")
    out = Path(args.out)
    if args.label:
        kept = json.loads(out.read_text()) if out.exists() else {}
        result = {**(kept if "fresh" not in kept else {}), args.label: result}
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
