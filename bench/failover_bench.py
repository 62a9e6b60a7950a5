"""Self-healing figures on a real 3-node loopback cluster (issue #4).

    .venv/bin/python bench/failover_bench.py [--leader-trials 20] [--node-trials 10]
                                             [--out bench/results/failover.json]

Needs root (it starts one private Docker engine per node, like the
self-healing tests) and busybox-static for the test image. Measures:

* leader SIGKILL -> the API accepts writes again: a write to a follower is
  started every 20 ms, each on its own thread (``bench/probe.py``); the figure
  is the first acknowledgement among writes sent after the kill. Writes are tasks no node matches (they stay pending),
  so only Raft and the API are measured.
* node SIGKILL (agent and its engine, containers die with it) -> declared dead
  -> replacement container running and answering on the same host port,
  polled every 50 ms.

Bounded: every wait has a deadline; only loopback and the engines' own bridges
are touched; everything started is torn down.
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
from engines import Engines  # noqa: E402
from harness import free_ports  # noqa: E402
from selfheal_kit import make_heal_cluster  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from probe import first_ack_after  # noqa: E402

MiB = 1024 * 1024
IMAGE = "orion/busybox:latest"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {"trials": len(values), "p50": round(pct(values, 50), 3), "p99": round(pct(values, 99), 3),
            "min": round(min(values), 3), "max": round(max(values), 3),
            "mean": round(statistics.mean(values), 3), "values": [round(v, 3) for v in values]}


def leader_failover(hc, trials: int) -> list[float]:
    results = []
    for trial in range(trials):
        leader = hc.cluster.wait(hc.cluster.leader, 30, "a leader")
        follower = next(n for n in hc.cluster.live() if n is not leader)

        def write(follower=follower, key: str = f"failover-{trial}") -> bool:
            # One key per trial: every attempt is a real write through the log (the state
            # machine answers a repeat with the task it made), yet a trial leaves one task.
            resp = requests.post(follower.url + "/tasks", timeout=5, headers={"Idempotency-Key": key}, json={
                "image": IMAGE, "memory": 8 * MiB, "nodeSelectors": {"bench": "nowhere"}})
            return resp.status_code in (200, 201)

        assert write(key=f"warm-{trial}"), "the cluster must accept writes before the kill"
        killed_at = time.monotonic()
        hc.cluster.kill(leader)
        results.append(first_ack_after(write, killed_at, deadline=30))
        print(f"leader failover trial {trial + 1}: {results[-1]:.3f}s", flush=True)
        hc.cluster.restart(leader)
        hc.cluster.wait(lambda: all(n.healthy() for n in hc.nodes), 30, "all healthy")
        time.sleep(1.0)  # let the restarted node catch up before the next kill
    return results


def node_reschedule(hc, trials: int) -> tuple[list[float], list[float]]:
    to_running, to_dead = [], []
    victim = hc.nodes[1]
    # A filler pinned to the victim makes it the fullest node, so BestFit puts the probe there.
    hc.api().post("/tasks", json={"image": IMAGE, "memory": 32 * MiB, "nodeSelectors": {"name": victim.id}})
    for trial in range(trials):
        hc.cluster.wait(lambda: hc.cluster.leader() not in (None, victim), 30, "a leader other than the victim")
        (port,) = free_ports(1)
        resp = hc.api().post("/tasks", json={"image": IMAGE, "memory": 16 * MiB, "portBindings": {"80/tcp": str(port)}})
        task_id = resp.json()["id"]
        task = hc.cluster.wait(lambda task_id=task_id: (t := hc.task(task_id))["state"] == "running" and t, 30,
                               "probe running")
        if task["nodeId"] != victim.id:
            raise RuntimeError(f"probe landed on {task['nodeId']}, not {victim.id}")
        hc.cluster.wait(lambda port=port: hc.answers(port), 15, "probe answering")
        t0 = time.monotonic()
        hc.kill_node(victim)
        dead_at = None
        deadline = t0 + 60
        while time.monotonic() < deadline:
            if dead_at is None:
                try:
                    status = {n["id"]: n["status"] for n in hc.api().get("/nodes", timeout=1).json()}
                    if status.get(victim.id) == "dead":
                        dead_at = time.monotonic()
                except (requests.RequestException, ValueError):
                    pass
            if hc.answers(port):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"trial {trial}: replacement not answering within 60 s")
        to_running.append(time.monotonic() - t0)
        to_dead.append((dead_at or time.monotonic()) - t0)
        print(f"node kill trial {trial + 1}: dead after {to_dead[-1]:.2f}s, answering after {to_running[-1]:.2f}s",
              flush=True)
        hc.api().delete(f"/tasks/{task_id}")
        hc.restart_node(victim)
        hc.cluster.wait(lambda: {n["id"]: n["status"] for n in hc.api().get("/nodes").json()}[victim.id] == "alive",
                        30, "victim alive again")
        hc.cluster.wait(lambda task_id=task_id: hc.task(task_id)["state"] in ("stopped", "lost"), 30,
                        "probe stopped")
        time.sleep(1.0)
    return to_running, to_dead


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--leader-trials", type=int, default=20)
    ap.add_argument("--node-trials", type=int, default=10)
    ap.add_argument("--out", default="bench/results/failover.json")
    args = ap.parse_args()
    engines = Engines(3)
    engines.start()
    out: dict = {}
    try:
        with tempfile.TemporaryDirectory() as root:
            for sub in ("leader", "node"):
                (Path(root) / sub).mkdir()
            hc = make_heal_cluster(Path(root) / "leader", engines)
            hc.cluster.start()
            try:
                out["leader_sigkill_to_write_s"] = summary(leader_failover(hc, args.leader_trials))
            finally:
                hc.stop_fast()
            hc = make_heal_cluster(Path(root) / "node", engines, label_names=True)
            hc.cluster.start()
            try:
                running, dead = node_reschedule(hc, args.node_trials)
                out["node_sigkill_to_dead_s"] = summary(dead)
                out["node_sigkill_to_replacement_answering_s"] = summary(running)
            finally:
                hc.stop_fast()
    finally:
        engines.destroy()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: {x: v[x] for x in ("trials", "p50", "p99")} for k, v in out.items()}, indent=2))


if __name__ == "__main__":
    main()
