"""The placement planner: BestFit placement, typed no-fit reasons, and properties of a plan.

The properties compare the grouped packer against a plain loop over every node
(the obvious definition of BestFit, on alive and ready nodes), check what a plan must never do, and that
every NoFit's kind and figures agree with a recomputation from the inputs.
"""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from orion.control.placement import Fit, FreeOn, NoFit, bestfit, fit_score, plan, schedule
from orion.domain.constraints import parse as parse_constraint
from orion.domain.container import ContainerSettings, Device
from orion.domain.humanize import format_bytes, format_cpu
from orion.domain.model import (
    NODE_ALIVE,
    NODE_DEAD,
    NODE_STATES,
    NodeInfo,
    NodeUsage,
    NoFitKind,
    PortBinding,
    Resources,
    Task,
    TaskSpec,
    Volume,
)
from orion.state.commands import Placement

GiB = 1 << 30
MiB = 1 << 20


def node(node_id: str, mem_gib: float = 8, cpus: float = 4, status: str = NODE_ALIVE,
         **labels: str) -> NodeInfo:
    capacity = Resources(int(mem_gib * GiB), int(cpus * 1000))
    return NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:9000", capacity=capacity,
                    labels=tuple(sorted(labels.items())), status=status)


def spec(mem_gib: float = 1, cpus: float = 0.5, host_ports: tuple[int, ...] = (),
         **selectors: str) -> TaskSpec:
    return TaskSpec("orion/busybox:latest", int(mem_gib * GiB), int(cpus * 1000),
                    ports=tuple(PortBinding(80 + i, "tcp", p) for i, p in enumerate(host_ports)),
                    node_selectors=tuple(sorted(selectors.items())))


def used(mem_gib: float = 0, cpus: float = 0, ports: tuple[int, ...] = ()) -> NodeUsage:
    return NodeUsage(Resources(int(mem_gib * GiB), int(cpus * 1000)), frozenset((p, "tcp") for p in ports))


# -- examples ------------------------------------------------------------------------


def test_best_fit_prefers_the_node_that_ends_up_fullest():
    nodes = [node("a"), node("b"), node("c")]
    decision = schedule(spec(2, 1), nodes, {"b": used(4, 2)})
    assert isinstance(decision, Fit) and decision.node_id == "b"


def test_equal_scores_go_to_the_lowest_node_id_whatever_the_input_order():
    decision = schedule(spec(), [node("n3"), node("n1"), node("n2")], {})
    assert decision == schedule(spec(), [node("n1"), node("n2"), node("n3")], {})
    assert isinstance(decision, Fit) and decision.node_id == "n1"


def test_a_full_node_scores_one_and_an_untouched_one_nearly_zero():
    cap = Resources(8 * GiB, 4000)
    assert fit_score(cap, cap) == 1.0
    assert fit_score(cap, Resources()) == 0.0
    assert 0 < fit_score(cap, Resources(GiB, 500)) < fit_score(cap, Resources(4 * GiB, 2000)) < 1
    # The packer's loop calls the same function over plain numbers.
    assert fit_score(cap, Resources(GiB, 500)) == bestfit(8 * GiB, 4000, GiB, 500)
    # A resource the node has none of counts as full: no help, no harm.
    assert bestfit(8 * GiB, 0, 8 * GiB, 0) == 1.0


def test_only_alive_nodes_are_used():
    nodes = [node("a", status=NODE_DEAD), node("b", status="suspect"), node("c")]
    assert schedule(spec(), nodes, {}) == Fit("c", schedule(spec(), [node("c")], {}).score)


def no_fit(decision) -> NoFit:
    assert isinstance(decision, NoFit), decision
    return decision


def test_a_restarting_node_gets_nothing_new():
    nodes = [node("a", status="restarting"), node("b", mem_gib=2)]
    assert schedule(spec(), nodes, {}).node_id == "b"
    assert no_fit(schedule(spec(), [node("a", status="restarting")], {})).sentence == "no alive nodes (1 restarting)"


def test_no_nodes_at_all():
    why = no_fit(schedule(spec(), [], {}))
    assert (why.kind, why.statuses) == (NoFitKind.NO_NODES, ())
    assert why.sentence == "no alive nodes: none are registered"


def test_no_alive_nodes_counts_the_others():
    nodes = [node("a", status=NODE_DEAD), node("b", status=NODE_DEAD), node("c", status="left")]
    why = no_fit(schedule(spec(), nodes, {}))
    assert (why.kind, why.statuses) == (NoFitKind.NO_NODES, (("dead", 2), ("left", 1)))
    assert why.sentence == "no alive nodes (2 dead, 1 left)"


def test_selector_is_matched_against_labels():
    nodes = [node("a", disk="hdd"), node("b", disk="ssd", zone="z1")]
    assert schedule(spec(disk="ssd"), nodes, {}).node_id == "b"
    why = no_fit(schedule(spec(disk="nvme", zone="z1"), nodes, {}))
    assert (why.kind, why.selectors) == (NoFitKind.SELECTOR, frozenset({("disk", "nvme"), ("zone", "z1")}))
    assert why.sentence == "no alive node matches selector disk=nvme, zone=z1"


def test_a_task_goes_only_where_every_host_volume_it_mounts_is_declared():
    nodes = [node("a"), replace(node("b"), host_volumes=("data",)), replace(node("c"), host_volumes=("data", "logs"))]
    both = TaskSpec("img", GiB, 100, volumes=(Volume("data", "/data"), Volume("logs", "/logs", True)))
    assert schedule(both, nodes, {}) == Fit("c", schedule(both, nodes[2:], {}).score)
    # A docker named volume is the engine's to create: any node will do.
    named = TaskSpec("img", GiB, 100, volumes=(Volume("cache", "/cache", type="volume"),))
    assert schedule(named, nodes[:1], {}).node_id == "a"


def test_a_missing_host_volume_is_named():
    nodes = [replace(node("a"), host_volumes=("data",)), node("b", zone="z1")]
    wants = TaskSpec("img", GiB, 100, volumes=(Volume("data", "/data"), Volume("pg", "/pg")))
    why = no_fit(schedule(wants, nodes, {}))
    assert (why.kind, why.missing) == (NoFitKind.VOLUME, frozenset({"pg"}))
    assert why.sentence == "no alive node declares host volume pg"
    in_zone = no_fit(schedule(replace(wants, node_selectors=(("zone", "z1"),)), nodes, {}))
    assert in_zone.missing == {"data", "pg"}
    assert in_zone.sentence == "no alive node matching the selector declares host volumes data, pg"
    apart = [replace(node("a"), host_volumes=("data",)), replace(node("b"), host_volumes=("pg",))]
    split = no_fit(schedule(wants, apart, {}))
    assert (split.kind, split.missing) == (NoFitKind.VOLUME, frozenset())
    assert split.sentence == "no alive node declares all of host volumes data, pg"


def test_a_task_goes_only_where_its_devices_are_handed_out_and_privilege_allowed():
    fuse = TaskSpec("img", GiB, 100, container=ContainerSettings(devices=(Device("/dev/fuse", "/dev/fuse"),)))
    nodes = [node("a"), replace(node("b"), host_devices=("/dev/fuse",)), replace(node("c"), allow_privileged=True)]
    assert schedule(fuse, nodes, {}).node_id == "b"
    why = no_fit(schedule(fuse, [nodes[0], nodes[2]], {}))
    assert (why.kind, why.devices, why.missing) == (NoFitKind.DEVICE, {"/dev/fuse"}, {"/dev/fuse"})
    assert why.sentence == "no eligible node hands out host device /dev/fuse (host_devices in a node's config)"
    root = TaskSpec("img", GiB, 100, container=ContainerSettings(privileged=True))
    assert schedule(root, nodes, {}).node_id == "c"
    why = no_fit(schedule(root, nodes[:2], {}))
    assert why.kind == NoFitKind.PRIVILEGED
    assert why.sentence == "no eligible node allows privileged containers (allow_privileged in a node's config)"
    # Both asked: the node that allows privilege lacks the device, and the other way round.
    both = replace(root, container=replace(fuse.container, privileged=True))
    assert no_fit(schedule(both, nodes, {})).kind == NoFitKind.PRIVILEGED
    assert schedule(both, [*nodes, replace(node("d"), host_devices=("/dev/fuse",), allow_privileged=True)],
                    {}).node_id == "d"


def test_host_port_taken_everywhere():
    nodes = [node("a"), node("b")]
    usage = {"a": used(ports=(8080,)), "b": used(ports=(8080, 9090))}
    why = no_fit(schedule(spec(host_ports=(8080,)), nodes, usage))
    assert (why.kind, why.ports) == (NoFitKind.PORTS, frozenset({(8080, "tcp")}))
    assert why.sentence == "host port 8080/tcp is taken on every eligible node"
    assert schedule(spec(host_ports=(9090,)), nodes, usage).node_id == "a"
    both = no_fit(schedule(spec(host_ports=(9090, 8080)), nodes, usage))
    assert both.kind == NoFitKind.PORTS
    assert both.sentence == "host ports 8080/tcp, 9090/tcp: every eligible node already uses at least one of them"


def test_memory_reason_names_the_largest_free_node():
    nodes = [node("node1", 4), node("node2", 8), node("node3", 8)]
    why = no_fit(schedule(spec(100), nodes, {"node2": used(0.9), "node3": used(2)}))
    assert (why.kind, why.memory) == (NoFitKind.MEMORY, 100 * GiB)
    assert why.most_memory == FreeOn("node2", Resources(8 * GiB - int(0.9 * GiB), 4000))
    assert why.sentence == "no node has 100.0 GiB free memory; largest free: node2 7.1 GiB"


def test_cpu_reason_names_the_most_free_node():
    nodes = [node("a", cpus=2), node("b", cpus=4)]
    why = no_fit(schedule(spec(1, 8), nodes, {"b": used(cpus=2.5)}))
    assert (why.kind, why.cpu_millis, why.most_cpu) == (NoFitKind.CPU, 8000, FreeOn("a", Resources(8 * GiB, 2000)))
    assert why.sentence == "no node has 8 CPUs free; most free: a 2 CPUs"


def test_memory_on_one_node_and_cpu_on_another_is_not_a_fit():
    nodes = [node("roomy", 16, 1), node("fast", 1, 16)]
    why = no_fit(schedule(spec(4, 4), nodes, {}))
    assert (why.kind, why.memory, why.cpu_millis) == (NoFitKind.MEMORY_CPU, 4 * GiB, 4000)
    assert (why.most_memory, why.most_cpu) == (FreeOn("roomy", Resources(16 * GiB, 1000)),
                                               FreeOn("fast", Resources(GiB, 16000)))
    assert why.sentence == ("no node has both 4.0 GiB memory and 4 CPUs free; largest free memory: roomy "
                            "(16.0 GiB, 1 CPU), most free CPU: fast (16 CPUs, 1.0 GiB)")


def test_the_sentence_is_written_from_the_values():
    """Another kind with the same figures says something else: the kind decides the words."""
    why = NoFit(NoFitKind.MEMORY, 2 * GiB, 500, most_memory=FreeOn("n1", Resources(GiB, 4000)))
    assert why.sentence == "no node has 2.0 GiB free memory; largest free: n1 1.0 GiB"
    assert NoFit(NoFitKind.OTHER, 2 * GiB, 500).sentence == "no node fits 2.0 GiB memory and 0.5 CPUs"


def test_human_units():
    assert format_bytes(100 * GiB) == "100.0 GiB"
    assert format_bytes(512 * MiB) == "512.0 MiB"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(12) == "12 B"
    assert format_cpu(1000) == "1 CPU"
    assert format_cpu(1500) == "1.5 CPUs"
    assert format_cpu(250) == "0.25 CPUs"


def test_a_plan_sees_its_own_earlier_placements():
    tasks = [Task(f"t{i}", spec(3, 1), generation=i % 2) for i in range(4)]
    placements, refused = plan(tasks, [node("a", 8), node("b", 4)], {})
    # b ends fuller with the first (3 of 4 GiB); then a takes two (6 of 8); the fourth fits nowhere.
    assert placements == [Placement("t0", "b", 0), Placement("t1", "a", 1), Placement("t2", "a", 0)]
    assert {k: v.sentence for k, v in refused.items()} == {
        "t3": "no node has 3.0 GiB free memory; largest free: a 2.0 GiB"}


def test_reasons_in_a_plan_quote_the_figures_at_that_point():
    tasks = [Task("big1", spec(6)), Task("small", spec(2)), Task("big2", spec(6))]
    _, refused = plan(tasks, [node("a", 4)], {})
    assert {k: v.sentence for k, v in refused.items()} == {
        "big1": "no node has 6.0 GiB free memory; largest free: a 4.0 GiB",
        "big2": "no node has 6.0 GiB free memory; largest free: a 2.0 GiB"}


def test_a_plan_never_gives_one_host_port_twice_on_a_node():
    tasks = [Task(f"t{i}", spec(0.1, 0, host_ports=(8080,))) for i in range(3)]
    placements, refused = plan(tasks, [node("a"), node("b")], {})
    assert sorted(p.node_id for p in placements) == ["a", "b"]
    assert {k: (v.kind, v.sentence) for k, v in refused.items()} == {
        "t2": (NoFitKind.PORTS, "host port 8080/tcp is taken on every eligible node")}


# -- properties ----------------------------------------------------------------------

labels = st.fixed_dictionaries({}, optional={"disk": st.sampled_from(["ssd", "hdd"]),
                                             "zone": st.sampled_from(["a", "b"])})
port_sets = st.sets(st.sampled_from([80, 8080, 9090]), max_size=2)
# Constraints over labels, platform and the hostname (a per-node attribute the groups cannot share).
constraint_sets = st.sets(st.sampled_from([
    "node.labels.zone != a", "node.labels.zone in (a, b)", "node.labels.disk exists", "node.labels.disk not exists",
    "node.platform.arch == arm64", "node.hostname != h1", "node.hostname not in (h0, h2)", "engine.version >= 24",
]), max_size=2).map(lambda texts: tuple(sorted(parse_constraint(t) for t in texts)))
volume_sets = st.sets(st.sampled_from(["data", "logs"]), max_size=2)
device_sets = st.sets(st.sampled_from(["/dev/fuse", "/dev/kvm"]), max_size=2)
rarely = st.sampled_from([False, False, False, True])


@st.composite
def clusters(draw):
    count = draw(st.integers(0, 8))
    nodes, usage = [], {}
    for i in range(count):
        cap = Resources(draw(st.sampled_from([1, 2, 4, 8])) * GiB,
                        draw(st.sampled_from([0, 1000, 2000, 4000])))
        status = draw(st.sampled_from([NODE_ALIVE] * 4 + list(NODE_STATES)))
        ready = draw(st.sampled_from([True, True, True, False]))  # readiness: its engine answers
        nodes.append(NodeInfo(f"n{i}", "", "", capacity=cap, labels=tuple(sorted(draw(labels).items())),
                              status=status, host_volumes=tuple(sorted(draw(volume_sets))), ready=ready,
                              host_devices=tuple(sorted(draw(device_sets))), allow_privileged=draw(st.booleans()),
                              ready_reason="" if ready else "engine unreachable", hostname=f"h{i}",
                              os="linux", arch=draw(st.sampled_from(["x86_64", "arm64"])),
                              engine_version=draw(st.sampled_from(["20.10.24", "24.0.7", ""]))))
        if draw(st.booleans()):
            frac = draw(st.sampled_from([0, 0.25, 0.5, 1.0, 1.25]))  # 1.25: capacity shrank under it
            usage[f"n{i}"] = NodeUsage(Resources(int(cap.memory * frac), int(cap.cpu_millis * frac)),
                                       frozenset((p, "tcp") for p in draw(port_sets)))
    return nodes, usage


@st.composite
def task_lists(draw):
    tasks = []
    for i in range(draw(st.integers(0, 25))):
        s = TaskSpec("img", draw(st.sampled_from([0, GiB // 4, GiB // 2, GiB, 3 * GiB])),
                     draw(st.sampled_from([0, 250, 500, 1000, 2000])),
                     ports=tuple(PortBinding(1000 + j, "tcp", p)
                                 for j, p in enumerate(sorted(draw(port_sets)))),
                     node_selectors=tuple(sorted(draw(labels).items())),
                     volumes=tuple(Volume(v, f"/{v}") for v in sorted(draw(volume_sets))),
                     container=ContainerSettings(
                         devices=tuple(Device(d, d) for d in sorted(draw(device_sets) if draw(rarely) else ())),
                         privileged=draw(rarely)),
                     constraints=draw(constraint_sets) if draw(st.integers(0, 3)) == 0 else ())
        tasks.append(Task(f"t{i}", s, generation=draw(st.integers(0, 3))))
    return tasks


def takes_tasks(n: NodeInfo) -> bool:
    """Alive and ready (its engine answers): the only nodes anything is placed on."""
    return n.status == NODE_ALIVE and n.ready


def fits(s: TaskSpec, n: NodeInfo, u: NodeUsage) -> bool:
    free = n.capacity - u.used
    return (takes_tasks(n) and s.resources.fits_in(free) and s.static_host_ports.isdisjoint(u.ports)
            and set(s.node_selectors) <= set(n.labels) and s.host_volumes <= set(n.host_volumes)
            and s.container.host_devices <= set(n.host_devices) and (n.allow_privileged or not s.container.privileged)
            and all(c.matches(n) for c in s.constraints))


def reference_plan(tasks, nodes, usage):
    """BestFit by its definition: score every feasible node, highest score, then lowest id."""
    use = {n.id: usage.get(n.id, NodeUsage()) for n in nodes}
    placements, refused = [], []
    for t in tasks:
        feasible = [n for n in nodes if fits(t.spec, n, use[n.id])]
        if not feasible:
            refused.append(t.id)
            continue
        best = min(feasible, key=lambda n: (-fit_score(n.capacity, use[n.id].used + t.spec.resources), n.id))
        use[best.id] = use[best.id].plus(t.spec)
        placements.append(Placement(t.id, best.id, t.generation))
    return placements, refused


@settings(max_examples=300, deadline=None)
@given(clusters(), task_lists())
def test_plan_is_best_fit_by_definition(cluster, tasks):
    nodes, usage = cluster
    placements, refused = plan(tasks, nodes, usage)
    want_placed, want_refused = reference_plan(tasks, nodes, usage)
    assert placements == want_placed
    assert list(refused) == want_refused
    assert all(why.sentence for why in refused.values())


@settings(max_examples=300, deadline=None)
@given(clusters(), task_lists())
def test_plan_never_over_commits_and_respects_selectors_and_ports(cluster, tasks):
    nodes, usage = cluster
    by_id = {n.id: n for n in nodes}
    specs = {t.id: t.spec for t in tasks}
    placements, refused = plan(tasks, nodes, usage)
    use = {n.id: usage.get(n.id, NodeUsage()) for n in nodes}
    placed = set()
    for p in placements:
        n, s = by_id[p.node_id], specs[p.task_id]
        assert fits(s, n, use[n.id]), f"{p} does not fit"
        use[n.id] = use[n.id].plus(s)
        placed.add(p.task_id)
    assert placed.isdisjoint(refused) and placed | set(refused) == set(specs)


@settings(max_examples=300, deadline=None)
@given(clusters(), task_lists())
def test_no_fit_only_when_truly_nothing_fits(cluster, tasks):
    nodes, usage = cluster
    placements, refused = plan(tasks, nodes, usage)
    where = {p.task_id: p.node_id for p in placements}
    use = {n.id: usage.get(n.id, NodeUsage()) for n in nodes}
    for t in tasks:
        if t.id in refused:
            assert not any(fits(t.spec, n, use[n.id]) for n in nodes), refused[t.id]
        else:
            use[where[t.id]] = use[where[t.id]].plus(t.spec)


@settings(max_examples=200, deadline=None)
@given(clusters(), task_lists(), st.randoms(use_true_random=False))
def test_plan_is_deterministic_and_ignores_node_order(cluster, tasks, rnd: random.Random):
    nodes, usage = cluster
    first = plan(tasks, nodes, usage)
    shuffled = list(nodes)
    rnd.shuffle(shuffled)
    assert plan(tasks, nodes, usage) == first
    assert plan(tasks, shuffled, dict(reversed(list(usage.items())))) == first


def explained_by(why: NoFit, s: TaskSpec, nodes: list[NodeInfo], use: dict[str, NodeUsage]) -> None:
    """The NoFit's kind and figures, checked against the nodes as they were when it was made."""
    assert (why.memory, why.cpu_millis, why.ports, why.selectors, why.volumes) == (
        s.memory, s.cpu_millis, s.static_host_ports, frozenset(s.node_selectors), s.host_volumes)
    alive = [n for n in nodes if takes_tasks(n)]
    if why.kind == NoFitKind.NO_NODES:
        assert not alive and sum(c for _, c in why.statuses) == len(nodes)
        not_ready = sum(n.status == NODE_ALIVE and not n.ready for n in nodes)
        assert dict(why.statuses).get("not ready", 0) == not_ready
        return
    eligible = [n for n in alive if set(s.node_selectors) <= set(n.labels)]
    if why.kind == NoFitKind.SELECTOR:
        assert alive and not eligible
        return
    selected, eligible = eligible, [n for n in eligible if all(c.matches(n) for c in s.constraints)]
    if why.kind == NoFitKind.CONSTRAINT:
        assert selected and not eligible and why.constraints == tuple(str(c) for c in s.constraints)
        return
    mounting = [n for n in eligible if s.host_volumes <= set(n.host_volumes)]
    if why.kind == NoFitKind.VOLUME:
        assert eligible and not mounting
        assert why.missing == s.host_volumes - {v for n in eligible for v in n.host_volumes}
        return
    handing = [n for n in mounting if s.container.host_devices <= set(n.host_devices)]
    if why.kind == NoFitKind.DEVICE:
        assert mounting and not handing
        assert why.missing == s.container.host_devices - {d for n in mounting for d in n.host_devices}
        return
    allowed = [n for n in handing if n.allow_privileged or not s.container.privileged]
    if why.kind == NoFitKind.PRIVILEGED:
        assert handing and not allowed
        return
    port_free = [n for n in allowed if s.static_host_ports.isdisjoint(use[n.id].ports)]
    if why.kind == NoFitKind.PORTS:
        assert allowed and not port_free
        return
    assert port_free, why
    free = {n.id: n.capacity - use[n.id].used for n in port_free}
    most_mem, most_cpu = max(f.memory for f in free.values()), max(f.cpu_millis for f in free.values())
    if why.kind == NoFitKind.MEMORY:  # no alive, eligible, port-free node had the memory
        assert most_mem < s.memory and why.most_memory is not None
        assert why.most_memory.free == free[why.most_memory.node_id] and why.most_memory.free.memory == most_mem
    elif why.kind == NoFitKind.CPU:  # memory was there somewhere, CPU nowhere
        assert most_mem >= s.memory and most_cpu < s.cpu_millis and why.most_cpu is not None
        assert why.most_cpu.free == free[why.most_cpu.node_id] and why.most_cpu.free.cpu_millis == most_cpu
    else:  # each was there somewhere, never both on one node
        assert why.kind == NoFitKind.MEMORY_CPU
        assert most_mem >= s.memory and most_cpu >= s.cpu_millis
        assert not any(s.resources.fits_in(f) for f in free.values())


@settings(max_examples=300, deadline=None)
@given(clusters(), task_lists())
def test_every_no_fit_kind_agrees_with_a_recomputation(cluster, tasks):
    nodes, usage = cluster
    placements, refused = plan(tasks, nodes, usage)
    where = {p.task_id: p.node_id for p in placements}
    use = {n.id: usage.get(n.id, NodeUsage()) for n in nodes}
    for t in tasks:
        if t.id in refused:
            explained_by(refused[t.id], t.spec, nodes, use)
        else:
            use[where[t.id]] = use[where[t.id]].plus(t.spec)


# -- a service's replicas spread ---------------------------------------------------------------


def replicas(service: str, n: int, mem_gib: float = 1) -> list[Task]:
    return [Task(f"{service}.{i}.d1", spec(mem_gib), service=service, slot=i) for i in range(n)]


def test_a_services_replicas_go_to_distinct_nodes_where_lone_tasks_are_packed():
    nodes = [node("a"), node("b"), node("c")]
    placed, _ = plan(replicas("web", 3), nodes, {})
    assert sorted(p.node_id for p in placed) == ["a", "b", "c"]
    lone, _ = plan([Task(f"t{i}", spec()) for i in range(3)], nodes, {})
    assert [p.node_id for p in lone] == ["a", "a", "a"]  # BestFit fills one node first


def test_a_replica_goes_where_its_service_has_the_fewest_then_the_fullest_of_those():
    nodes = [node("a"), node("b"), node("c")]
    usage = {"c": used(4, 2)}  # c is fuller: BestFit alone would pick it
    placed, _ = plan(replicas("web", 1), nodes, usage, spread={"web": {"c": 1, "a": 1}})
    assert [p.node_id for p in placed] == ["b"]
    placed, _ = plan(replicas("web", 1), nodes, usage, spread={"web": {"a": 1}})
    assert [p.node_id for p in placed] == ["c"]  # b and c hold none: the fuller one
    placed, _ = plan(replicas("api", 1), nodes, usage, spread={"web": {"c": 5}})
    assert [p.node_id for p in placed] == ["c"]  # another service's replicas do not count


def test_spread_gives_way_to_the_filters_a_replica_that_fits_one_node_goes_there():
    nodes = [node("a", mem_gib=8), node("b", mem_gib=2)]
    placed, no_fit = plan(replicas("web", 3, mem_gib=3), nodes, {})
    assert [p.node_id for p in placed] == ["a", "a"] and list(no_fit) == ["web.2.d1"]


@settings(max_examples=150, deadline=None)
@given(n_nodes=st.integers(1, 8), count=st.integers(1, 12), mem=st.sampled_from([0.5, 1, 2, 3]),
       busy=st.lists(st.floats(0, 6), min_size=8, max_size=8))
def test_replicas_are_never_stacked_while_a_fitting_node_has_fewer(n_nodes, count, mem, busy):
    nodes = [node(f"n{i}") for i in range(n_nodes)]
    usage = {f"n{i}": used(round(busy[i], 1)) for i in range(n_nodes)}
    placed, _ = plan(replicas("web", count, mem), nodes, usage)
    held: dict[str, int] = {}
    free = {n.id: n.capacity.memory - usage[n.id].used.memory for n in nodes}
    for p in placed:  # replay: each choice had the fewest replicas among nodes it fitted on
        need = int(mem * GiB)
        fitting = [i for i, f in free.items() if f >= need]
        assert p.node_id in fitting
        assert held.get(p.node_id, 0) == min(held.get(i, 0) for i in fitting)
        held[p.node_id] = held.get(p.node_id, 0) + 1
        free[p.node_id] -= need
