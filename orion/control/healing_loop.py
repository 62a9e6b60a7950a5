"""The leader's healing loop: liveness, lost tasks, restarts, drains, Raft membership.

Runs on every node and acts only while this node is the Raft leader, like the
scheduler loop (``orion/control/placement_loop.py``), which then places what this loop made
placeable. Each pass reads one snapshot, asks the pure deciders
(``liveness``, ``healing``, ``drain``, ``autopilot``) and submits what they return, one
Raft command per decision; every command is re-checked by the state machine
(node, generation), so a decision made on a stale view, or by a leader that
has just been deposed, is refused rather than applied twice.

State kept here is only the leader's clock-based bookkeeping (when it first
saw a task end, a node go or start draining); it is dropped on losing
leadership, so a new leader starts its own clocks: that is the failover grace
for restarts and voter cleanup, and a drain deadline that starts again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence

import requests

from orion.control import drain, healing
from orion.control.restart import RestartConfig
from orion.domain.model import COMPLETED, FAILED, NODE_DEAD, NODE_LEFT, NodeInfo
from orion.loop import PassResult, run_loop, wake_on_leader
from orion.membership import autopilot
from orion.membership.liveness import LivenessSource
from orion.peer_http import PeerHttp
from orion.state.commands import Command, ReportTaskState
from orion.state.results import Placed, Refused
from orion.store.admission import VOTER
from orion.store.port import Store, StoreError

log = logging.getLogger("orion.healer")

# Seconds between a pass's end and the next one when woken by every apply: the
# healer's own writes wake it, and a burst of applies needs one pass, not fifty.
_MIN_GAP = 0.05
# Probing a non-voter's API (autopilot): a short timeout, it runs on the leader's loop.
_PROBE_TIMEOUT = 0.5


def probe_api(peer: PeerHttp, nodes: Collection[NodeInfo]) -> set[str]:
    """Ids of nodes whose agent answers HTTP at all (any status: a non-voter has no leader).
    ``peer`` speaks the cluster's scheme, TLS and token: with mTLS a probe without the
    agent's certificate would never be answered."""
    up = set()
    for node in nodes:
        try:
            peer.get(node.api_addr, "/health", timeout=_PROBE_TIMEOUT)
            up.add(node.id)
        except requests.RequestException:
            pass
    return up


class HealingLoop:
    """One thread; ``run_once`` is one pass and returns what it did."""

    def __init__(self, store: Store, liveness: LivenessSource, restart_cfg: RestartConfig,
                 autopilot_cfg: autopilot.AutopilotConfig, interval: float, write_timeout: float,
                 drain_cfg: drain.DrainSettings,
                 on_reschedule: Callable[[str, int], object] | None = None,
                 probe: Callable[[Collection[NodeInfo]], set[str]] | None = None,
                 mono: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self._liveness = liveness
        self._restart = restart_cfg
        self._autopilot = autopilot_cfg
        self._interval = interval
        self._timeout = write_timeout
        # Told (cause, count) for each committed command that hands a wanted task back to the
        # scheduler (healing.RESCHEDULE_CAUSES): the agent points it at its metrics.
        self._on_reschedule = on_reschedule or (lambda _cause, _count: None)
        self._probe = probe
        self._mono, self._wall = mono, wall
        self._ended_at: dict[tuple[str, int], float] = {}
        self._gone_since: dict[str, float] = {}
        self._drain = drain_cfg
        self._left_since: dict[str, float] = {}  # monotonic: when this leader first saw a node left
        self._running_since: dict[tuple[str, int], float] = {}  # ... and a migration's replacement running
        self._wake = threading.Event()
        store.add_listener(wake_on_leader(store, self._wake))

    def _reset(self) -> None:
        self._ended_at.clear()
        self._gone_since.clear()
        self._left_since.clear()
        self._running_since.clear()

    def _submit_all(self, commands: Sequence[Command]) -> list[Command]:
        """Submit in order; return the commands the state machine accepted."""
        done = []
        for command in commands:
            result = self._store.submit(command, self._timeout)
            if not isinstance(result, Refused):
                done.append(command)
        return done

    def run_once(self) -> PassResult[None]:
        if not self._store.is_leader():
            self._reset()
            self._liveness.poll(self._mono())  # let it drop its leader view too
            return PassResult("not leader")
        parts: list[str] = []
        status_changes = self._liveness.poll(self._mono())
        if status_changes and self._submit_all(status_changes):
            parts.append("node status " + ", ".join(f"{c.node_id}={c.status}" for c in status_changes))

        def snapshot(m):  # noqa: ANN001, ANN202
            tasks = m.tasks()
            return healing.HealView(tasks, m.nodes(), {t.id: m.failures(t.id) for t in tasks
                                                       if t.state in (FAILED, COMPLETED)}), m.usages()

        (view, usages), _ = self._store.read(snapshot)
        now = self._wall()
        ended = {(t.id, t.generation) for t in view.tasks if t.state in (FAILED, COMPLETED)}
        self._ended_at = {k: v for k, v in self._ended_at.items() if k in ended}
        for key in ended:
            self._ended_at.setdefault(key, now)
        decided = healing.plan(view, now, self._ended_at, self._restart)
        if decided.commands:
            accepted = self._submit_all(decided.commands)
            parts.append(decided.sentence)
            counts = Counter(decided.causes[c.task_id] for c in accepted
                             if getattr(c, "task_id", None) in decided.causes)
            for cause, count in sorted(counts.items()):
                self._on_reschedule(cause, count)
        drained = self._drain_pass(view, usages)
        if drained:
            parts.append(drained)
        change = self._autopilot_pass(view.nodes)
        if change:
            parts.append(change)
        return PassResult("; ".join(parts) or "nothing to heal", acted=bool(parts))

    def _drain_pass(self, view: healing.HealView, usages: dict) -> str:
        """Migrations off drained nodes (``orion/control/drain.py``), against this leader's clock."""
        now = self._mono()
        left = {n.id for n in view.nodes if n.status == NODE_LEFT}
        self._left_since = {k: v for k, v in self._left_since.items() if k in left}
        for node_id in left:
            self._left_since.setdefault(node_id, now)
        self._running_since = drain.running_clock(view.tasks, self._running_since, now)
        decided = drain.plan(view.tasks, view.nodes, usages, now, self._left_since, self._running_since, self._drain)
        commands = decided.commands()
        if not commands:
            return ""
        moved = 0  # tasks handed to a new node: migrated, or cut at the deadline and placed again
        for command in commands:
            result = self._store.submit(command, self._timeout)
            if isinstance(result, Placed):  # a MigrateTasks
                moved += len(result.placed)
            elif isinstance(command, ReportTaskState) and not isinstance(result, Refused):
                moved += 1
        if moved:
            self._on_reschedule(healing.CAUSE_NODE_LEFT, moved)
        return decided.sentence

    def _autopilot_pass(self, nodes: list[NodeInfo]) -> str:
        if self._probe is None:
            return ""  # autopilot probes a candidate's API before promoting it: no probe, no autopilot
        now = self._mono()
        gone = {n.id for n in nodes if n.status in (NODE_DEAD, NODE_LEFT)}
        self._gone_since = {k: v for k, v in self._gone_since.items() if k in gone}
        for node_id in gone:
            self._gone_since.setdefault(node_id, now)
        voters = self._store.members()
        # Non-voting replicas register without a Raft address: never candidates.
        outsiders = [n for n in nodes if n.raft_addr and n.raft_addr not in voters and n.status != NODE_LEFT]
        reachable = self._probe(outsiders) if outsiders and len(voters) < self._autopilot.voter_cap else set()
        status = self._store.status()
        change = autopilot.plan(voters, nodes, status.self_addr, self._gone_since, reachable, now,
                                self._autopilot)
        if change is None:
            return ""
        try:
            if change.action == autopilot.ADD:  # through the leader's admission: the cap is re-checked there
                admitted = self._store.admit(change.raft_addr, self._autopilot.voter_cap, self._timeout)
                if admitted.role != VOTER:
                    return f"autopilot: {change.sentence} not done: {admitted.reason}"
            else:
                self._store.change_membership(change.action, change.raft_addr, self._timeout)
        except StoreError as exc:
            return f"autopilot: {change.sentence} failed: {exc}"
        return "autopilot: " + change.sentence

    def run_forever(self, stop: threading.Event) -> None:
        run_loop("healer", log, self._wake, self._interval, stop, self.run_once, min_gap=_MIN_GAP)
