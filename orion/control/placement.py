"""Where a task should run: Nomad-style BestFit bin-packing, as pure functions.

The planner reads values (a spec, the registered nodes, what each node already
holds) and returns a decision; it never writes. The leader turns a plan into one
``PlaceTasks`` command and the state machine re-checks every placement against
the replicated reservations, so a plan made on a stale view is refused rather
than over-committing (Nomad's plan applier). That is also why scoring may use
floats here: only the leader scores, and what is replicated is the decision,
re-checked in integers.

Speed: a plan over 1,000+ nodes and thousands of tasks must not cost
O(nodes) Python work per task. Nodes that are indistinguishable to the
planner (same labels, capacity, usage and taken ports) are kept in one group,
so a pass costs O(groups); a fresh cluster of identical machines is one group,
and BestFit keeps it that way by filling one node at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from orion.domain.humanize import format_bytes, format_cpu, format_ports, format_selectors, format_volumes
from orion.domain.model import (
    EMPTY_USAGE,
    NODE_ALIVE,
    NodeInfo,
    NodeUsage,
    NoFitKind,
    Resources,
    Task,
    TaskSpec,
)
from orion.state.commands import Placement

# Nomad's BestFit v3 score is 20 - (10^free_cpu + 10^free_mem): 18 for a node that
# would be exactly full, 0 for an empty one. We divide by 18 to report 0..1.
_MAX_FIT_SCORE = 18.0


@dataclass(frozen=True)
class Fit:
    """Place on ``node_id``; ``score`` (0..1) is how full the node would be."""

    node_id: str
    score: float


@dataclass(frozen=True)
class FreeOn:
    """What is free on one node: the closest miss a NoFit quotes."""

    node_id: str
    free: Resources


@dataclass(frozen=True)
class NoFit:
    """No node can take the task now: which filter left none (``kind``), with its figures.

    The cause is ``kind`` plus what the task asked for (``memory``, ``cpu_millis``,
    ``ports``, ``selectors``, ``volumes``, ``devices``: its own spec, so fixed for a task;
    ``missing``: the host volumes (VOLUME) or devices (DEVICE) no eligible node offers). The rest are live
    figures that change with every placement elsewhere: nodes by status when none is
    alive, the node with the most free memory and the one with the most free CPU.
    ``sentence`` is written from these values for people; code reads the values.
    """

    kind: NoFitKind
    memory: int = 0
    cpu_millis: int = 0
    ports: frozenset[tuple[int, str]] = frozenset()
    selectors: frozenset[tuple[str, str]] = frozenset()
    volumes: frozenset[str] = frozenset()
    devices: frozenset[str] = frozenset()  # DEVICE: the host devices asked for
    missing: frozenset[str] = frozenset()  # VOLUME, DEVICE: asked-for ones no eligible node has
    statuses: tuple[tuple[str, int], ...] = ()  # NO_NODES: (status, registered nodes in it), sorted
    most_memory: FreeOn | None = None  # MEMORY, MEMORY_CPU
    most_cpu: FreeOn | None = None  # CPU, MEMORY_CPU

    @property
    def sentence(self) -> str:
        kind, mem, cpu = self.kind, format_bytes(self.memory), format_cpu(self.cpu_millis)
        if kind == NoFitKind.NO_NODES:
            if not self.statuses:
                return "no alive nodes: none are registered"
            return "no alive nodes (" + ", ".join(f"{c} {s}" for s, c in self.statuses) + ")"
        if kind == NoFitKind.SELECTOR:
            return f"no alive node matches selector {format_selectors(self.selectors)}"
        if kind == NoFitKind.VOLUME:
            where = "alive node" + (" matching the selector" if self.selectors else "")
            if self.missing:
                plural = "s" if len(self.missing) > 1 else ""
                return f"no {where} declares host volume{plural} {format_volumes(self.missing)}"
            return f"no {where} declares all of host volumes {format_volumes(self.volumes)}"
        if kind == NoFitKind.DEVICE:
            shown = self.missing or self.devices
            which = "s" if len(shown) > 1 else ""
            return (f"no eligible node hands out {'all of ' if not self.missing else ''}host device{which} "
                    f"{', '.join(sorted(shown))} (host_devices in a node's config)")
        if kind == NoFitKind.PRIVILEGED:
            return "no eligible node allows privileged containers (allow_privileged in a node's config)"
        if kind == NoFitKind.PORTS:
            if len(self.ports) == 1:
                return f"host port {format_ports(self.ports)} is taken on every eligible node"
            return f"host ports {format_ports(self.ports)}: every eligible node already uses at least one of them"
        roomy, fast = self.most_memory, self.most_cpu
        if kind == NoFitKind.MEMORY and roomy is not None:
            return f"no node has {mem} free memory; largest free: {roomy.node_id} {format_bytes(roomy.free.memory)}"
        if kind == NoFitKind.CPU and fast is not None:
            return f"no node has {cpu} free; most free: {fast.node_id} {format_cpu(fast.free.cpu_millis)}"
        if kind == NoFitKind.MEMORY_CPU and roomy is not None and fast is not None:
            return (f"no node has both {mem} memory and {cpu} free; "
                    f"largest free memory: {roomy.node_id} ({format_bytes(roomy.free.memory)}, "
                    f"{format_cpu(roomy.free.cpu_millis)}), most free CPU: {fast.node_id} "
                    f"({format_cpu(fast.free.cpu_millis)}, {format_bytes(fast.free.memory)})")
        return f"no node fits {mem} memory and {cpu}"


Decision = Fit | NoFit


def bestfit(cap_mem: int, cap_cpu: int, used_mem: int, used_cpu: int) -> float:
    """BestFit v3 over plain numbers (bytes, millicores), normalised to 0..1 (higher = fuller).

    The one implementation: ``fit_score`` for callers holding values, and the
    packer's loop, which holds the numbers already and must not build objects.
    A resource the node has none of counts as fully used, so it neither helps
    nor hurts a node relative to its peers.
    """
    free_mem = 1.0 - used_mem / cap_mem if cap_mem > 0 else 0.0
    free_cpu = 1.0 - used_cpu / cap_cpu if cap_cpu > 0 else 0.0
    score = 20.0 - (10.0**free_cpu + 10.0**free_mem)
    # Clamped to 0..18 with comparisons, not min(max()): two builtin calls cost more than the rest.
    return 0.0 if score < 0.0 else 1.0 if score > _MAX_FIT_SCORE else score / _MAX_FIT_SCORE


def fit_score(capacity: Resources, used_after: Resources) -> float:
    """How full a node of ``capacity`` would be at ``used_after`` (see ``bestfit``)."""
    return bestfit(capacity.memory, capacity.cpu_millis, used_after.memory, used_after.cpu_millis)


# A group key: (labels, offers (host volumes, devices, privilege), capacity memory, capacity cpu, used memory,
# used cpu, taken ports).
_Key = tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]], int, int, int, int, frozenset[tuple[int, str]]]


class _Packer:
    """Mutable scratch state for one scheduling pass; never escapes this module."""

    def __init__(self, nodes: Sequence[NodeInfo], usage: Mapping[str, NodeUsage],
                 spread: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self._nodes = {n.id: n for n in nodes}
        # Per service, its replicas per node so far: updated as this pass places more.
        self._spread = {service: dict(counts) for service, counts in (spread or {}).items()}
        self._usage = {n.id: usage.get(n.id, EMPTY_USAGE) for n in self._nodes.values()}
        self._groups: dict[_Key, list[str]] = {}
        for node in self._nodes.values():
            if node.schedulable:  # alive, and its engine answers (readiness)
                self._join(node.id)
        # NoFit answers by spec shape. Valid until the next placement: a pass only
        # ever adds usage, but we clear it then so reasons quote current figures.
        self._no_fit: dict[tuple, NoFit] = {}

    def _key(self, node_id: str) -> _Key:
        node, use = self._nodes[node_id], self._usage[node_id]
        return (frozenset(node.labels), node.offers, node.capacity.memory, node.capacity.cpu_millis,
                use.used.memory, use.used.cpu_millis, use.ports)

    def _join(self, node_id: str) -> None:
        heapq.heappush(self._groups.setdefault(self._key(node_id), []), node_id)

    def place(self, spec: TaskSpec, service: str = "") -> Decision:
        shape = (spec.memory, spec.cpu_millis, spec.static_host_ports, frozenset(spec.node_selectors),
                 spec.host_needs)
        if shape in self._no_fit:
            return self._no_fit[shape]
        if service:
            return self._place_spread(spec, shape, self._spread.setdefault(service, {}))
        mem, cpu, ports, selectors, needs = shape
        score_of = bestfit  # a local: this loop is the planner's whole cost
        best_score, best_id, best_key = -1.0, "", None
        for key, heap in self._groups.items():
            labels, has, cap_mem, cap_cpu, used_mem, used_cpu, taken = key
            if mem > cap_mem - used_mem or cpu > cap_cpu - used_cpu:
                continue
            if (selectors and not selectors <= labels) or (ports and not ports.isdisjoint(taken)):
                continue
            if needs and not needs <= has:
                continue
            score = score_of(cap_mem, cap_cpu, used_mem + mem, used_cpu + cpu)
            if score > best_score or (score == best_score and heap[0] < best_id):
                best_score, best_id, best_key = score, heap[0], key
        if best_key is None:
            decision = self._explain(spec)
            self._no_fit[shape] = decision
            return decision
        node_id = heapq.heappop(self._groups[best_key])
        if not self._groups[best_key]:
            del self._groups[best_key]
        self._usage[node_id] = self._usage[node_id].plus(spec)
        self._join(node_id)
        self._no_fit.clear()
        return Fit(node_id, best_score)

    def _place_spread(self, spec: TaskSpec, shape: tuple, members: dict[str, int]) -> Decision:
        """A service's replica: on the fitting node with the fewest of its replicas, then BestFit.

        Kubernetes' default spread and Swarm's, where Nomad lowers the score of a node
        that holds the job already: replicas on distinct nodes survive the loss of one.
        Separate from ``place`` so lone tasks keep its one comparison per group; this
        one looks at every node of a group (``members`` may tell them apart), which is
        fine for a service's handful of replicas.
        """
        mem, cpu, ports, selectors, needs = shape
        best: tuple[int, float, str] | None = None
        best_key = None
        for key, heap in self._groups.items():
            labels, has, cap_mem, cap_cpu, used_mem, used_cpu, taken = key
            if mem > cap_mem - used_mem or cpu > cap_cpu - used_cpu:
                continue
            if (selectors and not selectors <= labels) or (ports and not ports.isdisjoint(taken)):
                continue
            if needs and not needs <= has:
                continue
            hits, node_id = min((members.get(n, 0), n) for n in heap)
            candidate = (hits, -bestfit(cap_mem, cap_cpu, used_mem + mem, used_cpu + cpu), node_id)
            if best is None or candidate < best:
                best, best_key = candidate, key
        if best is None or best_key is None:
            decision = self._explain(spec)
            self._no_fit[shape] = decision
            return decision
        hits, negative_score, node_id = best
        heap = self._groups[best_key]
        heap.remove(node_id)
        heapq.heapify(heap)
        if not heap:
            del self._groups[best_key]
        self._usage[node_id] = self._usage[node_id].plus(spec)
        self._join(node_id)
        self._no_fit.clear()
        members[node_id] = hits + 1
        return Fit(node_id, -negative_score)

    def _explain(self, spec: TaskSpec) -> NoFit:
        """Say which filter left no node, naming the closest miss. Failure path only."""
        asked = NoFit(NoFitKind.OTHER, spec.memory, spec.cpu_millis, spec.static_host_ports,
                      frozenset(spec.node_selectors), spec.host_volumes)
        alive = sorted(n.id for n in self._nodes.values() if n.schedulable)
        if not alive:
            by_status: dict[str, int] = {}
            for n in self._nodes.values():
                shown = "not ready" if n.status == NODE_ALIVE and not n.ready else n.status
                by_status[shown] = by_status.get(shown, 0) + 1
            return replace(asked, kind=NoFitKind.NO_NODES, statuses=tuple(sorted(by_status.items())))
        eligible = [i for i in alive if asked.selectors <= set(self._nodes[i].labels)]
        if not eligible:
            return replace(asked, kind=NoFitKind.SELECTOR)
        mounting = [i for i in eligible if asked.volumes <= set(self._nodes[i].host_volumes)]
        if not mounting:
            declared = set().union(*(self._nodes[i].host_volumes for i in eligible))
            return replace(asked, kind=NoFitKind.VOLUME, missing=asked.volumes - declared)
        devices = spec.container.host_devices
        handing = [i for i in mounting if devices <= set(self._nodes[i].host_devices)]
        if not handing:
            offered = set().union(*(self._nodes[i].host_devices for i in mounting))
            return replace(asked, kind=NoFitKind.DEVICE, devices=devices, missing=devices - offered)
        allowed = [i for i in handing if self._nodes[i].allow_privileged or not spec.container.privileged]
        if not allowed:
            return replace(asked, kind=NoFitKind.PRIVILEGED)
        port_free = [i for i in allowed if asked.ports.isdisjoint(self._usage[i].ports)]
        if not port_free:
            return replace(asked, kind=NoFitKind.PORTS)

        def free(i: str) -> Resources:
            return self._nodes[i].capacity - self._usage[i].used

        # max() keeps the first of equals; the lists are sorted, so ties go to the lowest id.
        roomy = max(port_free, key=lambda i: free(i).memory)
        fast = max(port_free, key=lambda i: free(i).cpu_millis)
        most_memory, most_cpu = FreeOn(roomy, free(roomy)), FreeOn(fast, free(fast))
        if most_memory.free.memory < spec.memory:
            return replace(asked, kind=NoFitKind.MEMORY, most_memory=most_memory)
        if most_cpu.free.cpu_millis < spec.cpu_millis:
            return replace(asked, kind=NoFitKind.CPU, most_cpu=most_cpu)
        return replace(asked, kind=NoFitKind.MEMORY_CPU, most_memory=most_memory, most_cpu=most_cpu)


def schedule(spec: TaskSpec, nodes: Sequence[NodeInfo], usage: Mapping[str, NodeUsage]) -> Decision:
    """Pick the alive, ready node that ``spec`` fits on most snugly (BestFit), or say why none.

    Filters, in the order a no-fit names them: alive and ready, node selectors, host
    volumes (a node must declare every host volume the task mounts), host devices (a node
    must hand out every one asked for), privilege (a privileged task needs a node that
    allows it), static host ports, then memory and CPU.

    Ties in score go to the lowest node id, so every caller gets the same answer.
    """
    return _Packer(nodes, usage).place(spec)


def plan(
    tasks: Sequence[Task], nodes: Sequence[NodeInfo], usage: Mapping[str, NodeUsage],
    spread: Mapping[str, Mapping[str, int]] | None = None,
) -> tuple[list[Placement], dict[str, NoFit]]:
    """Place ``tasks`` in order, each seeing the ones placed before it.

    Returns the placements (made against each task's current generation, so the
    state machine can spot a stale plan) and the NoFit of each unplaced task id.
    A batch never over-commits a node, even before the state machine re-checks.
    A service's replicas spread: each goes where the fewest of its service's
    replicas are (``spread``: service -> node -> replicas placed before this pass),
    BestFit among those; a lone task is packed by BestFit alone.
    """
    packer = _Packer(nodes, usage, spread)
    placements: list[Placement] = []
    refused: dict[str, NoFit] = {}
    for task in tasks:
        decision = packer.place(task.spec, task.service)
        if isinstance(decision, Fit):
            placements.append(Placement(task.id, decision.node_id, task.generation))
        else:
            refused[task.id] = decision
    return placements, refused
