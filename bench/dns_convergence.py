"""How soon another host's DNS and VIP answers follow a replica that dies or starts running.

    .venv/bin/python bench/dns_convergence.py [--reps 10] [--swarm] [--out bench/results/dns_convergence.json]

The lab of tests/netlab (three namespaces, each with its own dockerd, on an underlay bridge) with a
real ``orion agent`` on each host (tests/netlab/cluster_kit.py), the overlay made by the agents.
Two services of three replicas, one per host, without a health check (so the figures are the
propagation path alone, not a check's interval): ``conv`` in dnsrr mode, ``convip`` in vip mode.

Each repetition kills the container of one replica of each off host A (where the answers are read;
the replicas killed least so far), as a crash would (``docker kill``: the agent stays up), and times

* **dies -> DNS**: from the kill to A's DNS server (asked with dnspython from A's namespace every
  few ms) no longer answering that replica's address for ``conv.service.orion``;
* **dies -> VIP**: from the kill to A's load-balancer table (``nft list table ip orion-lb``) no
  longer holding ``convip``'s replica as a backend;
* **runs -> DNS** / **runs -> VIP**: from the replacement's container starting (its engine's
  ``State.StartedAt``: the restart policy starts it again after its backoff, on its node or, after
  a few local restarts, elsewhere) to A's answers holding its address.

"dies" includes the node noticing the exit (its reconcile pass: ``ORION_RECONCILE_INTERVAL`` is 1 s
in the lab, 2 s by default); "runs" includes reading the container's address and the report's Raft
commit. Clocks: the kill, the polls and Docker's StartedAt are all this machine's wall clock.

``--swarm``: the same for Docker Swarm, if a swarm with an overlay can be formed on the lab's own
engines (never the shared one). Swarm's VIP mode needs IPVS, which this kernel lacks, so only dnsrr
is tried; what happened is recorded either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests" / "netlab"), str(ROOT / "tests")]

from cluster_kit import IMAGE, Wired, a_records, ask, lab_cluster, lb_table  # noqa: E402
from netlab_kit import Lab  # noqa: E402

SERVE = "hostname > /www/index.html && exec httpd -f -p 80 -h /www"
POLL_S = 0.005


def spec(mode: str) -> dict:
    return {"image": IMAGE, "memory": "32M", "count": 3, "command": ["sh", "-c", SERVE], "endpointMode": mode,
            "portBindings": {"80/tcp": ""}, "restartPolicy": "always"}


def until(predicate: Callable[[], object], timeout: float, what: str) -> float:
    """Poll ``predicate`` until true; the wall-clock time it first was."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return time.time()
        except Exception:  # noqa: BLE001 - not there yet (a DNS timeout, an API hiccup)
            pass
        time.sleep(POLL_S)
    raise TimeoutError(f"{what}: not within {timeout:.0f} s")


def started_at(w: Wired, node_id: str, container_id: str) -> float:
    """When the container started, by its engine (the host of ``node_id``)."""
    client = w.host_of(node_id).client()
    try:
        return _rfc3339(client.api.inspect_container(container_id)["State"]["StartedAt"])
    finally:
        client.close()


def _rfc3339(raw: str) -> float:
    """Docker's StartedAt (nanoseconds, Z) as a POSIX time."""
    head, _, frac = raw.rstrip("Z").partition(".")
    return datetime.fromisoformat(head + "+00:00").timestamp() + float("0." + (frac or "0"))


def victim(w: Wired, service: str, killed: dict[str, int]) -> dict:
    """A running replica off host A (where the answers are read), the one killed least so far:
    a task killed again and again is restarted with a growing backoff and, after a few local
    restarts, placed elsewhere (orion/control/restart.py), so the kills go round."""
    not_a = w.node_of["a"].id
    candidates = [t for t in w.running(service) if t["nodeId"] != not_a]
    choice = min(candidates, key=lambda t: (killed.get(t["id"], 0), t["id"]))
    killed[choice["id"]] = killed.get(choice["id"], 0) + 1
    return choice


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_s": round(statistics.median(values), 3), "p99_s": round(pct(values, 0.99), 3),
            "max_s": round(max(values), 3), "values_s": [round(v, 3) for v in values]}


def one_rep(w: Wired, gw: str, runs: dict[str, list[float]], killed: dict[str, int]) -> str:
    """Kill one replica of each service off host A; time their leaving and their replacements'
    arrival (wherever the restart policy runs them). Returns where the victims ran."""
    a = w.lab.hosts["a"]

    def dns() -> set[str]:
        return {ip for ip, _ in a_records(ask(a, gw, "conv.service.orion"))}

    answers = {"dns": lambda ip: ip in dns(), "vip": lambda ip: ip in lb_table(a)}
    victims = {"dns": victim(w, "conv", killed), "vip": victim(w, "convip", killed)}
    until(lambda: all(answers[k](t["ip"]) for k, t in victims.items()), 30, "both replicas served")
    killed_at = time.time()
    for t in victims.values():
        engine = w.host_of(t["nodeId"]).client()
        engine.api.kill(t["containerId"])
        engine.close()
    for k, t in victims.items():
        runs[f"dies_{k}"].append(until(lambda k=k, t=t: not answers[k](t["ip"]), 30, f"{t['id']} out of A's {k}")
                                 - killed_at)
    for k, t in victims.items():
        new: dict = {}

        def replacement(t=t, new=new) -> bool:
            detail = w.api().get(f"/tasks/{t['id']}").json()
            if detail["state"] != "running" or not detail.get("ip") or detail.get("containerId") in (None,
                                                                                                      t["containerId"]):
                return False
            new.update(start=started_at(w, detail["nodeId"], detail["containerId"]), ip=detail["ip"])
            return True

        until(replacement, 90, f"{t['id']}'s replacement running")
        seen = until(lambda k=k, new=new: answers[k](new["ip"]), 30, f"{t['id']}'s replacement in A's {k}")
        runs[f"runs_{k}"].append(seen - new["start"])
    return ",".join(sorted({w.host_of(t["nodeId"]).name for t in victims.values()}))


def orion(reps: int) -> dict:
    t0 = time.monotonic()
    lab = Lab().up()
    cluster = lab_cluster(lab)
    w = Wired(lab, cluster, dict(zip(("a", "b", "c"), cluster.nodes, strict=True)))
    runs: dict[str, list[float]] = {"dies_dns": [], "dies_vip": [], "runs_dns": [], "runs_vip": []}
    try:
        cluster.start(timeout=180)
        api = w.api()
        cluster.wait(lambda: len(api.get("/cluster/network").json()["leases"]) == 3, 90, "three leases")
        for name, mode in (("conv", "dnsrr"), ("convip", "vip")):
            assert api.put(f"/services/{name}", json=spec(mode)).ok
        cluster.wait(lambda: len(w.running("conv")) == 3 and len(w.running("convip")) == 3, 180, "replicas running")
        node_a = next(n for n in api.get("/nodes").json() if n["id"] == w.node_of["a"].id)
        gw = node_a["subnet"].rsplit(".", 1)[0] + ".1"
        up_s = time.monotonic() - t0
        killed: dict[str, int] = {}
        for rep in range(reps):
            hosts = one_rep(w, gw, runs, killed)
            print(f"rep {rep + 1} ({hosts}): " + ", ".join(f"{k} {v[-1] * 1000:.0f} ms" for k, v in runs.items()),
                  flush=True)
    except BaseException:
        print(cluster.logs(40))
        raise
    finally:
        cluster.stop()
        lab.down()
    return {"runs": {k: summary(v) for k, v in runs.items()}, "bring_up_s": round(up_s, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--swarm", action="store_true", help="also try Docker Swarm (dnsrr) on the lab's engines")
    ap.add_argument("--swarm-only", action="store_true", help="Swarm alone, added to the figures already in --out")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "dns_convergence.json"))
    args = ap.parse_args()
    if args.swarm_only:
        from dns_convergence_swarm import swarm  # noqa: PLC0415
        report = json.loads(Path(args.out).read_text())
        report["swarm"] = swarm(args.reps)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report["swarm"]["runs"], indent=2))
        return 0
    report = {
        "what": "time from a replica dying (docker kill) or its replacement starting (State.StartedAt) to "
                "another host's DNS answer (dnsrr) and load-balancer backends (vip) changing; 3 lab hosts, "
                "one real agent each, services without health checks",
        "orion": orion(args.reps),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(), "load_1m": os.getloadavg()[0]},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if args.swarm:
        from dns_convergence_swarm import swarm  # noqa: PLC0415 - optional, needs the lab engines only
        report["swarm"] = swarm(args.reps)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    for k, v in report["orion"]["runs"].items():
        print(f"orion {k}: p50 {v['p50_s'] * 1000:.0f} ms, p99 {v['p99_s'] * 1000:.0f} ms (n={v['n']})")
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
