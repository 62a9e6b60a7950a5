"""The leader's lease pass: which leases it gives back and when (the planner), and the loop
that submits its decisions against a real StateMachine (LocalStore)."""

from __future__ import annotations

from orion.control.lease_reclaim import ReleaseKind, plan
from orion.control.lease_reclaim_loop import NOT_LEADER, NOTHING, LeaseReclaimLoop
from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.domain.network import NetworkSettings, SubnetLease
from orion.state.commands import (
    AcquireLease,
    CreateTask,
    InitNetwork,
    Placement,
    PlaceTasks,
    RegisterNode,
    ReleaseLease,
    ReportTaskState,
    SetNodeStatus,
    StopTask,
)
from orion.store.local import LocalStore

GRACE = 600.0
N1 = (0, (("n1", 7),))  # the lease (changed at 0) and its holder n1 (status last changed at 7) then


def lease(host: str, *holders: str, index: int = 0) -> SubnetLease:
    return SubnetLease(index, f"10.42.{index}.0/24", host, holders, "192.0.2.1", "0e:42:0a:2a:00:00")


def nodes(changed: int = 7, **statuses: str) -> dict[str, NodeInfo]:
    """Nodes by id with these statuses, each last changed at Raft index ``changed``."""
    return {n: NodeInfo(n, "", "", status=s, status_index=changed) for n, s in statuses.items()}


def test_a_lease_with_a_holder_that_may_still_use_it_is_kept():
    for status in ("alive", "suspect", "restarting"):
        decided = plan([lease("A", "n1", "n2")], nodes(n1="dead", n2=status), set(), 0.0, {}, GRACE)
        assert decided.releases == () and decided.gone_since == {}


def test_every_holder_dead_starts_the_clock_and_the_grace_releases():
    leases, registry = [lease("A", "n1")], nodes(n1="dead")
    first = plan(leases, registry, set(), 100.0, {}, GRACE)
    assert first.releases == () and first.gone_since == {"A": (N1, 100.0)}
    within = plan(leases, registry, set(), 100.0 + GRACE - 1, first.gone_since, GRACE)
    assert within.releases == () and within.gone_since == {"A": (N1, 100.0)}
    (release,) = plan(leases, registry, set(), 100.0 + GRACE, within.gone_since, GRACE).releases
    assert (release.host, release.kind) == ("A", ReleaseKind.DEAD)
    assert release.sentence == "released 10.42.0.0/24 of host A: n1 dead for 600s (grace 600s)"
    assert release.command().host == "A" and release.command().reason == release.sentence


def test_a_holder_back_alive_resets_the_clock():
    leases = [lease("A", "n1")]
    dead = plan(leases, nodes(n1="dead"), set(), 0.0, {}, GRACE)
    back = plan(leases, nodes(n1="alive"), set(), 10.0, dead.gone_since, GRACE)
    assert back.gone_since == {}
    again = plan(leases, nodes(n1="dead"), set(), GRACE + 5, back.gone_since, GRACE)
    assert again.releases == () and again.gone_since == {"A": (N1, GRACE + 5)}


def test_a_holder_that_came_back_and_died_again_between_two_passes_starts_the_clock_again():
    leases = [lease("A", "n1")]
    dead = plan(leases, nodes(n1="dead", changed=7), set(), 0.0, {}, GRACE)
    # Registered alive at index 20 and dead again at 30: no pass saw it alive.
    later = plan(leases, nodes(n1="dead", changed=30), set(), GRACE, dead.gone_since, GRACE)
    assert later.releases == () and later.gone_since == {"A": ((0, (("n1", 30),)), GRACE)}


def test_holders_that_are_gone_release_at_once_and_one_dead_among_them_waits():
    gone = nodes(n1="left")  # n2 is not registered at all
    (release,) = plan([lease("A", "n1", "n2")], gone, set(), 0.0, {}, GRACE).releases
    assert release.kind == ReleaseKind.GONE and "every holder left (n1, n2)" in release.sentence
    mixed = plan([lease("A", "n1", "n3")], {**gone, **nodes(n3="dead")}, set(), 0.0, {}, GRACE)
    assert mixed.releases == () and mixed.gone_since == {"A": ((0, (("n1", 7), ("n3", 7))), 0.0)}


def test_a_left_holder_that_tasks_still_hold_keeps_the_lease():
    assert plan([lease("A", "n1")], nodes(n1="left"), {"n1"}, 0.0, {}, GRACE).releases == ()


def test_clocks_of_leases_that_are_gone_are_forgotten():
    decided = plan([lease("B", "n2", index=1)], nodes(n2="alive"), set(), 5.0, {"A": (N1, 0.0)}, GRACE)
    assert decided.gone_since == {}


# -- the loop -----------------------------------------------------------------------------------

class World:
    def __init__(self) -> None:
        self.store = LocalStore()
        self.now = 0.0
        self.loop = LeaseReclaimLoop(self.store, GRACE, interval=1.0, write_timeout=1.0, mono=lambda: self.now)
        self.submit(InitNetwork(settings=NetworkSettings()))
        for n, host in (("n1", "A"), ("n2", "B")):
            self.submit(RegisterNode(node=NodeInfo(n, "a", "r", capacity=Resources(1 << 30, 1000))))
            self.submit(AcquireLease(node_id=n, host=host, underlay_ip="192.0.2.1", underlay_mtu=1500))

    def submit(self, command) -> dict:  # noqa: ANN001
        return self.store.submit(command, 1.0)

    def hosts(self) -> list[str]:
        return [lease.host for lease in self.store.read(lambda m: m.leases())[0]]


def test_the_loop_releases_a_dead_hosts_lease_after_the_grace_only():
    world = World()
    world.submit(SetNodeStatus(node_id="n1", status="dead"))
    assert world.loop.run_once().sentence == NOTHING
    world.now = GRACE - 0.5
    assert world.loop.run_once().sentence == NOTHING
    world.now = GRACE
    assert world.loop.run_once().sentence == "released 10.42.0.0/24 of host A: n1 dead for 600s (grace 600s)"
    assert world.hosts() == ["B"]


def test_the_loop_releases_a_drained_node_once_its_tasks_are_gone():
    world = World()
    world.submit(CreateTask(task_id="t1", spec=TaskSpec("img", 64 << 20)))
    world.submit(PlaceTasks(placements=(Placement("t1", "n1", 0),)))
    world.submit(SetNodeStatus(node_id="n1", status="left"))
    assert world.loop.run_once().sentence == NOTHING and world.hosts() == ["A", "B"]
    world.submit(StopTask(task_id="t1"))  # assigned -> stopping: still held
    assert world.loop.run_once().sentence == NOTHING
    world.submit(ReportTaskState(task_id="t1", node_id="n1", generation=1, state="stopped"))
    assert world.loop.run_once().sentence == "released 10.42.0.0/24 of host A: every holder left (n1)"
    assert world.hosts() == ["B"]


def test_a_new_leader_counts_the_grace_again():
    world = World()
    world.submit(SetNodeStatus(node_id="n1", status="dead"))
    world.loop.run_once()
    world.store.leader = False
    world.now = GRACE - 10
    assert world.loop.run_once().sentence == NOT_LEADER
    world.store.leader = True
    world.now = GRACE + 10
    assert world.loop.run_once().sentence == NOTHING  # its clock starts now: kept longer, never shorter
    world.now = 2 * GRACE + 10
    assert "released 10.42.0.0/24 of host A" in world.loop.run_once().sentence


def test_a_release_decided_before_a_holder_came_back_is_refused_by_the_machine():
    world = World()
    world.submit(SetNodeStatus(node_id="n1", status="dead"))
    world.loop.run_once()
    world.now = GRACE

    original = world.store.submit

    def back_first(command, timeout):  # noqa: ANN001, ANN202
        if isinstance(command, ReleaseLease):
            original(SetNodeStatus(node_id="n1", status="alive"), timeout)
        return original(command, timeout)

    world.store.submit = back_first  # type: ignore[method-assign]
    sentence = world.loop.run_once().sentence
    assert sentence.startswith("kept 10.42.0.0/24 of host A: ") and "n1, which is alive" in sentence
    assert world.hosts() == ["A", "B"]
