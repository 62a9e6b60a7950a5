"""Time from a crash until *every* surviving member has declared it dead.

Simulated (default LAN config, 2 ms +- 2 ms latency) for n = 5, 20, 100 over
many seeds, and on real UDP loopback with n = 5 processes
(``python -m orion.gossip.transport``, default config, SIGKILL).

    python bench/gossip_detect.py [--trials 40] [--real-trials 3] [--no-real]

Writes bench/results/gossip_detect.{md,png}.
"""

from __future__ import annotations

import argparse
import json
import queue
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from orion.gossip.config import GossipConfig
from orion.gossip.sim import Simulation

RESULTS = Path(__file__).parent / "results"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def sim_trial(n: int, seed: int) -> float:
    sim = Simulation(GossipConfig(), seed=seed)
    names = sim.start_cluster(n)
    sim.run_for(random.Random(seed).uniform(1, 5))  # crash at a random phase of the probe cycle
    victim = random.Random(seed).choice(names)
    sim.crash(victim)
    t0 = sim.now
    t = sim.run_until(lambda: sim.all_see(victim, "dead"), timeout=120)
    assert t is not None
    return t - t0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        t.bind(("127.0.0.1", 0))
        return int(t.getsockname()[1])


def real_trial(n: int) -> float:
    ports = [free_port() for _ in range(n)]
    procs, events = [], queue.Queue()

    def reader(p: subprocess.Popen) -> None:
        for line in p.stdout:  # type: ignore[union-attr]
            events.put(json.loads(line))

    for i in range(n):
        cmd = [sys.executable, "-m", "orion.gossip.transport", "--name", f"r{i}", "--bind", f"127.0.0.1:{ports[i]}"]
        if i:
            cmd += ["--join", f"127.0.0.1:{ports[0]}"]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        threading.Thread(target=reader, args=(p,), daemon=True).start()
        procs.append(p)
    try:
        joins: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 30
        while len(joins) < n * (n - 1):
            e = events.get(timeout=max(0.01, deadline - time.monotonic()))
            if e["event"] == "join":
                joins.add((e["node"], e["name"]))
        time.sleep(2.0)
        procs[-1].send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        dead: set[str] = set()
        while len(dead) < n - 1:
            e = events.get(timeout=60)
            if e["event"] == "dead" and e["name"] == f"r{n - 1}":
                dead.add(e["node"])
        return time.monotonic() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--real-trials", type=int, default=3)
    ap.add_argument("--no-real", action="store_true")
    args = ap.parse_args()
    rows: dict[str, list[float]] = {}
    for n in (5, 20, 100):
        t0 = time.time()
        trials = args.trials if n < 100 else max(10, args.trials // 2)
        rows[f"sim n={n}"] = [sim_trial(n, s) for s in range(trials)]
        print(f"sim n={n}: {summary(rows[f'sim n={n}'])} ({time.time() - t0:.0f} s wall)", flush=True)
    if not args.no_real:
        rows["real UDP n=5"] = [real_trial(5) for _ in range(args.real_trials)]
        print(f"real UDP n=5: {summary(rows['real UDP n=5'])}", flush=True)
    write(rows)


def summary(xs: list[float]) -> str:
    return f"p50={statistics.median(xs):.2f}s p99={pct(xs, 99):.2f}s max={max(xs):.2f}s (k={len(xs)})"


def write(rows: dict[str, list[float]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    md = [
        "# Time to declare a crashed member dead (by every survivor)",
        "",
        "Default LAN config (probe 1 s, timeout 500 ms, suspicion mult 4, max mult 6). Goal: <= 6 s at n <= 10.",
        "",
        "| setup | trials | p50 (s) | p99 (s) | max (s) |",
        "|---|---|---|---|---|",
    ]
    for label, xs in rows.items():
        md.append(f"| {label} | {len(xs)} | {statistics.median(xs):.2f} | {pct(xs, 99):.2f} | {max(xs):.2f} |")
    (RESULTS / "gossip_detect.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.boxplot(list(rows.values()), tick_labels=list(rows), whis=(1, 99))
    ax.axhline(6.0, ls="--", color="grey", label="goal at n <= 10")
    ax.set_ylabel("seconds until all survivors declare dead")
    ax.legend()
    ax.set_title("Crash detection latency")
    fig.tight_layout()
    fig.savefig(RESULTS / "gossip_detect.png", dpi=100)


if __name__ == "__main__":
    main()
