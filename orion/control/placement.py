"""Where a task should run: Nomad-style BestFit bin-packing, as pure functions.

The scheduler reads values (a spec, the registered nodes, what each node already
holds) and returns a decision; it never writes. The leader turns a plan into one
``PlaceTasks`` command and the state machine re-checks every placement against
the replicated reservations, so a plan made on a stale view is refused rather
than over-committing (Nomad's plan applier). That is also why scoring may use
floats here: only the leader scores, and what is replicated is the decision,
re-checked in integers.

Speed: a plan over 1,000+ nodes and thousands of tasks must not cost
O(nodes) Python work per task. Nodes that are indistinguishable to the
scheduler (same labels, capacity, usage and taken ports) are kept in one group,
so a pass costs O(groups); a fresh cluster of identical machines is one group,
and BestFit keeps it that way by filling one node at a time.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orion.model import NODE_ALIVE, NodeInfo, Resources, Task, TaskSpec
from orion.state.commands import Placement

# Nomad's BestFit v3 score is 20 - (10^free_cpu + 10^free_mem): 18 for a node that
# would be exactly full, 0 for an empty one. We divide by 18 to report 0..1.
_MAX_FIT_SCORE = 18.0

_GiB = 1 << 30
_MiB = 1 << 20
_KiB = 1 << 10


@dataclass(frozen=True)
class NodeUsage:
    """What is already reserved on one node: resources and static host ports."""

    used: Resources = Resources()
    ports: frozenset[tuple[int, str]] = frozenset()

    def plus(self, spec: TaskSpec) -> NodeUsage:
        return NodeUsage(self.used + spec.resources, self.ports | spec.static_host_ports)


EMPTY_USAGE = NodeUsage()


@dataclass(frozen=True)
class Fit:
    """Place on ``node_id``; ``score`` (0..1) is how full the node would be."""

    node_id: str
    score: float


@dataclass(frozen=True)
class NoFit:
    """No node can take the task now; ``reason`` is a sentence for the user."""

    reason: str


Decision = Fit | NoFit


def format_bytes(n: int) -> str:
    """``7.1 GiB``, ``512.0 MiB``: one decimal, the largest unit that is >= 1."""
    for unit, size in (("GiB", _GiB), ("MiB", _MiB), ("KiB", _KiB)):
        if abs(n) >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def format_cpu(millis: int) -> str:
    """``1.5 CPUs``, ``1 CPU``, ``0.25 CPUs`` from millicores."""
    cores = millis / 1000
    return f"{cores:g} CPU" + ("" if cores == 1 else "s")


def format_ports(ports: Iterable[tuple[int, str]]) -> str:
    return ", ".join(f"{port}/{proto}" for port, proto in sorted(ports))


def format_selectors(selectors: Iterable[tuple[str, str]]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(selectors))


def fit_score(capacity: Resources, used_after: Resources) -> float:
    """BestFit v3 over memory and CPU, normalised to 0..1 (higher = fuller).

    A resource the node has none of counts as fully used, so it neither helps
    nor hurts a node relative to its peers.
    """
    free_mem = 1.0 - used_after.memory / capacity.memory if capacity.memory > 0 else 0.0
    free_cpu = 1.0 - used_after.cpu_millis / capacity.cpu_millis if capacity.cpu_millis > 0 else 0.0
    score = 20.0 - (10.0**free_cpu + 10.0**free_mem)
    return min(max(score, 0.0), _MAX_FIT_SCORE) / _MAX_FIT_SCORE


# A group key: (labels, capacity memory, capacity cpu, used memory, used cpu, taken ports).
_Key = tuple[frozenset[tuple[str, str]], int, int, int, int, frozenset[tuple[int, str]]]


class _Packer:
    """Mutable scratch state for one scheduling pass; never escapes this module."""

    def __init__(self, nodes: Sequence[NodeInfo], usage: Mapping[str, NodeUsage]) -> None:
        self._nodes = {n.id: n for n in nodes}
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
        return (frozenset(node.labels), node.capacity.memory, node.capacity.cpu_millis,
                use.used.memory, use.used.cpu_millis, use.ports)

    def _join(self, node_id: str) -> None:
        heapq.heappush(self._groups.setdefault(self._key(node_id), []), node_id)

    def place(self, spec: TaskSpec) -> Decision:
        shape = (spec.memory, spec.cpu_millis, spec.static_host_ports, frozenset(spec.node_selectors))
        if shape in self._no_fit:
            return self._no_fit[shape]
        mem, cpu, ports, selectors = shape
        best_score, best_id, best_key = -1.0, "", None
        for key, heap in self._groups.items():
            labels, cap_mem, cap_cpu, used_mem, used_cpu, taken = key
            if mem > cap_mem - used_mem or cpu > cap_cpu - used_cpu:
                continue
            if (selectors and not selectors <= labels) or (ports and not ports.isdisjoint(taken)):
                continue
            # fit_score, inlined: this loop is the scheduler's whole cost.
            free_mem = 1.0 - (used_mem + mem) / cap_mem if cap_mem > 0 else 0.0
            free_cpu = 1.0 - (used_cpu + cpu) / cap_cpu if cap_cpu > 0 else 0.0
            score = min(max(20.0 - (10.0**free_cpu + 10.0**free_mem), 0.0), _MAX_FIT_SCORE) / _MAX_FIT_SCORE
            if score > best_score or (score == best_score and heap[0] < best_id):
                best_score, best_id, best_key = score, heap[0], key
        if best_key is None:
            decision = NoFit(self._explain(spec))
            self._no_fit[shape] = decision
            return decision
        node_id = heapq.heappop(self._groups[best_key])
        if not self._groups[best_key]:
            del self._groups[best_key]
        self._usage[node_id] = self._usage[node_id].plus(spec)
        self._join(node_id)
        self._no_fit.clear()
        return Fit(node_id, best_score)

    def _explain(self, spec: TaskSpec) -> str:
        """Say which filter left no node, naming the closest miss. Failure path only."""
        alive = sorted(n.id for n in self._nodes.values() if n.schedulable)
        if not alive:
            if not self._nodes:
                return "no alive nodes: none are registered"
            by_status: dict[str, int] = {}
            for n in self._nodes.values():
                shown = "not ready" if n.status == NODE_ALIVE and not n.ready else n.status
                by_status[shown] = by_status.get(shown, 0) + 1
            return "no alive nodes (" + ", ".join(f"{c} {s}" for s, c in sorted(by_status.items())) + ")"
        selectors = set(spec.node_selectors)
        eligible = [i for i in alive if selectors <= set(self._nodes[i].labels)]
        if not eligible:
            return f"no alive node matches selector {format_selectors(selectors)}"
        wanted = spec.static_host_ports
        port_free = [i for i in eligible if wanted.isdisjoint(self._usage[i].ports)]
        if not port_free:
            if len(wanted) == 1:
                return f"host port {format_ports(wanted)} is taken on every eligible node"
            return f"host ports {format_ports(wanted)}: every eligible node already uses at least one of them"

        def free(i: str) -> Resources:
            return self._nodes[i].capacity - self._usage[i].used

        # max() keeps the first of equals; the lists are sorted, so ties go to the lowest id.
        most_mem = max(port_free, key=lambda i: free(i).memory)
        most_cpu = max(port_free, key=lambda i: free(i).cpu_millis)
        if free(most_mem).memory < spec.memory:
            return (f"no node has {format_bytes(spec.memory)} free memory; "
                    f"largest free: {most_mem} {format_bytes(free(most_mem).memory)}")
        if free(most_cpu).cpu_millis < spec.cpu_millis:
            return (f"no node has {format_cpu(spec.cpu_millis)} free; "
                    f"most free: {most_cpu} {format_cpu(free(most_cpu).cpu_millis)}")
        return (f"no node has both {format_bytes(spec.memory)} memory "
                f"and {format_cpu(spec.cpu_millis)} free; "
                f"largest free memory: {most_mem} ({format_bytes(free(most_mem).memory)}, "
                f"{format_cpu(free(most_mem).cpu_millis)}), most free CPU: {most_cpu} "
                f"({format_cpu(free(most_cpu).cpu_millis)}, {format_bytes(free(most_cpu).memory)})")


def schedule(spec: TaskSpec, nodes: Sequence[NodeInfo], usage: Mapping[str, NodeUsage]) -> Decision:
    """Pick the alive, ready node that ``spec`` fits on most snugly (BestFit), or say why none.

    Ties in score go to the lowest node id, so every caller gets the same answer.
    """
    return _Packer(nodes, usage).place(spec)


def plan(
    tasks: Sequence[Task], nodes: Sequence[NodeInfo], usage: Mapping[str, NodeUsage]
) -> tuple[list[Placement], dict[str, str]]:
    """Place ``tasks`` in order, each seeing the ones placed before it.

    Returns the placements (made against each task's current generation, so the
    state machine can spot a stale plan) and a NoFit reason per unplaced task id.
    A batch never over-commits a node, even before the state machine re-checks.
    """
    packer = _Packer(nodes, usage)
    placements: list[Placement] = []
    refused: dict[str, str] = {}
    for task in tasks:
        decision = packer.place(task.spec)
        if isinstance(decision, Fit):
            placements.append(Placement(task.id, decision.node_id, task.generation))
        else:
            refused[task.id] = decision.reason
    return placements, refused
