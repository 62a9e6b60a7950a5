"""The placement planner's service policies: a spread over a label, ``maxPerNode``, a global
replica pinned to its node, and constraints read per node (hostname) inside a group of nodes
that look alike; each checked on examples and against a by-definition oracle."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from orion.control.placement import NoFit, fit_score, plan
from orion.domain.constraints import parse as parse_constraint
from orion.domain.model import NodeInfo, NodeUsage, NoFitKind, Resources, Task, TaskSpec
from orion.state.commands import Placement

GiB = 1 << 30


def node(node_id: str, mem_gib: int = 8, **labels: str) -> NodeInfo:
    return NodeInfo(node_id, "", "", capacity=Resources(mem_gib * GiB, 4000), labels=tuple(sorted(labels.items())),
                    hostname=f"host-{node_id}")


def replicas(n: int, mem_gib: float = 1, service: str = "web", **policy: object) -> list[Task]:
    spec = TaskSpec("img", int(mem_gib * GiB), 100, group=service, **policy)
    return [Task(f"{service}.{i}.d1", spec, service=service, slot=i) for i in range(n)]


def test_a_spread_over_zones_puts_replicas_in_every_zone_before_any_twice():
    nodes = [node("a1", zone="a"), node("a2", zone="a"), node("a3", zone="a"), node("b1", zone="b"),
             node("c1", zone="c")]
    placed, _ = plan(replicas(3, spread="zone"), nodes, {})
    assert sorted(p.node_id for p in placed) == ["a1", "b1", "c1"]
    placed, _ = plan(replicas(6, spread="zone"), nodes, {})
    zones = sorted(dict(next(n for n in nodes if n.id == p.node_id).labels)["zone"] for p in placed)
    assert zones == ["a", "a", "b", "b", "c", "c"]


def test_a_node_without_the_label_counts_as_one_more_value():
    placed, _ = plan(replicas(2, spread="zone"), [node("a1", zone="a"), node("a2", zone="a"), node("x")], {})
    assert sorted(p.node_id for p in placed) == ["a1", "x"]


def test_max_per_node_keeps_the_fourth_replica_pending_with_its_reason():
    placed, refused = plan(replicas(4, max_per_node=1), [node("n1"), node("n2"), node("n3")], {})
    assert sorted(p.node_id for p in placed) == ["n1", "n2", "n3"]
    why = refused["web.3.d1"]
    assert (why.kind, why.sentence) == (NoFitKind.MAX_PER_NODE,
                                         "every eligible node already runs 1 replica of web (maxPerNode 1)")


def test_max_per_node_counts_what_runs_already():
    placed, refused = plan(replicas(2, max_per_node=2), [node("n1"), node("n2")], {},
                           spread={"web": {"n1": 2, "n2": 1}})
    assert [p.node_id for p in placed] == ["n2"] and list(refused) == ["web.1.d1"]


def test_a_hostname_constraint_picks_one_node_of_identical_ones():
    nodes = [node(f"n{i}") for i in range(5)]  # one group: same labels, capacity, usage
    tasks = [Task("t", TaskSpec("img", GiB, constraints=(parse_constraint("node.hostname == host-n3"),)))]
    assert [p.node_id for p in plan(tasks, nodes, {})[0]] == ["n3"]
    tasks = [Task("t", TaskSpec("img", GiB, constraints=(parse_constraint("node.hostname != host-n0"),)))]
    assert [p.node_id for p in plan(tasks, nodes, {})[0]] == ["n1"]


def test_a_constraint_nobody_meets_is_named():
    tasks = [Task("t", TaskSpec("img", GiB, constraints=(parse_constraint("node.labels.zone != a"),)))]
    _, refused = plan(tasks, [node("a1", zone="a")], {})
    assert (refused["t"].kind, refused["t"].sentence) == (NoFitKind.CONSTRAINT,
                                                          "no alive node satisfies node.labels.zone != a")


def test_a_pinned_replica_goes_to_its_node_or_says_what_that_node_is():
    spec = TaskSpec("img", GiB, group="agent")
    nodes = [node("n1"), replace(node("n2"), status="dead")]
    placed, refused = plan([Task("agent.n1", spec, service="agent", pin="n1"),
                            Task("agent.n2", spec, service="agent", pin="n2"),
                            Task("agent.n9", spec, service="agent", pin="n9")], nodes, {})
    assert placed == [Placement("agent.n1", "n1", 0)]
    assert refused["agent.n2"].sentence == "replica of global service agent belongs to node n2, which is dead"
    assert refused["agent.n9"].sentence == "replica of global service agent belongs to node n9, which is not registered"
    full = plan([Task("agent.n1", TaskSpec("img", 9 * GiB), service="agent", pin="n1")], nodes, {})[1]
    assert full["agent.n1"].kind == NoFitKind.PINNED and full["agent.n1"].pinned_why == "short of memory or CPU"


# -- the oracle: a service's replicas, by definition ------------------------------------------------------


def reference(tasks: list[Task], nodes: list[NodeInfo], usage: dict[str, NodeUsage], held: dict[str, int],
              label: str, cap: int) -> tuple[list[Placement], list[str]]:
    """Each replica in turn: of the alive nodes it fits on (memory, CPU) and that hold fewer than
    ``cap``, the one whose ``label`` value holds fewest of the service, then the node holding fewest,
    then the fullest after (BestFit), then the lowest id."""
    use = {n.id: usage.get(n.id, NodeUsage()) for n in nodes}
    on = dict(held)
    placements, refused = [], []
    for t in tasks:
        fitting = [n for n in nodes if n.schedulable and t.spec.resources.fits_in(n.capacity - use[n.id].used)
                   and (not cap or on.get(n.id, 0) < cap)]
        if not fitting:
            refused.append(t.id)
            continue

        def zone(n: NodeInfo) -> int:
            value = dict(n.labels).get(label, "")
            return sum(c for i, c in on.items() if dict(next(m for m in nodes if m.id == i).labels).get(label, "")
                       == value) if label else 0

        best = min(fitting, key=lambda n: (zone(n), on.get(n.id, 0),
                                           -fit_score(n.capacity, use[n.id].used + t.spec.resources), n.id))
        use[best.id] = use[best.id].plus(t.spec)
        on[best.id] = on.get(best.id, 0) + 1
        placements.append(Placement(t.id, best.id, t.generation))
    return placements, refused


@settings(max_examples=300, deadline=None)
@given(zones=st.lists(st.sampled_from(["a", "b", "c", ""]), min_size=1, max_size=7),
       mems=st.lists(st.sampled_from([1, 2, 4, 8]), min_size=7, max_size=7),
       held=st.lists(st.integers(0, 2), min_size=7, max_size=7), count=st.integers(1, 10),
       mem=st.sampled_from([0.5, 1, 2]), label=st.sampled_from(["", "zone"]), cap=st.integers(0, 3))
def test_replicas_are_placed_as_the_definition_says(zones, mems, held, count, mem, label, cap):
    nodes = [node(f"n{i}", mems[i], **({"zone": z} if z else {})) for i, z in enumerate(zones)]
    on = {n.id: held[i] for i, n in enumerate(nodes) if held[i]}
    usage = {n.id: NodeUsage(Resources(int(held[i] * mem * GiB) if held[i] * mem <= mems[i] else 0, 0))
             for i, n in enumerate(nodes)}
    tasks = replicas(count, mem, spread=label, max_per_node=cap)
    placements, refused = plan(tasks, nodes, usage, spread={"web": on})
    want_placed, want_refused = reference(tasks, nodes, usage, on, label, cap)
    assert placements == want_placed
    assert list(refused) == want_refused
    assert all(isinstance(why, NoFit) and why.sentence for why in refused.values())
