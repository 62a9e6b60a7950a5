"""Agent benchmarks on a real 3-node loopback cluster (issue #2's figures).

    .venv/bin/python bench/agent_bench.py [--trials 200] [--out bench/results/agent.json]

Needs a Docker engine (DOCKER_HOST or ORION_TEST_DOCKER_HOST) and the
orion/busybox:latest image (scripts/ensure-dockerd.sh builds it). Measures:

* POST /tasks -> placement committed (201 carries the nodeId), from the leader
  and from a follower, p50/p99;
* POST /tasks -> container running (state reported back through Raft), p50/p99;
* agent start -> /health ready (a node restarting into a running cluster, and a
  fresh single-node bootstrap);
* agent RSS idle, and with 10,000 tasks in the replicated state.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import docker
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster  # noqa: E402

IMAGE = os.environ.get("ORION_TEST_IMAGE", "orion/busybox:latest")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float], unit: float = 1000.0) -> dict[str, float]:
    return {"n": len(values), "p50": round(pct(values, 50) * unit, 3), "p99": round(pct(values, 99) * unit, 3),
            "mean": round(statistics.fmean(values) * unit, 3)}


def rss_kb(pid: int) -> int:
    """RSS of the gunicorn worker (the child that holds the replica)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    target = int(children[0]) if children else pid
    for line in Path(f"/proc/{target}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def post_to_placed(cluster: Cluster, node, trials: int) -> list[float]:
    times = []
    session = requests.Session()
    for _ in range(trials):
        started = time.perf_counter()
        resp = session.post(node.url + "/tasks", json={"image": IMAGE, "memory": 8 * 1024 * 1024,
                                                        "command": ["sleep", "1"]}, timeout=10)
        elapsed = time.perf_counter() - started
        body = resp.json()
        assert resp.status_code == 201 and body["nodeId"], resp.text
        times.append(elapsed)
        session.delete(node.url + f"/tasks/{body['id']}", timeout=10)
    return times


def post_to_running(cluster: Cluster, node, trials: int) -> list[float]:
    times = []
    for _ in range(trials):
        started = time.perf_counter()
        resp = requests.post(node.url + "/tasks", json={"image": IMAGE, "memory": 16 * 1024 * 1024}, timeout=10)
        task_id = resp.json()["id"]
        while True:
            state = requests.get(node.url + f"/tasks/{task_id}", timeout=5).json()["state"]
            if state == "running":
                break
            if time.perf_counter() - started > 30:
                raise RuntimeError(f"task {task_id} not running after 30 s")
            time.sleep(0.002)
        times.append(time.perf_counter() - started)
        requests.delete(node.url + f"/tasks/{task_id}", timeout=10)
    return times


def restart_to_ready(cluster: Cluster, trials: int) -> list[float]:
    times = []
    for _ in range(trials):
        node = cluster.nodes[-1]
        cluster.kill(node)
        started = time.perf_counter()
        cluster.start_node(node)
        while not node.healthy():
            time.sleep(0.01)
        times.append(time.perf_counter() - started)
    return times


def fill_tasks(node, count: int, workers: int = 8) -> float:
    """``count`` tasks that cannot be placed (pending keeps Docker out of the RSS
    figure); returns the submissions per second achieved."""
    from concurrent.futures import ThreadPoolExecutor

    def submit(n: int) -> None:
        session = requests.Session()
        for _ in range(n):
            resp = session.post(node.url + "/tasks", json={"image": IMAGE, "memory": 1 << 50}, timeout=30)
            assert resp.status_code == 201, resp.text

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(submit, [count // workers] * workers))
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--run-trials", type=int, default=30)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--out", default="bench/results/agent.json")
    args = parser.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
    if not docker_host:
        sys.exit("agent_bench: set DOCKER_HOST (scripts/ensure-dockerd.sh starts an engine)")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(root=Path(tmp), docker_host=docker_host)
        try:
            cluster.start()
            leader = cluster.leader()
            follower = next(n for n in cluster.nodes if n is not leader)
            post_to_placed(cluster, leader, 20)  # warm-up
            results["post_to_placed_leader_ms"] = summary(post_to_placed(cluster, leader, args.trials))
            results["post_to_placed_follower_ms"] = summary(post_to_placed(cluster, follower, args.trials))
            results["post_to_running_ms"] = summary(post_to_running(cluster, follower, args.run_trials))
            results["restart_to_ready_ms"] = summary(restart_to_ready(cluster, 5))
            leader = cluster.wait(cluster.leader, 20, "leader")
            time.sleep(2)
            results["rss_idle_kb"] = {n.id: rss_kb(n.proc.pid) for n in cluster.nodes}
            results["fill_submissions_per_s"] = round(fill_tasks(leader, args.tasks), 1)
            time.sleep(2)
            results["rss_10k_tasks_kb"] = {n.id: rss_kb(n.proc.pid) for n in cluster.nodes}
        finally:
            cluster.stop()
            client = docker.DockerClient(base_url=docker_host)
            for n in cluster.nodes:
                for c in client.containers.list(all=True, filters={"label": f"orion.node={n.id}"}):
                    c.remove(force=True)
    with tempfile.TemporaryDirectory() as tmp:
        single = Cluster(root=Path(tmp), docker_host=docker_host, size=1)
        times = []
        for _ in range(5):
            started = time.perf_counter()
            single.start_node(single.nodes[0], bootstrap=not times)
            while not single.nodes[0].healthy():
                time.sleep(0.01)
            times.append(time.perf_counter() - started)
            single.kill(single.nodes[0])
        results["single_node_start_to_ready_ms"] = summary(times)
    print(json.dumps(results, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
