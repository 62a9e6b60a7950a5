"""Overlay throughput beside the plain underlay path, two lab hosts, one run.

    .venv/bin/python bench/overlay_throughput.py [--reps 5] [--seconds 5] [--streams 1] \\
        [--out bench/results/overlay_throughput.json]

The lab of tests/netlab (two namespaces with their own dockerd on an underlay bridge, MTU 1500),
each host's datapath applied by the datapath loop (lab_agent.py once). Per repetition, in
alternation so drift hits both paths alike:

* ``underlay``: iperf3 between the two hosts' namespaces over their veths and the bridge: the
  path the VXLAN packets themselves take, without encapsulation;
* ``overlay``: iperf3 between a container on host A and one on host B over the overlay
  (container veth -> orion0 -> orion.1 -> VXLAN over the same underlay -> orion.1 -> orion0).

iperf3 is the host's (Debian package iperf3): the busybox image has none, so the server and
client run in the containers' network namespaces via nsenter. Prints the median Gbit/s of each
and overlay/underlay (goal >= 50 %). All of it shares this machine's cores: both ends and the
"wire" are one kernel, so the absolute numbers are CPU-bound; the ratio is the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "netlab"), str(ROOT / "tests")]

from agent_kit import Agents, lease  # noqa: E402
from netlab_kit import IMAGE, Lab  # noqa: E402

PORT = 5201


def iperf(server_ns: list[str], client_ns: list[str], target: str, seconds: int, streams: int) -> float:
    """Gbit/s received by the server side for one iperf3 run."""
    server = subprocess.Popen([*server_ns, "iperf3", "-s", "-1", "-p", str(PORT)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        out = subprocess.run([*client_ns, "iperf3", "-c", target, "-p", str(PORT), "-t", str(seconds),
                              "-P", str(streams), "-J"], capture_output=True, text=True,
                             timeout=seconds + 30, check=True)
    finally:
        server.wait(10)
    return json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--streams", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "overlay_throughput.json"))
    args = ap.parse_args()
    if shutil.which("iperf3") is None:
        print("iperf3 missing: scripts/ensure-test-tools.sh installs it", file=sys.stderr)
        return 1
    t0 = time.monotonic()
    lab = Lab(names=("a", "b"), strangers=()).up()
    try:
        up_s = time.monotonic() - t0
        a, b = lab.hosts["a"], lab.hosts["b"]
        agents = Agents(lab.workdir)
        leases = {"a": lease("a", "10.42.1.0/24", a.underlay_ip), "b": lease("b", "10.42.2.0/24", b.underlay_ip)}
        agents.set_leases(a, leases["a"], [leases["b"]])
        agents.set_leases(b, leases["b"], [leases["a"]])
        for h in (a, b):
            result = agents.once(h)
            if result["failed"]:
                raise RuntimeError(f"datapath on {h.netns}: {result['failed']}")
        pids, ips = {}, {}
        for h in (a, b):
            client = h.client()
            c = client.containers.run(IMAGE, ["sleep", "3600"], name=f"iperf-{h.name}", network="orion", detach=True)
            attrs = client.api.inspect_container(c.id)
            pids[h.name] = attrs["State"]["Pid"]
            ips[h.name] = attrs["NetworkSettings"]["Networks"]["orion"]["IPAddress"]
            client.close()
        in_ns = {h.name: ["ip", "netns", "exec", h.netns] for h in (a, b)}
        in_ct = {n: ["nsenter", "-t", str(p), "-n"] for n, p in pids.items()}
        runs: dict[str, list[float]] = {"underlay": [], "overlay": []}
        for rep in range(args.reps):
            runs["underlay"].append(iperf(in_ns["b"], in_ns["a"], str(b.underlay_ip), args.seconds, args.streams))
            runs["overlay"].append(iperf(in_ct["b"], in_ct["a"], ips["b"], args.seconds, args.streams))
            u, o = runs["underlay"][-1], runs["overlay"][-1]
            print(f"rep {rep + 1}: underlay {u:.2f} Gbit/s, overlay {o:.2f} Gbit/s", flush=True)
    finally:
        lab.down()
    med = {k: statistics.median(v) for k, v in runs.items()}
    ratio = med["overlay"] / med["underlay"]
    report = {
        "what": "iperf3 TCP, container->container over the VXLAN overlay vs namespace->namespace over the "
                "same veth/bridge underlay (MTU 1500; overlay MTU 1450), two lab hosts on one kernel",
        "reps": args.reps, "seconds": args.seconds, "streams": args.streams,
        "gbit_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "median_gbit_s": {k: round(v, 3) for k, v in med.items()},
        "overlay_over_underlay": round(ratio, 3),
        "goal": ">= 0.5",
        "lab_up_s": round(up_s, 2), "lab_timings_s": {k: round(v, 2) for k, v in lab.timings.items()},
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"underlay {med['underlay']:.2f} Gbit/s, overlay {med['overlay']:.2f} Gbit/s, "
          f"overlay/underlay {ratio:.0%} (goal >= 50 %); lab up in {up_s:.1f} s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
