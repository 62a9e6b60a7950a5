"""A Jepsen-style run against a real cluster: clients record a history while a nemesis breaks nodes.

* **The register**: one service per key. A write is ``PUT /services/<key>`` with
  a fresh value in the spec (``healthCheck.exec[1]``: an in-place field, so a
  write starts no rollout; the one replica can never be placed — its selector
  matches no node — so no container is ever made); a read is ``GET
  /services/<key>`` (404: no value yet). Values are unique (``<client>.<n>``).
* **Clients** (threads of this process): each picks a key, a read or a write and
  a random node (a dead one too: its refusal is part of the history), and
  records the call and answer on one ``time.monotonic`` clock. Outcomes: a 2xx
  (or a read's 404) is OK; a 4xx or a refused connection is FAIL (it never
  happened); a timeout, a dropped connection or a 5xx is UNKNOWN (it may have
  happened, then or later).
* **The nemesis** (this thread), one fault at a time, each healed before the
  next so a quorum always exists: SIGKILL an agent then restart it, SIGSTOP one
  for a few seconds, cut one off (``lincheck_partition.py``; before healing, the
  victim's own view must show the cut held). The victim is the leader half the
  time. The schedule comes from the seed (printed; replay with
  ``ORION_LINCHECK_SEED``); what the leader is when it strikes does not.
* **Afterwards** every node is healed and caught up, every key is read on every
  node (those reads join the history), and the checker
  (``tests/linearizability_report.py``) judges; ``lost_writes`` lists the
  acknowledged writes the final state lost.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from harness import Cluster, Node
from lincheck_partition import Partitioner
from linearizability import ABSENT, READ, WRITE, Op, Status
from linearizability_report import Report, check, lost_writes

# The replica's selector matches no node: the service exists, nothing ever runs.
NOWHERE = {"orion-lincheck": "nowhere"}
READ_TIMEOUT = 2.0
WRITE_TIMEOUT = 6.0  # past the agent's own write_timeout (5 s), so it usually answers first
# How long past its hold a cut may take to show on the victim (its connection timeout, ~3.5 s, and more).
CONFIRM_WITHIN = 5.0


def spec(value: str, image: str) -> dict[str, Any]:
    return {"image": image, "memory": "8M", "count": 1, "nodeSelectors": NOWHERE,
            "healthCheck": {"exec": ["true", value], "interval": "1m"}}


def value_of(body: dict[str, Any]) -> str:
    return body["spec"]["healthCheck"]["exec"][1]


def _refused(exc: requests.RequestException) -> bool:
    """Whether the request never left: no connection was made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return type(reason).__name__ == "NewConnectionError"


def stale_query(node: Node) -> str:
    """``?stale`` if this build knows it; "" if it refuses it as an unknown parameter (a build
    whose plain reads are all local ones, like every build before issue #20)."""
    resp = node.get("/services/lincheck-probe?stale")
    if resp.status_code == 400 and resp.json().get("field") == "stale":
        return ""
    return "?stale"


@dataclass
class Workload:
    keys: list[str]
    clients: int = 5
    write_share: float = 0.4
    stale: bool = False  # reads ask for ``?stale`` where the API knows it (see ``stale_query``)
    image: str = "orion/busybox:latest"
    think: tuple[float, float] = (0.005, 0.03)  # seconds between a client's operations


class Clients:
    """The client threads and the history they record (appends from many threads: CPython's
    list.append is atomic)."""

    def __init__(self, nodes: list[Node], workload: Workload, seed: int) -> None:
        self.nodes, self.workload, self.seed = nodes, workload, seed
        self.history: list[Op] = []
        self.query = stale_query(nodes[0]) if workload.stale else ""
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(f"c{i}",), daemon=True)
                        for i in range(workload.clients)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=WRITE_TIMEOUT + 5)

    def _run(self, name: str) -> None:
        rng = random.Random(f"{self.seed}-{name}")
        n = 0
        while not self.stop.is_set():
            key, node = rng.choice(self.workload.keys), rng.choice(self.nodes)
            if rng.random() < self.workload.write_share:
                n += 1
                self.history.append(self.write(name, node, key, f"{name}.{n}"))
            else:
                self.history.append(self.read(name, node, key, self.query))
            time.sleep(rng.uniform(*self.workload.think))

    def write(self, name: str, node: Node, key: str, value: str) -> Op:
        call = time.monotonic()
        try:
            resp = requests.put(f"{node.url}/services/{key}", json=spec(value, self.workload.image),
                                timeout=WRITE_TIMEOUT)
        except requests.RequestException as exc:
            status = Status.FAIL if _refused(exc) else Status.UNKNOWN
            return Op(name, key, WRITE, value, call, time.monotonic() if status is Status.FAIL else math.inf,
                      status, node=node.id)
        ret = time.monotonic()
        if resp.status_code < 300:
            return Op(name, key, WRITE, value, call, ret, Status.OK, node=node.id)
        if resp.status_code < 500:
            return Op(name, key, WRITE, value, call, ret, Status.FAIL, node=node.id)
        return Op(name, key, WRITE, value, call, math.inf, Status.UNKNOWN, node=node.id)

    def read(self, name: str, node: Node, key: str, query: str = "") -> Op:
        call = time.monotonic()
        try:
            resp = requests.get(f"{node.url}/services/{key}{query}", timeout=READ_TIMEOUT)
        except requests.RequestException as exc:
            status = Status.FAIL if _refused(exc) else Status.UNKNOWN
            return Op(name, key, READ, None, call, time.monotonic() if status is Status.FAIL else math.inf,
                      status, node=node.id)
        ret = time.monotonic()
        if resp.status_code == 200:
            return Op(name, key, READ, value_of(resp.json()), call, ret, Status.OK, node=node.id)
        if resp.status_code == 404:
            return Op(name, key, READ, ABSENT, call, ret, Status.OK, node=node.id)
        return Op(name, key, READ, None, call, ret, Status.FAIL, node=node.id)  # a refusal says nothing


@dataclass
class Nemesis:
    """One fault at a time from a seeded schedule; ``heal_all`` undoes whatever is in force."""

    cluster: Cluster
    cuts: Partitioner
    rng: random.Random
    events: list[tuple[float, str]] = field(default_factory=list)
    paused: Node | None = None
    killed: Node | None = None

    def note(self, text: str) -> None:
        self.events.append((time.monotonic(), text))

    def run(self, until: float) -> None:
        kinds: list[str] = []
        while time.monotonic() < until:
            time.sleep(self.rng.uniform(1.0, 2.5))
            if not kinds:  # every kind once per round, in a seeded order
                kinds = self.rng.sample(["kill", "pause", "partition"], 3)
            kind, at_leader, hold = kinds.pop(), self.rng.random() < 0.5, self.rng.uniform(2.0, 5.0)
            if kind == "partition":  # long enough for a cut-off leader to notice (pysyncobj: ~3.5 s)
                hold += 2.0
            pick = self.rng.random()
            candidates = self.cuts.victims() if kind == "partition" else self.cluster.nodes
            leader = self.cluster.leader() if at_leader else None
            victim = leader if any(c is leader for c in candidates) else candidates[int(pick * len(candidates))]
            role = "leader" if victim is leader else "node"
            self.note(f"{kind} {victim.id} ({role}) for {hold:.1f}s")
            if kind == "kill":
                self.cluster.kill(victim)
                self.killed = victim
            elif kind == "pause":
                os.killpg(victim.proc.pid, signal.SIGSTOP)
                self.paused = victim
            else:
                self.cuts.cut(victim)
            time.sleep(hold)
            if kind == "partition":
                self.confirm_cut(victim)
            self.heal_all()

    def confirm_cut(self, victim: Node, within: float = CONFIRM_WITHIN) -> None:
        """Note whether the cut really isolated ``victim``: it has lost its leader or its quorum,
        or (a deposed leader that has not noticed yet) the others follow someone else.

        Asked until it holds or ``within`` more seconds pass: a victim notices a silent peer
        only after pysyncobj's connection timeout (~3.5 s), and applying the cut's rules takes
        a part of a short hold. A cut that leaks never holds, however long it is asked."""
        deadline = time.monotonic() + within
        while True:
            try:
                seen = victim.get("/raft", timeout=2).json()
                others = {o.get("/raft", timeout=2).json()["leader"] for o in self.cluster.nodes if o is not victim}
            except (requests.RequestException, ValueError, KeyError) as exc:
                self.note(f"cut UNCONFIRMED on {victim.id}: {exc}")
                return
            held = seen["leader"] is None or not seen["has_quorum"] or {seen["leader"]} != others
            if held or time.monotonic() >= deadline:
                break
            time.sleep(0.25)
        self.note(f"cut {'held' if held else 'LEAKED'} on {victim.id}: it sees leader {seen['leader']} "
                  f"(quorum {seen['has_quorum']}), the others {sorted(map(str, others))}")

    def heal_all(self) -> None:
        if self.paused is not None:
            if self.paused.proc is not None:
                os.killpg(self.paused.proc.pid, signal.SIGCONT)
            self.note(f"resume {self.paused.id}")
            self.paused = None
        if self.cuts.victim is not None:
            self.note(f"heal {self.cuts.victim.id}")
            self.cuts.heal()
        if self.killed is not None:
            self.note(f"restart {self.killed.id}")
            node, self.killed = self.killed, None
            self.cluster.restart(node)
        self.cluster.wait(lambda: all(n.healthy() for n in self.cluster.nodes), 60, "every node healthy")
        self.note("healthy")


def caught_up(cluster: Cluster) -> int:
    """Wait until every replica has applied the same index, twice in a row; returns it."""
    seen: list[int] = []

    def same() -> bool:
        indexes = {n.get("/raft", timeout=2).json()["applied_index"] for n in cluster.nodes}
        seen.append(indexes.pop() if len(indexes) == 1 else -1)
        return len(seen) > 1 and seen[-1] == seen[-2] != -1

    cluster.wait(same, 60, "every replica at the same applied index", step=0.3)
    return seen[-1]


@dataclass
class Run:
    seed: int
    seconds: float
    history: list[Op]
    events: list[tuple[float, str]]
    final: dict[str, Any]
    lost: list[Op]
    report: Report
    wall: float
    check_time: float
    partitions_any_node: bool
    reads: str  # what the clients' reads asked for

    def summary(self) -> str:
        ops = Counter((op.f, op.status.value) for op in self.history if op.process != "final")
        stale = self.report.stale
        behind = [s.behind for s in stale]
        per_node = Counter(s.read.node for s in stale)
        faults = Counter(text.split()[0] for _, text in self.events if text.split()[0] in ("kill", "pause",
                                                                                        "partition"))
        t0 = self.report.origin
        lines = [
            f"seed {self.seed} (replay: ORION_LINCHECK_SEED={self.seed}), {self.seconds:.0f}s of faults, "
            f"reads {self.reads}, wall {self.wall:.1f}s (checker {self.check_time:.1f}s)",
            "operations: " + ", ".join(f"{f} {s} {n}" for (f, s), n in sorted(ops.items())),
            "faults: " + ", ".join(f"{k} {n}" for k, n in sorted(faults.items()))
            + ("" if self.partitions_any_node else " (partitions: lowest-addressed node only, no cgroup v2)"),
            f"stale reads: {len(stale)} of {ops[(READ, 'ok')]} answered"
            + (f", behind median {statistics.median(behind) * 1000:.0f} ms, worst {max(behind) * 1000:.0f} ms; "
               f"per node {dict(sorted(per_node.items()))}" if stale else ""),
            f"lost acknowledged writes: {len(self.lost)}"
            + "".join(f"\n    {op.describe()} at {op.call - t0:.3f}" for op in self.lost[:10]),
            self.report.text(),
            "nemesis: " + "; ".join(f"{t - t0:.1f} {text}" for t, text in self.events),
        ]
        return "\n".join(lines)


    def dump(self, folder: Path) -> Path:
        """The summary and the whole history (one JSON op a line, times in s after the first call;
        ``ret`` null: unknown) into ``folder``, for a look or another checker."""
        folder.mkdir(parents=True, exist_ok=True)
        base = folder / f"lincheck-{self.seed}-{self.reads.split()[0].strip('?')}"
        base.with_suffix(".txt").write_text(self.summary() + "\n")
        t0 = self.report.origin
        with base.with_suffix(".jsonl").open("w") as out:
            for op in sorted(self.history, key=lambda op: op.call):
                out.write(json.dumps({"process": op.process, "node": op.node, "key": op.key, "f": op.f,
                                      "value": op.value, "status": op.status.value, "call": round(op.call - t0, 6),
                                      "ret": None if op.ret == math.inf else round(op.ret - t0, 6)}) + "\n")
        return base


def run(cluster: Cluster, seed: int, seconds: float, workload: Workload) -> Run:
    """Clients for ``seconds`` under the nemesis, then heal, read everything back, check."""
    start = time.monotonic()
    cuts = Partitioner(cluster.nodes)
    nemesis = Nemesis(cluster, cuts, random.Random(seed))
    clients = Clients(cluster.nodes, workload, seed)
    try:
        clients.start()
        nemesis.run(time.monotonic() + seconds)
    finally:
        clients.finish()
        try:
            nemesis.heal_all()
        finally:
            cuts.close()
    caught_up(cluster)
    final: dict[str, Any] = {}
    history = list(clients.history)
    for key in workload.keys:
        for node in cluster.nodes:
            op = clients.read("final", node, key)
            assert op.status is Status.OK, f"final read of {key} on {node.id}: {op.describe()}"
            history.append(op)
            final.setdefault(key, op.value)
    began = time.monotonic()
    report = check(history)
    lost = lost_writes(history, final)
    return Run(seed, seconds, history, nemesis.events, final, lost, report,
               time.monotonic() - start, time.monotonic() - began, len(cuts.victims()) > 1,
               clients.query or ("plain (this build has no ?stale)" if workload.stale else "default"))
