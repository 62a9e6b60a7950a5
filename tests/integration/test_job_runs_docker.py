"""Jobs and scheduled jobs on real agents and a real Docker engine (issue #22).

* completions 5, parallelism 2, one attempt failing (the first to create a directory on a docker
  volume every attempt mounts; mkdir is atomic, so exactly one fails): 5 succeed, the failed one
  is retried, never more than 2 attempts run at once (polled every 100 ms);
* a job past its deadline fails, its attempt stopped;
* a job every 10 seconds (cron with seconds, on the leader's real clock): each slot runs once
  across a SIGKILL of the leader, never twice; with overlap ``forbid`` and runs longer than the
  period, slots are skipped while the previous run goes.
"""

from __future__ import annotations

import threading
import time
import uuid

from harness import Cluster
from modes_kit import BUSYBOX, api, started, tasks

ONCE = "if mkdir /flag/failed-once 2>/dev/null; then exit 1; fi; sleep 2; exit 0"


def runs(cluster: Cluster, name: str) -> list[dict]:
    return api(cluster).get(f"/services/{name}/runs").json()


def test_five_completions_two_at_a_time_one_failure_retried_and_a_deadline(request, tmp_path, docker_host,
                                                                          docker_client):
    volume = f"orion-test-flag-{uuid.uuid4().hex[:8]}"
    cluster = Cluster(root=tmp_path, docker_host=docker_host)
    try:
        with started(request, cluster, docker_client):
            spec = {"image": BUSYBOX, "memory": "16M", "command": ["sh", "-c", ONCE], "mode": "job",
                    "volumes": [{"source": volume, "target": "/flag", "type": "volume"}],
                    "job": {"completions": 5, "parallelism": 2, "retries": 2, "backoff": "1s"}}
            assert api(cluster).put("/services/batch", json=spec).status_code == 201
            most, stop = 0, threading.Event()

            def watch() -> None:
                nonlocal most
                while not stop.is_set():
                    try:
                        running = sum(t["state"] == "running" for t in tasks(cluster, "batch"))
                        most = max(most, running)
                    except Exception:  # noqa: BLE001 - an agent between two answers
                        pass
                    stop.wait(0.1)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            try:
                run = cluster.wait(lambda: next((r for r in runs(cluster, "batch") if r["state"] != "running"), None),
                                   180, "the run to end")
            finally:
                stop.set()
                watcher.join(5)
            assert (run["state"], run["succeeded"], run["failed"], run["attempts"]) == ("succeeded", 5, 1, 6), run
            assert most <= 2, f"{most} attempts ran at once"
            listed = api(cluster).get("/services").json()
            assert [(s["name"], s["mode"], s["job"]["lastRun"]["state"]) for s in listed] == \
                [("batch", "job", "succeeded")]

            late = {"image": BUSYBOX, "memory": "16M", "command": ["sleep", "600"], "mode": "job",
                    "job": {"deadline": "4s"}}
            assert api(cluster).put("/services/late", json=late).status_code == 201
            run = cluster.wait(lambda: next((r for r in runs(cluster, "late") if r["state"] != "running"), None),
                               90, "the late job to end")
            assert (run["state"], run["reason"]) == ("failed", "past its deadline of 4s")
            cluster.wait(lambda: all(t["state"] == "stopped" for t in tasks(cluster, "late")), 60,
                         "its attempt stopped")
    finally:
        try:
            docker_client.volumes.get(volume).remove(force=True)
        except Exception:  # noqa: BLE001 - never created, or already gone
            pass


def test_a_job_every_ten_seconds_runs_once_per_slot_across_a_leader_kill_and_forbid_skips(
        request, tmp_path, docker_host, docker_client):
    cluster = Cluster(root=tmp_path, docker_host=docker_host)
    with started(request, cluster, docker_client):
        tick = {"image": BUSYBOX, "memory": "16M", "command": ["sh", "-c", "sleep 1"], "mode": "job",
                "job": {"schedule": "*/10 * * * * *"}}
        slow = {**tick, "command": ["sh", "-c", "sleep 15"], "job": {"schedule": "*/10 * * * * *",
                                                                       "overlap": "forbid"}}
        assert api(cluster).put("/services/tick", json=tick).status_code == 201
        assert api(cluster).put("/services/slow", json=slow).status_code == 201
        listed = {s["name"]: s for s in api(cluster).get("/services").json()}
        assert listed["tick"]["job"]["nextRun"] > time.time() - 1
        cluster.wait(lambda: len(runs(cluster, "tick")) >= 2, 60, "two slots run")
        leader = cluster.leader()
        assert leader is not None
        cluster.kill(leader)  # SIGKILL: its decisions in flight die with it
        cluster.wait(lambda: cluster.leader() is not None, 60, "a new leader")
        killed_at = time.time()
        cluster.wait(lambda: max((r["slot"] for r in runs(cluster, "tick")), default=0) > killed_at + 20, 90,
                     "slots run after the kill")
        slots = [r["slot"] for r in runs(cluster, "tick")]
        assert len(slots) == len(set(slots)), f"a slot ran twice: {slots}"
        assert slots == sorted(slots)
        gaps = [b - a for a, b in zip(slots, slots[1:], strict=False)]
        assert all(g % 10 == 0 for g in gaps) and sum(g > 10 for g in gaps) <= 1, gaps  # at most the election's
        states = [r["state"] for r in runs(cluster, "slow")]
        assert "skipped" in states and "succeeded" in states, states
        skipped = next(r for r in runs(cluster, "slow") if r["state"] == "skipped")
        assert skipped["reason"].endswith("still running (overlap forbid)")
