"""Metrics read at scrape time: Raft, the replicated state, gossip.

State is not mirrored into gauges as it changes (that would need a hook in every
writer and could drift); it is read once per scrape from the same places the
API reads it. One scrape therefore costs one ``store.status()``, one
``store.read()`` over the machine's counters and per-node reservations, and one
call of the gossip stats function: O(nodes), never O(tasks), except when tasks
are pending, where the pending ones are looked at to date the oldest.

Labels are low-cardinality by construction: states and statuses are the fixed
tuples of ``orion.domain.model``, ``node`` is bounded by the fleet, and no task id ever
becomes a label. Every state and status is emitted even at zero, so a series
exists (and a dashboard panel shows 0, not "no data") whenever a node is up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orion.domain.model import NODE_STATES, PENDING, TASK_STATES, NoFitKind
from orion.state.machine import StateMachine
from orion.store.port import Store

log = logging.getLogger("orion.metrics.registry")

# The ``reason`` label of the no-fit metrics: the scheduler's typed kind, never the
# sentence shown to users ("no node has 2.0 GiB free memory; ..."), so a label never
# carries a figure and rewording a sentence cannot move a count.
NO_FIT_CLASSES = tuple(str(kind) for kind in NoFitKind)

# What the gossip engine's stats function returns (missing keys are not emitted):
#   {"members": {"alive": 3, "suspect": 0, "dead": 0, "left": 0},
#    "health_score": 0, "probes": 12, "probe_failures": 0, "bytes_sent": ..., ...}
# Counter keys -> (metric name without _total, help).
GOSSIP_COUNTERS: dict[str, tuple[str, str]] = {
    "probes": ("orion_gossip_probes", "Failure-detector probes this node started."),
    "probe_failures": ("orion_gossip_probe_failures", "Probes that got no ack, direct or indirect."),
    "bytes_sent": ("orion_gossip_sent_bytes", "Gossip bytes sent (UDP and TCP)."),
    "bytes_received": ("orion_gossip_received_bytes", "Gossip bytes received (UDP and TCP)."),
    "messages_sent": ("orion_gossip_sent_messages", "Gossip messages sent, compound parts counted."),
    "messages_received": ("orion_gossip_received_messages", "Gossip messages received."),
    "dropped": ("orion_gossip_dropped_packets", "Packets dropped: malformed, oversize or queue full."),
    "unauthenticated": ("orion_gossip_unauthenticated_packets",
                        "Packets refused because they failed decryption/authentication."),
}


@dataclass(frozen=True)
class _StateView:
    """What one scrape needs from the machine, copied out under the store's lock."""

    tasks: dict[str, int]
    nodes: list[tuple[str, str, int, int, int, int]]  # id, status, cap mem, cap cpu, used mem, used cpu
    pending: list[tuple[str, NoFitKind | None]]  # (task id, no-fit kind) of pending tasks; empty if none


def _read_state(machine: StateMachine) -> _StateView:
    counts = machine.counts_by_state()
    usages = machine.usages()
    nodes = []
    for node in machine.nodes():
        used = usages[node.id].used
        nodes.append((node.id, node.status, node.capacity.memory, node.capacity.cpu_millis,
                      used.memory, used.cpu_millis))
    # pending_tasks() sorts every task; pay that only when something is pending.
    pending = [(t.id, t.reason_kind) for t in machine.pending_tasks()] if counts.get(PENDING) else []
    return _StateView(counts, nodes, pending)


class StateCollector(Collector):
    """Yields Raft, state-machine and gossip families from live reads.

    ``on_leader`` is told the leader seen at each scrape (leader-change counting
    also runs from the agent's watcher; seeing it here costs nothing).
    ``clock`` dates pending tasks; it is injectable so tests need no sleeps.
    """

    def __init__(self, store: Store, gossip_stats: Callable[[], Mapping[str, Any]] | None = None,
                 on_leader: Callable[[str | None], None] | None = None,
                 on_error: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._gossip_stats = gossip_stats
        self._on_leader = on_leader
        self._on_error = on_error
        self._clock = clock
        self._lock = threading.Lock()
        self._pending_since: dict[str, float] = {}

    def describe(self) -> list[Metric]:
        # Reading live state at registration would be wrong (the store may not be
        # up yet); an empty describe() tells the registry not to call collect() then.
        return []

    def collect(self) -> Iterator[Metric]:
        for section, produce in (("raft", self._raft), ("state", self._state), ("gossip", self._gossip)):
            try:
                yield from list(produce())
            except Exception:  # one broken source must not blank the whole scrape
                log.exception("metrics: collecting %s failed", section)
                if self._on_error is not None:
                    self._on_error(section)

    # -- Raft ----------------------------------------------------------------------------
    def _raft(self) -> Iterator[Metric]:
        status = self._store.status()
        if self._on_leader is not None:
            self._on_leader(status.leader)

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, value=value)

        yield gauge("orion_raft_is_leader", "1 if this node is the Raft leader.", float(status.is_leader))
        yield gauge("orion_raft_has_leader", "1 if this node knows a leader that can commit writes.",
                    float(self._store.has_leader()))
        yield gauge("orion_raft_term", "Current Raft term as seen by this node.", status.term)
        yield gauge("orion_raft_commit_index", "Highest log index known committed.", status.commit_index)
        yield gauge("orion_raft_applied_index", "Highest log index applied to this node's state machine.",
                    status.applied_index)
        voters = len(status.members)
        yield gauge("orion_raft_voters", "Voting members in this node's Raft configuration (self included).",
                    voters)
        yield gauge("orion_raft_peers", "Other Raft members this node replicates with.", max(voters - 1, 0))
        connected = status.extra.get("connected")
        if connected is not None:
            yield gauge("orion_raft_peers_connected", "Other Raft members this node is connected to.",
                        len(connected))
        if "has_quorum" in status.extra:
            yield gauge("orion_raft_has_quorum", "1 if this node reaches a majority of the voters.",
                        float(bool(status.extra["has_quorum"])))
        if "fsyncs" in status.extra:
            yield CounterMetricFamily("orion_raft_fsyncs", "fsync/fdatasync calls made by this node's Raft "
                                      "journal (0 with durability none); one covers a group of entries.",
                                      value=float(status.extra["fsyncs"]))

    # -- replicated state ----------------------------------------------------------------
    def _state(self) -> Iterator[Metric]:
        view, _ = self._store.read(_read_state)
        tasks = GaugeMetricFamily("orion_tasks", "Tasks in the replicated state, by lifecycle state.",
                                  labels=["state"])
        for state in TASK_STATES:
            tasks.add_metric([state], view.tasks.get(state, 0))
        yield tasks
        yield from self._pending(view.pending)

        counts = dict.fromkeys(NODE_STATES, 0)
        status = GaugeMetricFamily("orion_node_status", "1 for the registry status a node is in, else 0.",
                                   labels=["node", "status"])
        cap_mem = GaugeMetricFamily("orion_node_capacity_memory_bytes",
                                    "Memory the scheduler may hand out on the node.", labels=["node"])
        cap_cpu = GaugeMetricFamily("orion_node_capacity_cpu_cores",
                                    "CPU the scheduler may hand out on the node.", labels=["node"])
        res_mem = GaugeMetricFamily("orion_node_reserved_memory_bytes",
                                    "Memory reserved by tasks placed on the node.", labels=["node"])
        res_cpu = GaugeMetricFamily("orion_node_reserved_cpu_cores",
                                    "CPU reserved by tasks placed on the node.", labels=["node"])
        for node_id, node_status, c_mem, c_cpu, u_mem, u_cpu in view.nodes:
            counts[node_status] = counts.get(node_status, 0) + 1
            for s in NODE_STATES:
                status.add_metric([node_id, s], float(s == node_status))
            cap_mem.add_metric([node_id], c_mem)
            cap_cpu.add_metric([node_id], c_cpu / 1000)
            res_mem.add_metric([node_id], u_mem)
            res_cpu.add_metric([node_id], u_cpu / 1000)
        nodes = GaugeMetricFamily("orion_nodes", "Registered nodes by registry status.", labels=["status"])
        for s, n in counts.items():
            nodes.add_metric([s], n)
        yield from (nodes, status, cap_mem, cap_cpu, res_mem, res_cpu)

    def _pending(self, pending: list[tuple[str, NoFitKind | None]]) -> Iterator[Metric]:
        """Unschedulable tasks by kind, and how long the oldest pending one has waited.

        The state machine has no clock (it must be deterministic), so the age is
        measured from the first scrape at which this node saw the task pending.
        """
        now = self._clock()
        with self._lock:
            since = {task_id: self._pending_since.get(task_id, now) for task_id, _ in pending}
            self._pending_since = since
        oldest = now - min(since.values()) if since else 0.0
        yield GaugeMetricFamily("orion_tasks_pending_oldest_seconds",
                                "Seconds the longest-waiting pending task has been pending (seen by "
                                "this node's scrapes); 0 when none is pending.", value=oldest)
        unschedulable = dict.fromkeys(NO_FIT_CLASSES, 0)
        for _, kind in pending:
            if kind is not None:
                unschedulable[str(kind)] += 1
        family = GaugeMetricFamily("orion_tasks_unschedulable",
                                   "Pending tasks the scheduler found no node for, by kind of reason.",
                                   labels=["reason"])
        for cls, n in unschedulable.items():
            family.add_metric([cls], n)
        yield family

    # -- gossip --------------------------------------------------------------------------
    def _gossip(self) -> Iterator[Metric]:
        if self._gossip_stats is None:
            return
        stats = self._gossip_stats()
        members = stats.get("members")
        if members is not None:
            family = GaugeMetricFamily("orion_gossip_members", "Members by gossip state in this node's view.",
                                       labels=["state"])
            for state in NODE_STATES:
                family.add_metric([state], float(members.get(state, 0)))
            yield family
        if "health_score" in stats:
            yield GaugeMetricFamily("orion_gossip_health_score",
                                    "Lifeguard local health score: 0 healthy; higher = this node "
                                    "distrusts its own timing more.", value=float(stats["health_score"]))
        for key, (name, doc) in GOSSIP_COUNTERS.items():
            if key in stats:
                yield CounterMetricFamily(name, doc, value=float(stats[key]))


def gossip_stats_from(node: Any) -> Callable[[], dict[str, Any]]:
    """Adapt a running ``orion.gossip.transport.GossipNode`` to the stats dict above.

    Duck-typed on ``members()``, ``health_score()`` and its ``counters`` mapping,
    so this module needs no import of the gossip package. Counters the node
    does not keep (yet) are left out rather than reported as zero.
    """

    def stats() -> dict[str, Any]:
        members: dict[str, int] = {}
        for m in node.members():
            members[m.state] = members.get(m.state, 0) + 1
        counters = dict(node.counters)
        core = getattr(node, "core", None)
        counters.update(getattr(core, "stats", None) or {})
        score = node.health_score
        out: dict[str, Any] = {"members": members, "health_score": score() if callable(score) else score}
        for key in ("probes", "probe_failures", "bytes_sent", "bytes_received", "messages_sent",
                    "messages_received"):
            if key in counters:
                out[key] = counters[key]
        out["dropped"] = counters.get("dropped_malformed", 0) + counters.get("dropped_oversized", 0)
        out["unauthenticated"] = counters.get("dropped_unauthenticated", 0)
        return out

    return stats
