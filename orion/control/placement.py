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

from orion.control.no_fit import FreeOn, NoFit
from orion.domain.constraints import matches_all
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

__all__ = ["Decision", "Fit", "FreeOn", "NoFit", "bestfit", "fit_score", "plan", "schedule"]

# Nomad's BestFit v3 score is 20 - (10^free_cpu + 10^free_mem): 18 for a node that
# would be exactly full, 0 for an empty one. We divide by 18 to report 0..1.
_MAX_FIT_SCORE = 18.0


@dataclass(frozen=True)
class Fit:
    """Place on ``node_id``; ``score`` (0..1) is how full the node would be."""

    node_id: str
    score: float


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
# used cpu, taken ports, platform). The platform (OS, architecture, engine version) is there so a constraint
# on it reads the same on every node of a group; hostname and id tell every node apart and are read per node.
_Key = tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]], int, int, int, int, frozenset[tuple[int, str]],
             tuple[str, str, str]]


class _Packer:
    """Mutable scratch state for one scheduling pass; never escapes this module."""

    def __init__(self, nodes: Sequence[NodeInfo], usage: Mapping[str, NodeUsage],
                 spread: Mapping[str, Mapping[str, int]] | None = None) -> None:
        self._nodes = {n.id: n for n in nodes}
        # Per service, its replicas per node so far: updated as this pass places more.
        self._spread = {service: dict(counts) for service, counts in (spread or {}).items()}
        # Per (service, label), its replicas per value of the label: built when first asked.
        self._zones: dict[tuple[str, str], dict[str, int]] = {}
        # Per set of per-node constraints (hostname, id), the nodes that meet them: read once a pass.
        self._meeting: dict[tuple, frozenset[str]] = {}
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
                use.used.memory, use.used.cpu_millis, use.ports, node.platform)

    def _join(self, node_id: str) -> None:
        heapq.heappush(self._groups.setdefault(self._key(node_id), []), node_id)

    def _take(self, key: _Key, node_id: str, spec: TaskSpec) -> None:
        """``node_id`` (of group ``key``) takes ``spec``: it moves to the group of its new usage."""
        heap = self._groups[key]
        if heap[0] == node_id:
            heapq.heappop(heap)
        else:
            heap.remove(node_id)
            heapq.heapify(heap)
        if not heap:
            del self._groups[key]
        self._usage[node_id] = self._usage[node_id].plus(spec)
        self._join(node_id)
        self._no_fit.clear()

    def place(self, spec: TaskSpec, service: str = "", pin: str = "") -> Decision:
        if pin:
            return self._place_pinned(spec, service, pin)
        shape = (spec.memory, spec.cpu_millis, spec.static_host_ports, frozenset(spec.node_selectors),
                 spec.host_needs, spec.constraints, spec.max_per_node and service)
        if shape in self._no_fit:
            return self._no_fit[shape]
        if service or spec.constraints:
            return self._place_policy(spec, shape, service)
        mem, cpu, ports, selectors, needs = shape[:5]
        score_of = bestfit  # a local: this loop is the planner's whole cost
        best_score, best_id, best_key = -1.0, "", None
        for key, heap in self._groups.items():
            labels, has, cap_mem, cap_cpu, used_mem, used_cpu, taken, _platform = key
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
            decision = self._explain(spec, service)
            self._no_fit[shape] = decision
            return decision
        self._take(best_key, best_id, spec)
        return Fit(best_id, best_score)

    def _spread_of(self, service: str, label: str) -> dict[str, int]:
        """``service``'s replicas per value of ``label`` ("" for nodes without it), as placed so far."""
        zones = self._zones.get((service, label))
        if zones is None:
            zones = self._zones[(service, label)] = {}
            for node_id, count in self._spread.get(service, {}).items():
                node = self._nodes.get(node_id)
                value = dict(node.labels).get(label, "") if node is not None else ""
                zones[value] = zones.get(value, 0) + count
        return zones

    def _place_policy(self, spec: TaskSpec, shape: tuple, service: str) -> Decision:
        """A replica of a service, or a task with constraints: filters, then the fewest of its
        service's replicas per value of the ``spread`` label, then per node, then BestFit.

        Spreading per node is Kubernetes' and Swarm's default, where Nomad lowers the score
        of a node that holds the job already: replicas on distinct nodes survive the loss of
        one; a ``spread`` label does the same for zones or racks (Swarm's placement preference,
        a node without the label counting as one more value). ``max_per_node`` skips a node
        that holds that many. Separate from ``place`` so lone tasks keep its one comparison
        per group; this one looks at every node of a group (``members`` and a hostname
        constraint may tell them apart), which is fine for a service's handful of replicas.
        """
        mem, cpu, ports, selectors, needs, constraints, _ = shape
        members = self._spread.setdefault(service, {}) if service else {}
        cap = spec.max_per_node if service else 0
        label = spec.spread if service else ""
        zones = self._spread_of(service, label) if label else {}
        shared = tuple(c for c in constraints if not c.per_node)
        own = tuple(c for c in constraints if c.per_node)
        best: tuple[int, int, float, str] | None = None
        best_key = None
        for key, heap in self._groups.items():
            labels, has, cap_mem, cap_cpu, used_mem, used_cpu, taken, _platform = key
            if mem > cap_mem - used_mem or cpu > cap_cpu - used_cpu:
                continue
            if (selectors and not selectors <= labels) or (ports and not ports.isdisjoint(taken)):
                continue
            if needs and not needs <= has:
                continue
            if shared and not matches_all(shared, self._nodes[heap[0]]):
                continue
            nodes = [n for n in heap if n in self._meets(own)] if own else heap
            if cap:
                nodes = [n for n in nodes if members.get(n, 0) < cap]
            if not nodes:
                continue
            hits, node_id = min((members.get(n, 0), n) for n in nodes)
            zone = zones.get(dict(labels).get(label, ""), 0) if label else 0
            candidate = (zone, hits, -bestfit(cap_mem, cap_cpu, used_mem + mem, used_cpu + cpu), node_id)
            if best is None or candidate < best:
                best, best_key = candidate, key
        if best is None or best_key is None:
            decision = self._explain(spec, service)
            self._no_fit[shape] = decision
            return decision
        _zone, hits, negative_score, node_id = best
        self._take(best_key, node_id, spec)
        if service:
            members[node_id] = hits + 1
            if label:
                value = dict(self._nodes[node_id].labels).get(label, "")
                zones[value] = zones.get(value, 0) + 1
        return Fit(node_id, -negative_score)

    def _meets(self, constraints: tuple) -> frozenset[str]:
        """The nodes that meet ``constraints`` (per-node ones), computed once per pass."""
        found = self._meeting.get(constraints)
        if found is None:
            found = self._meeting[constraints] = frozenset(
                n.id for n in self._nodes.values() if matches_all(constraints, n))
        return found

    def _place_pinned(self, spec: TaskSpec, service: str, pin: str) -> Decision:
        """A global service's replica: on its own node, or nowhere (saying what that node lacks)."""
        node = self._nodes.get(pin)
        why = self._pinned_problem(spec, node)
        if why or node is None:
            return NoFit(NoFitKind.PINNED, spec.memory, spec.cpu_millis, spec.static_host_ports,
                         frozenset(spec.node_selectors), spec.host_volumes,
                         constraints=tuple(str(c) for c in spec.constraints), service=service,
                         pinned=pin, pinned_why=why or "not registered")
        use = self._usage[pin]
        score = bestfit(node.capacity.memory, node.capacity.cpu_millis, use.used.memory + spec.memory,
                        use.used.cpu_millis + spec.cpu_millis)
        self._take(self._key(pin), pin, spec)
        if service:
            members = self._spread.setdefault(service, {})
            members[pin] = members.get(pin, 0) + 1
        return Fit(pin, score)

    def _pinned_problem(self, spec: TaskSpec, node: NodeInfo | None) -> str:
        if node is None:
            return "not registered"
        if not node.schedulable:
            return node.status if node.ready else f"not ready ({node.ready_reason or 'its engine does not answer'})"
        if not (set(spec.node_selectors) <= set(node.labels) and matches_all(spec.constraints, node)):
            return "no longer eligible (selectors or constraints)"
        if not spec.host_needs <= node.offers:
            return "missing a host volume or device, or not allowing privileged containers"
        use = self._usage[node.id]
        if not spec.static_host_ports.isdisjoint(use.ports):
            return "using its host port already"
        if not spec.resources.fits_in(node.capacity - use.used):
            return "short of memory or CPU"
        return ""

    def _explain(self, spec: TaskSpec, service: str = "") -> NoFit:
        """Say which filter left no node, naming the closest miss. Failure path only."""
        asked = NoFit(NoFitKind.OTHER, spec.memory, spec.cpu_millis, spec.static_host_ports,
                      frozenset(spec.node_selectors), spec.host_volumes,
                      constraints=tuple(str(c) for c in spec.constraints), service=service)
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
        eligible = [i for i in eligible if matches_all(spec.constraints, self._nodes[i])]
        if not eligible:
            return replace(asked, kind=NoFitKind.CONSTRAINT)
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
        if service and spec.max_per_node:
            members = self._spread.get(service, {})
            allowed = [i for i in allowed if members.get(i, 0) < spec.max_per_node]
            if not allowed:
                return replace(asked, kind=NoFitKind.MAX_PER_NODE, max_per_node=spec.max_per_node)
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

    Filters, in the order a no-fit names them: alive and ready, node selectors, constraints,
    host volumes (a node must declare every host volume the task mounts), host devices (a
    node must hand out every one asked for), privilege (a privileged task needs a node that
    allows it), a service's ``max_per_node``, static host ports, then memory and CPU.

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
    replicas are (``spread``: service -> node -> replicas placed before this pass), per
    value of its ``spread`` label first if it has one, BestFit among those; a lone task is
    packed by BestFit alone. A global service's replica goes to its own node (``pin``) or
    nowhere.
    """
    packer = _Packer(nodes, usage, spread)
    placements: list[Placement] = []
    refused: dict[str, NoFit] = {}
    for task in tasks:
        decision = packer.place(task.spec, task.service, task.pin)
        if isinstance(decision, Fit):
            placements.append(Placement(task.id, decision.node_id, task.generation))
        else:
            refused[task.id] = decision
    return placements, refused
