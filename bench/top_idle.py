"""``orion top`` on a 3-node cluster with 1,000 tasks: CPU while idle, and time to the screen.

    .venv/bin/python bench/top_idle.py [--tasks 1000] [--idle 30] [--changes 20]

Real agents on loopback with no Docker engine (the engine socket does not
exist): the leader places the tasks, nothing runs them, so they stay
``assigned`` and the cluster is quiet. ``orion top`` runs in a tmux pane.

- Idle CPU: utime+stime of the ``orion top`` process from /proc/<pid>/stat over
  ``--idle`` seconds while nothing changes. Goal <= 2% of one core.
- Change to screen: a task is written (POST /tasks to the leader) and the pane is
  polled (tmux capture-pane, every 10 ms) until the tasks panel's count shows it.
  Goal p50 <= 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster  # noqa: E402

ORION = str(Path(sys.executable).parent / "orion")
NO_ENGINE = "unix:///nonexistent/orion-bench-docker.sock"


def pane(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def wait_screen(session: str, total: int, timeout: float, step: float = 0.01) -> float:
    """Poll until the tasks panel's title counts ``total`` tasks ("tasks (N of TOTAL...")."""
    needle = re.compile(rf"of {total}\b")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle.search(pane(session)):
            return time.perf_counter()
        time.sleep(step)
    raise RuntimeError(f"{needle!r} not on the screen after {timeout}s:\n{pane(session)}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--out", default="bench/results/top_idle.json")
    args = parser.parse_args()
    session = f"orion-top-bench-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as root:
        cluster = Cluster(root=Path(root), docker_host=NO_ENGINE)
        try:
            cluster.start()
            leader = cluster.wait(cluster.leader, 30, "a leader")
            for _ in range(args.tasks // 100):
                leader.post("/tasks", timeout=120, json={"image": "busybox", "memory": "8M", "count": 100})
            cluster.wait(lambda: sum(t["state"] == "assigned" for t in leader.get("/tasks").json()) == args.tasks,
                         120, "every task placed")
            subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "160", "-y", "50",
                            f"exec {ORION} --addr {leader.url} top"], check=True)
            pid = int(subprocess.run(["tmux", "list-panes", "-t", session, "-F", "#{pane_pid}"],
                                     capture_output=True, text=True, check=True).stdout.split()[0])
            wait_screen(session, args.tasks, 30)
            time.sleep(5)  # past start-up
            index_before = leader.get("/raft").json()["applied_index"]
            cpu0, t0 = cpu_seconds(pid), time.monotonic()
            time.sleep(args.idle)
            idle_share = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
            index_after = leader.get("/raft").json()["applied_index"]
            latencies = []
            for i in range(args.changes):
                total = args.tasks + i + 1
                start = time.perf_counter()
                leader.post("/tasks", json={"image": "busybox", "memory": "8M", "nodeSelectors": {"x": "nowhere"}})
                latencies.append(wait_screen(session, total, 10) - start)
                time.sleep(0.2)
            subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
            cluster.stop()
    result = {
        "tasks": args.tasks,
        "idle_seconds": args.idle,
        "idle_cpu_percent_of_one_core": round(idle_share * 100, 2),
        "raft_index_moved_while_idle": index_after - index_before,
        "changes": len(latencies),
        "change_to_screen_p50_s": round(statistics.median(latencies), 3),
        "change_to_screen_max_s": round(max(latencies), 3),
        "goals": {"idle_cpu_percent": 2.0, "change_to_screen_p50_s": 0.5},
    }
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
