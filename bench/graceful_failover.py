"""Leader SIGTERM (hand-over) against leader SIGKILL (election), in one run (issue #11).

    flock /tmp/orion-it.lock .venv/bin/python bench/graceful_failover.py [--trials 12]
                                              [--out bench/results/graceful_failover.json]

A real 3-node loopback cluster on one Docker engine (``ORION_TEST_DOCKER_HOST``,
else ``DOCKER_HOST``); no container is started: the writes are tasks no node
matches, so only Raft and the API are measured. Trials alternate SIGTERM and
SIGKILL of the current leader, so both see the same machine and the same load.

The figure is the write outage: a write to a follower starts every 20 ms, each on
its own thread (``tests/integration/write_probe.py``), and the outage is the
longest stretch after the signal with no acknowledgement. For SIGKILL that is
gossip-free Raft failover (an election timeout, then a vote); for SIGTERM the
agent announces ``restarting`` and hands leadership over (Raft TimeoutNow)
before it goes. The old measure of ``bench/failover_bench.py`` (first
acknowledgement among writes sent after the fault) is kept beside it for SIGKILL;
for SIGTERM it is meaningless (the old leader keeps acknowledging until it hands over).

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

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster  # noqa: E402
from write_probe import WriteProbe  # noqa: E402

MiB = 1024 * 1024
IMAGE = "orion/busybox:latest"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def summary(values: list[float]) -> dict:
    return {"trials": len(values), "p50": round(pct(values, 50), 3), "p99": round(pct(values, 99), 3),
            "min": round(min(values), 3), "max": round(max(values), 3),
            "mean": round(statistics.mean(values), 3), "values": [round(v, 3) for v in values]}


def trial(cluster: Cluster, sig: int, n: int) -> tuple[float, float]:
    """(outage, first ack after the fault) for one leader stop by ``sig``."""
    leader = cluster.wait(cluster.leader, 30, "a leader")
    follower = next(node for node in cluster.live() if node is not leader)
    key = f"graceful-{n}"

    def write() -> bool:
        resp = requests.post(follower.url + "/tasks", timeout=5, headers={"Idempotency-Key": key},
                             json={"image": IMAGE, "memory": 8 * MiB, "nodeSelectors": {"bench": "nowhere"}})
        return resp.status_code in (200, 201)

    with WriteProbe(write, period=0.02) as probe:
        cluster.wait(lambda: probe.acked_since(time.monotonic() - 0.5) > 0, 10, "writes acknowledged")
        fault = time.monotonic()
        assert leader.proc is not None
        os.killpg(leader.proc.pid, sig)
        leader.proc.wait(timeout=30)
        leader.proc = None
        probe.wait_settled(fault, after=2.0)
        outage = probe.longest_gap(fault)
        first = probe.first_ack_sent_after(fault)
    cluster.restart(leader)
    cluster.wait(lambda: {x["id"]: x["status"] for x in follower.get("/nodes").json()}[leader.id] == "alive",
                 30, "the stopped leader alive again")
    time.sleep(1.0)  # let it catch up before the next trial
    return outage, first


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=12, help="trials per signal")
    ap.add_argument("--out", default="bench/results/graceful_failover.json")
    args = ap.parse_args()
    docker_host = os.environ.get("ORION_TEST_DOCKER_HOST") or os.environ.get("DOCKER_HOST")
    if not docker_host:
        raise SystemExit("set ORION_TEST_DOCKER_HOST (scripts/ensure-dockerd.sh starts one)")
    runs: dict[str, list[tuple[float, float]]] = {"sigterm": [], "sigkill": []}
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(root=Path(root), docker_host=docker_host)
        try:
            cluster.start()
            for n in range(args.trials):
                for name, sig in (("sigterm", signal.SIGTERM), ("sigkill", signal.SIGKILL)):
                    outage, first = trial(cluster, sig, 2 * n + (name == "sigkill"))
                    runs[name].append((outage, first))
                    print(f"{name} trial {n + 1}: outage {outage:.3f}s, first ack after {first:.3f}s", flush=True)
        finally:
            cluster.stop()
    out = {
        "leader_sigterm_write_outage_s": summary([o for o, _ in runs["sigterm"]]),
        "leader_sigkill_write_outage_s": summary([o for o, _ in runs["sigkill"]]),
        "leader_sigkill_first_ack_after_s": summary([f for _, f in runs["sigkill"]]),
        "setup": "3 agents on loopback, one engine, 2 vCPUs; write probe every 20 ms on its own thread; "
                 "trials alternate SIGTERM and SIGKILL of the current leader",
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: {x: v[x] for x in ("trials", "p50", "p99")} for k, v in out.items() if isinstance(v, dict)},
                     indent=2))


if __name__ == "__main__":
    main()
