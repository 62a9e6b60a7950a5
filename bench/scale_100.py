"""A hundred real agents on one machine: join, agree, idle, lose ten (issue #14).

    .venv/bin/python bench/scale_100.py [--agents 100] [--spacing 0.05] [--kill 10]
                                        [--docker-host unix:///run/orion-test/docker.sock]
                                        [--out bench/results/scale_100.json] [--check]

Hold the integration lock while it runs (it takes the whole machine):

    flock -w 1500 /tmp/orion-it.lock timeout 1500 .venv/bin/python bench/scale_100.py

Starts one bootstrap agent and ``agents - 1`` joiners ``spacing`` seconds apart
(voter_cap 5), all real ``orion agent`` processes on loopback, and prints:

* time until all joined: every agent healthy, registered and admitted;
* voters and replicas (5 and the rest), the largest Raft term when all had joined,
  once settled and after the idle window (elections during the start, or also idle);
* digest agreement: any two agents that ever reported the same applied index
  reported the same digest, and at the end all stand at one index and digest;
* RSS and PSS per agent (gunicorn master + worker), idle CPU of the whole fleet
  over ``--idle`` seconds;
* then SIGKILL ``kill`` replicas at once: time until every survivor's gossip view
  calls each of them dead, time until the replicated registry says so, and false
  deaths (a live agent called dead by anyone, at any sample).

``--profile`` then samples the leader's and one replica's worker with py-spy for
``--idle`` seconds (``pip install py-spy``) and writes their collapsed stacks and
the functions that took the most samples to ``bench/results/scale_100_idle_*.txt``.

``--check`` exits 1 when a promise is broken (not joined, wrong voter count,
digests differing, a false death, a killed agent never declared dead).
Everything it starts is stopped, also on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from harness import Cluster, Node  # noqa: E402

RESULTS = Path(__file__).parent / "results"
VOTER_CAP = 5


def group_pids(leader_pid: int) -> list[int]:
    """Every process in the agent's process group (gunicorn master and worker)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == leader_pid:
                    pids.append(int(entry))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB."""
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError):
            continue
    return total


def fetch(node: Node, path: str, timeout: float = 5.0):
    try:
        resp = node.get(path, timeout=timeout)
        return resp.json() if resp.ok else None
    except (requests.RequestException, ValueError):
        return None


class Fleet:
    def __init__(self, cluster: Cluster, pool: ThreadPoolExecutor) -> None:
        self.cluster, self.pool = cluster, pool
        self.digests: dict[int, set[str]] = defaultdict(set)

    def raft_views(self, nodes: list[Node]) -> list[dict | None]:
        views = list(self.pool.map(lambda n: fetch(n, "/raft"), nodes))
        for v in views:
            if v is not None:
                self.digests[v["digestIndex"]].add(v["digest"])
        return views

    def gossip_views(self, nodes: list[Node]) -> dict[str, dict[str, str]]:
        """observer id -> {node id: gossip state} (what each survivor's gossip says)."""
        views = self.pool.map(lambda n: (n.id, fetch(n, "/nodes", timeout=10)), nodes)
        return {oid: {row["id"]: row.get("gossip", {}).get("state", "?") for row in rows}
                for oid, rows in views if rows is not None}

    def split_digests(self) -> dict[int, list[str]]:
        return {i: sorted(d) for i, d in self.digests.items() if len(d) > 1}


def run(args: argparse.Namespace) -> dict:
    root = Path(args.root or tempfile.mkdtemp(prefix="orion-scale-"))
    cluster = Cluster(root=root, docker_host=args.docker_host, size=args.agents,
                      extra_env={"ORION_VOTER_CAP": str(VOTER_CAP)})
    pool = ThreadPoolExecutor(max_workers=16)
    fleet = Fleet(cluster, pool)
    out: dict = {"agents": args.agents, "spacing_s": args.spacing, "voter_cap": VOTER_CAP, "problems": []}
    first = cluster.nodes[0]
    try:
        started = time.monotonic()
        cluster.start_node(first, bootstrap=True)
        for node in cluster.nodes[1:]:
            time.sleep(args.spacing)
            cluster.start_node(node, join=first)
        out["all_started_s"] = round(time.monotonic() - started, 1)

        def joined() -> bool:
            views = fleet.raft_views(cluster.nodes)
            registered = fetch(first, "/nodes", timeout=10) or []
            healthy = sum(1 for v in views if v is not None and v.get("admitted") and v.get("leader"))
            print(f"  {time.monotonic() - started:6.1f}s  admitted+leader {healthy}/{args.agents}, "
                  f"registered {len(registered)}", flush=True)
            return healthy == args.agents and len(registered) == args.agents

        cluster.wait(joined, args.join_timeout, "all agents joined", step=2.0)
        out["time_to_all_joined_s"] = round(time.monotonic() - started, 1)
        out["max_term_when_joined"] = max(v["term"] for v in fleet.raft_views(cluster.nodes) if v)

        def settled() -> bool:
            views = fleet.raft_views(cluster.nodes)
            return None not in views and len({(v["digestIndex"], v["digest"]) for v in views}) == 1

        try:
            cluster.wait(settled, 120, "one index and one digest everywhere", step=1.0)
            out["settled_at_one_digest"] = True
        except AssertionError:
            out["settled_at_one_digest"] = False
            out["problems"].append("the fleet never stood at one index with one digest within 120 s")
        views = fleet.raft_views(cluster.nodes)
        voters = [v for v in views if v and v["voter"]]
        out["voters"], out["replicas"] = len(voters), sum(1 for v in views if v and not v["voter"])
        out["max_term"] = max(v["term"] for v in views if v)
        out["resyncs"] = sum(v.get("resyncs", 0) for v in views if v)
        if out["voters"] != VOTER_CAP:
            out["problems"].append(f"{out['voters']} voters, expected {VOTER_CAP}")

        # Idle: memory and CPU of the whole fleet.
        time.sleep(args.settle)
        groups = {n.id: group_pids(n.proc.pid) for n in cluster.nodes if n.proc is not None}
        mems = [[memory_kib(pid) for pid in pids] for pids in groups.values()]
        rss = sorted(sum(r for r, _ in m) / 1024 for m in mems)
        pss = sorted(sum(p for _, p in m) / 1024 for m in mems)
        out["rss_mib_per_agent"] = {"median": round(rss[len(rss) // 2], 1), "max": round(rss[-1], 1)}
        out["pss_mib_per_agent"] = {"median": round(pss[len(pss) // 2], 1), "max": round(pss[-1], 1)}
        all_pids = [pid for pids in groups.values() for pid in pids]
        cpu0, t0 = cpu_seconds(all_pids), time.monotonic()
        time.sleep(args.idle)
        out["idle_cpu_cores_fleet"] = round((cpu_seconds(all_pids) - cpu0) / (time.monotonic() - t0), 3)
        out["max_term_after_idle"] = max(v["term"] for v in fleet.raft_views(cluster.nodes) if v)
        leader_pid = next(n.proc.pid for n, v in zip(cluster.nodes, views, strict=True) if v and v["is_leader"])
        leader_cpu0 = cpu_seconds(group_pids(leader_pid))
        time.sleep(5)
        out["idle_cpu_cores_leader"] = round((cpu_seconds(group_pids(leader_pid)) - leader_cpu0) / 5, 3)
        if args.profile:
            replica_pid = next(n.proc.pid for n, v in zip(cluster.nodes, views, strict=True) if v and not v["voter"])
            out["idle_profile"] = profile({"leader": leader_pid, "replica": replica_pid}, args.idle)

        # Kill replicas at once; every survivor must call them dead, and nobody else.
        replicas = [n for n, v in zip(cluster.nodes, views, strict=True) if v and not v["voter"]]
        victims = replicas[-args.kill:]
        survivors = [n for n in cluster.nodes if n not in victims]
        victim_ids = {n.id for n in victims}
        false_deaths: set[tuple[str, str]] = set()
        killed = time.monotonic()
        for node in victims:
            os.killpg(node.proc.pid, signal.SIGKILL)
        for node in victims:
            node.proc.wait(timeout=30)
            node.proc = None

        def all_dead() -> bool:
            seen = fleet.gossip_views(survivors)
            for observer, states in seen.items():
                false_deaths.update((observer, nid) for nid, st in states.items()
                                    if nid not in victim_ids and st == "dead")
            done = len(seen) == len(survivors) and all(
                states.get(v) == "dead" for states in seen.values() for v in victim_ids)
            print(f"  {time.monotonic() - killed:6.1f}s after the kill: "
                  f"{sum(all(s.get(v) == 'dead' for v in victim_ids) for s in seen.values())}"
                  f"/{len(survivors)} survivors see all {len(victims)} dead", flush=True)
            return done

        try:
            cluster.wait(all_dead, 120, "every survivor to call the killed dead", step=0.2)
            out["time_to_dead_everywhere_s"] = round(time.monotonic() - killed, 2)
        except AssertionError:
            out["problems"].append("not every survivor declared the killed agents dead within 120 s")

        def registry_dead() -> bool:
            rows = fetch(first if first in survivors else survivors[0], "/nodes", timeout=10) or []
            return sum(1 for r in rows if r["id"] in victim_ids and r["status"] == "dead") == len(victims)

        try:
            cluster.wait(registry_dead, 60, "the registry to mark them dead", step=0.2)
            out["time_to_dead_in_registry_s"] = round(time.monotonic() - killed, 2)
        except AssertionError:
            out["problems"].append("the replicated registry did not mark all killed agents dead within 60 s")
        time.sleep(5)  # keep watching for false deaths a little longer
        all_dead()
        out["false_deaths"] = sorted(f"{o} called {n} dead" for o, n in false_deaths)
        if false_deaths:
            out["problems"].append(f"{len(false_deaths)} false deaths")
        out["digest_splits"] = fleet.split_digests()
        if out["digest_splits"]:
            out["problems"].append("two digests reported at one applied index")
        out["indexes_compared"] = len(fleet.digests)
        return out
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all(cluster)
        print(f"agent logs and data: {root}")


def stop_all(cluster: Cluster) -> None:
    """SIGKILL every agent at once: a graceful stop of a hundred, one by one, would announce
    each restart to a cluster that is losing its voters, and wait for every one."""
    live = [n for n in cluster.nodes if n.proc is not None]
    for node in live:
        try:
            os.killpg(node.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for node in live:
        node.proc.wait(timeout=30)
        node.proc = None


def profile(groups: dict[str, int], seconds: float) -> dict[str, list[str]]:
    """py-spy on each group's worker (the newest process of the group: gunicorn forks it last)
    for ``seconds``, sampling only the thread that holds the GIL (CPU, not waiting); returns the
    top functions by samples, and writes the collapsed stacks."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    procs = {}
    for name, pgid in groups.items():
        worker = max(group_pids(pgid))
        dest = RESULTS / f"scale_100_idle_{name}.txt"
        procs[name] = (dest, subprocess.Popen([spy, "record", "--pid", str(worker), "--duration", str(int(seconds)),
                                               "--rate", "200", "--gil", "--format", "raw", "--output", str(dest)],
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    tops = {}
    for name, (dest, proc) in procs.items():
        proc.wait(timeout=seconds + 60)
        counts: dict[str, int] = defaultdict(int)
        total = 0
        for line in dest.read_text().splitlines() if dest.exists() else ():
            stack, _, n = line.rpartition(" ")
            frames = stack.split(";")
            # The innermost frame of ours or pysyncobj's (who spends it), and the leaf (on what).
            mine = [f for f in frames if "orion" in f or "pysyncobj" in f] or frames
            counts[mine[-1] if mine[-1] == frames[-1] else f"{mine[-1]} > {frames[-1]}"] += int(n)
            total += int(n)
        tops[name] = [f"{100 * c / total:4.1f}% {frame}" for frame, c in
                      sorted(counts.items(), key=lambda kv: -kv[1])[:10]] if total else []
    return tops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--spacing", type=float, default=0.05)
    parser.add_argument("--kill", type=int, default=10)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of idle CPU measurement")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds between joined and measuring")
    parser.add_argument("--join-timeout", type=float, default=600.0)
    parser.add_argument("--docker-host", default=os.environ.get("ORION_TEST_DOCKER_HOST",
                                                                "unix:///run/orion-test/docker.sock"))
    parser.add_argument("--root", default="")
    parser.add_argument("--out", default=str(RESULTS / "scale_100.json"))
    parser.add_argument("--check", action="store_true", help="exit 1 if a promise is broken")
    parser.add_argument("--profile", action="store_true", help="py-spy the idle leader and a replica")
    args = parser.parse_args()
    try:
        out = run(args)
    except AssertionError as exc:  # a wait that timed out: the figures so far are in the message
        print(str(exc)[-6000:])
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 1 if args.check and out["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
