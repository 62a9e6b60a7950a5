"""Reproduce Lifeguard's central result: slow members cause false "dead"
declarations under plain SWIM, and Lifeguard removes almost all of them.

Simulated cluster; a fraction of members is CPU-starved (every message they
receive waits a random 0..D seconds before it is processed, timers still fire
on time). Over the same seeds we run plain SWIM and SWIM+Lifeguard and count
false positives: a member's own suspicion timer declaring a member dead that
did not crash. Some healthy members are also really crashed during each run to
measure detection latency of true failures.

    python bench/lifeguard_false_positives.py [--seeds 5] [--n 50] [--duration 300]

Writes bench/results/lifeguard_false_positives.{md,png}.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from pathlib import Path

from orion.gossip.config import GossipConfig
from orion.gossip.sim import Simulation

RESULTS = Path(__file__).parent / "results"


def run(cfg: GossipConfig, seed: int, n: int, slow_frac: float, delay: float, duration: float,
        crashes: int) -> dict:
    sim = Simulation(cfg, seed=seed)
    names = sim.start_cluster(n)
    rng = random.Random(seed)  # same slow set and crash schedule for both configs
    slow = set(rng.sample(names, max(1, int(n * slow_frac))))
    healthy = [x for x in names if x not in slow]
    crash_plan = sorted((rng.uniform(0.2, 0.7) * duration, v) for v in rng.sample(healthy, crashes))
    for s in slow:
        sim.set_slow(s, delay)
    crashed: dict[str, float] = {}
    detect: list[float] = []
    start = sim.now
    for at, victim in crash_plan:
        sim.run_until(lambda at=at: sim.now - start >= at, timeout=duration)
        sim.crash(victim)
        crashed[victim] = sim.now
        observers = [x for x in healthy if x not in crashed]
        t = sim.run_until(lambda v=victim, o=observers: sim.all_see(v, "dead", o), timeout=120)
        if t is not None:
            detect.append(t - crashed[victim])
    sim.run_until(lambda: False, timeout=max(0.0, start + duration - sim.now))
    fp_healthy = fp_slow = 0
    for e in sim.log:
        ev = e.event
        if ev.kind != "dead" or ev.source != e.observer:  # count each declaration where it was made
            continue
        victim = ev.member.name
        if victim in crashed and e.time >= crashed[victim]:
            continue
        if victim in slow:
            fp_slow += 1
        else:
            fp_healthy += 1
    return {"fp_healthy": fp_healthy, "fp_slow": fp_slow, "detect": detect}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--slow-frac", type=float, default=0.1)
    ap.add_argument("--delay", type=float, default=2.0, help="max per-message processing delay at slow members")
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--crashes", type=int, default=2)
    args = ap.parse_args()
    base = GossipConfig()
    configs = {"SWIM": base.plain_swim(), "Lifeguard": base}
    rows = {}
    t0 = time.time()
    for label, cfg in configs.items():
        per_seed = [run(cfg, s, args.n, args.slow_frac, args.delay, args.duration, args.crashes)
                    for s in range(1, args.seeds + 1)]
        detect = [d for r in per_seed for d in r["detect"]]
        rows[label] = {
            "fp_healthy": [r["fp_healthy"] for r in per_seed],
            "fp_slow": [r["fp_slow"] for r in per_seed],
            "detect_p50": statistics.median(detect) if detect else float("nan"),
            "detect_max": max(detect) if detect else float("nan"),
            "detected": f"{len(detect)}/{args.seeds * args.crashes}",
        }
        print(label, rows[label], f"({time.time() - t0:.0f} s)", flush=True)
    write(rows, args)


def write(rows: dict, args: argparse.Namespace) -> None:
    RESULTS.mkdir(exist_ok=True)
    swim, lg = rows["SWIM"], rows["Lifeguard"]
    tot = {k: (sum(v["fp_healthy"]), sum(v["fp_slow"])) for k, v in rows.items()}
    ratio_h = tot["SWIM"][0] / max(1, tot["Lifeguard"][0])
    ratio_all = sum(tot["SWIM"]) / max(1, sum(tot["Lifeguard"]))
    lat = lg["detect_p50"] / swim["detect_p50"]
    md = [
        "# Lifeguard vs plain SWIM: false positives with slow members",
        "",
        f"n={args.n}, {args.slow_frac:.0%} of members slow (each received message delayed U(0, {args.delay}) s),",
        f"{args.duration:.0f} s simulated per run, seeds 1..{args.seeds}, {args.crashes} real crashes per run.",
        "A false positive = a member's own suspicion timer declaring a non-crashed member dead.",
        "",
        "| config | false dead: healthy members | false dead: slow members | total | true crash detect p50 (s) |"
        " max (s) | detected |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in rows.items():
        h, s = tot[label]
        md.append(f"| {label} | {h} {r['fp_healthy']} | {s} {r['fp_slow']} | {h + s} | {r['detect_p50']:.2f} | "
                  f"{r['detect_max']:.2f} | {r['detected']} |")
    md += [
        "",
        f"Reduction, healthy members: **{ratio_h:.0f}x** (SWIM {tot['SWIM'][0]} vs Lifeguard {tot['Lifeguard'][0]},"
        " ratio computed against max(1, Lifeguard)); all members: "
        f"**{ratio_all:.0f}x**. Detection latency Lifeguard/SWIM p50: **{lat:.2f}x**.",
    ]
    (RESULTS / "lifeguard_false_positives.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    labels = list(rows)
    a1.bar([x + "\nhealthy" for x in labels], [tot[x][0] for x in labels], color=["tab:red", "tab:green"])
    a1.bar([x + "\nslow" for x in labels], [tot[x][1] for x in labels], color=["salmon", "lightgreen"])
    a1.set_ylabel(f"false 'dead' declarations ({args.seeds} runs)")
    a1.set_title("False positives")
    a2.bar(labels, [rows[x]["detect_p50"] for x in labels], color=["tab:red", "tab:green"])
    a2.set_ylabel("seconds")
    a2.set_title("True crash: time until all healthy see dead (p50)")
    fig.suptitle(f"Lifeguard vs SWIM, n={args.n}, {args.slow_frac:.0%} slow members (delay U(0,{args.delay}) s)")
    fig.tight_layout()
    fig.savefig(RESULTS / "lifeguard_false_positives.png", dpi=100)


if __name__ == "__main__":
    main()
