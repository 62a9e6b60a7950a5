"""Rebalance and redeploy (issue #22): the rebalance planner's rule and properties, and both as the
leader's real loops carry them out on a LocalStore (tests/workload_world.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from result_kit import accepted, refused
from workload_world import WorkloadWorld, node

from orion.control import rebalance
from orion.domain.model import RUNNING, NodeUsage, Resources, Task, TaskSpec
from orion.domain.service import REBALANCE, REDEPLOY, SUCCESSFUL, ServiceSpec, UpdatePolicy
from orion.state.commands import RebalanceService, RedeployService
from orion.state.results import RefusalKind

GiB = 1 << 30
MiB = 1 << 20


def web(count: int = 6, **task: object) -> ServiceSpec:
    return ServiceSpec("web", TaskSpec("app:1", 64 * MiB, restart_policy="always", **task), count=count,
                       update=UpdatePolicy(max_parallel=2, min_healthy_time=2.0))


def test_moves_the_newest_replicas_off_the_fullest_nodes_until_even():
    spec = web()
    live = [Task(f"web.{i}.d1", spec.task, service="web", slot=i, node_id=n, state=RUNNING)
            for i, n in enumerate(["n1", "n1", "n1", "n2", "n2", "n2"])]
    moves = rebalance.plan(spec, live, [node("n1"), node("n2"), node("n3")], {})
    assert moves.replicas == ("web.2.d1", "web.5.d1")
    assert moves.sentence == "web: move web.2.d1, web.5.d1 (n1 3, n2 3, n3 0 -> n1 2, n2 2, n3 2)"
    even = rebalance.plan(spec, live[1:5], [node("n1"), node("n2")], {})
    assert even.replicas == () and even.sentence == "web is spread evenly (n1 2, n2 2)"


def test_a_node_without_room_or_at_max_per_node_takes_nothing():
    spec = web(max_per_node=3)
    live = [Task(f"web.{i}.d1", spec.task, service="web", slot=i, node_id="n1", state=RUNNING) for i in range(3)]
    full = {"n2": NodeUsage(Resources(8 * GiB, 0))}
    assert rebalance.plan(spec, live, [node("n1"), node("n2")], full).replicas == ()


@settings(max_examples=200, deadline=None)
@given(counts=st.lists(st.integers(0, 6), min_size=1, max_size=5))
def test_after_the_moves_no_two_nodes_differ_by_more_than_one(counts):
    spec = web()
    live, i = [], 0
    for n, c in enumerate(counts):
        for _ in range(c):
            live.append(Task(f"web.{i}.d1", spec.task, service="web", slot=i, node_id=f"n{n}", state=RUNNING))
            i += 1
    moves = rebalance.plan(spec, live, [node(f"n{n}") for n in range(len(counts))], {})
    after = [c for _, c in moves.after]
    assert max(after) - min(after) <= 1 and sum(after) == sum(counts)
    # Only as many moves as the surplus over the ceiling of an even share.
    share = -(-sum(counts) // len(counts))
    assert len(moves.replicas) <= sum(max(c - share, 0) for c in counts) + len(counts)


def test_rebalance_after_a_node_returns_evens_the_count_with_the_update_rules():
    world = WorkloadWorld([node("n1"), node("n2")])
    world.put(web())
    world.settle(20)
    assert world.on_nodes("web") == {"n1": 3, "n2": 3}
    world.join(node("n3"))  # joins empty: placement moves nothing that runs
    world.settle(5)
    assert world.on_nodes("web") == {"n1": 3, "n2": 3}
    moves = world.read(lambda m: rebalance.plan(m.services.get("web").spec, world.wanted("web"), m.nodes(),
                                                m.usages()))
    result = world.submit(RebalanceService(name="web", moves=moves.replicas, at=world.now))
    assert accepted(result).deployment.kind == REBALANCE
    fewest = len(world.wanted("web"))
    for _ in range(30):
        world.step()
        fewest = min(fewest, sum(t.health == "healthy" for t in world.wanted("web")))
    assert world.on_nodes("web") == {"n1": 2, "n2": 2, "n3": 2}
    assert fewest >= 6  # start-first: the moved replicas stopped only once their successors counted
    record = world.read(lambda m: m.services.get("web"))
    assert record.deployment.state == SUCCESSFUL and record.current.copy_of == 1
    why = refused(world.submit(RebalanceService(name="web", moves=("web.0.d1", "nope"), at=world.now)),
                  RefusalKind.NOT_FOUND)
    assert "nope" in why.detail  # the sentence names the replica that is not there


def test_automatic_rebalance_with_the_update_setting():
    world = WorkloadWorld([node("n1"), node("n2")])
    spec = web(count=4)
    world.put(ServiceSpec("web", spec.task, count=4, update=UpdatePolicy(min_healthy_time=1.0, rebalance=True)))
    world.settle(15)
    world.join(node("n3"))
    world.settle(30)
    assert sorted(world.on_nodes("web").values()) == [1, 1, 2]
    assert any("rebalance web: move" in line for line in world.log)


def test_redeploy_replaces_every_replica_same_spec():
    world = WorkloadWorld([node("n1"), node("n2")])
    world.put(web(count=3))
    world.settle(15)
    before = {t.id for t in world.wanted("web")}
    result = world.submit(RedeployService(name="web", at=world.now))
    assert accepted(result).deployment.kind == REDEPLOY and result.relabelled == ()
    world.settle(30)
    after = world.wanted("web")
    assert len(after) == 3 and before.isdisjoint(t.id for t in after)
    record = world.read(lambda m: m.services.get("web"))
    assert (record.current.version, record.current.copy_of, record.spec) == (2, 1, web(count=3))
    assert record.deployment.state == SUCCESSFUL
