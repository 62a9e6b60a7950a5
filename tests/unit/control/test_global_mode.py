"""A global service (one replica on every eligible node) as the leader's real loops run it on a
LocalStore: the scenarios of issue #22, a transcript, and the planner's properties.

Nodes are played by ``tests/workload_world.py``; the state machine is the real one, so every
start on a node and every stop outside a rollout is re-checked against the node's eligibility.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from result_kit import refused
from workload_world import WorkloadWorld, node

from orion.control import deployment
from orion.domain.constraints import parse as parse_constraint
from orion.domain.model import TaskSpec
from orion.domain.service import GLOBAL, SUCCESSFUL, Deployment, ServiceSpec, StartReplica, StopReplica, UpdatePolicy
from orion.state.commands import ApplyDeploymentPlan, ReportTaskState, SetNodeStatus
from orion.state.results import RefusalKind

MiB = 1 << 20


def agent_spec(image: str = "exporter:1", **task: object) -> ServiceSpec:
    return ServiceSpec("exporter", TaskSpec(image, 32 * MiB, restart_policy="always", **task), mode=GLOBAL,
                       update=UpdatePolicy(min_healthy_time=1.0))


def test_one_replica_per_node_following_a_join_a_drain_and_a_label_change():
    world = WorkloadWorld([node("n1", zone="a"), node("n2", zone="a"), node("n3", zone="b")])
    world.put(agent_spec(constraints=(parse_constraint("node.labels.zone exists"),)))
    world.settle(10)
    assert world.on_nodes("exporter") == {"n1": 1, "n2": 1, "n3": 1}

    world.join(node("n4", zone="c"))  # a fourth node joins: it gets its replica
    world.settle(10)
    assert world.on_nodes("exporter") == {"n1": 1, "n2": 1, "n3": 1, "n4": 1}

    world.drain("n2")  # drained: its replica stops and none replaces it elsewhere
    world.settle(10)
    assert world.on_nodes("exporter") == {"n1": 1, "n3": 1, "n4": 1}
    stopped = [t for t in world.tasks("exporter") if t.pin == "n2"]
    assert stopped and all(t.state == "stopped" for t in stopped)
    assert any("service exporter: release exporter.n2.d1.0" in line for line in world.log), world.log

    world.join(node("n3"))  # relabelled without the zone: no longer eligible
    world.join(node("n1", zone="a", ssd="yes"))  # another label: still eligible, nothing moves
    world.settle(10)
    assert world.on_nodes("exporter") == {"n1": 1, "n4": 1}
    world.join(node("n3", zone="b"))  # labelled again: eligible again
    world.settle(10)
    assert world.on_nodes("exporter") == {"n1": 1, "n3": 1, "n4": 1}
    # Never two replicas of the service on one node, at any moment of the story.
    assert all(n == 1 for n in world.on_nodes("exporter").values())


def test_a_new_version_rolls_node_by_node_with_the_update_rules():
    world = WorkloadWorld([node("n1"), node("n2"), node("n3")])
    world.put(agent_spec())
    world.settle(10)
    world.put(agent_spec("exporter:2"))
    most = 0
    for _ in range(30):
        world.step()
        most = max(most, sum(t.version == 2 and t.state != "running"
                             for t in world.tasks("exporter") if t.desired == "run"))
    versions = sorted((t.node_id, t.version) for t in world.wanted("exporter"))
    assert versions == [("n1", 2), ("n2", 2), ("n3", 2)]
    record = world.read(lambda m: m.services.get("exporter"))
    assert record.deployment.state == SUCCESSFUL and "on 3 node(s)" in record.deployment.reason
    assert most <= 1  # maxParallel 1: one node's replica in flight at a time


def test_a_dead_nodes_replica_waits_for_it_pinned_and_none_starts_elsewhere():
    world = WorkloadWorld([node("n1"), node("n2")])
    world.put(agent_spec())
    world.settle(8)
    world.submit(SetNodeStatus(node_id="n2", status="dead"))
    pinned = next(t for t in world.tasks("exporter") if t.pin == "n2")
    world.submit(ReportTaskState(task_id=pinned.id, node_id="n2", generation=pinned.generation, state="lost"))
    world.settle(5)
    lost = next(t for t in world.tasks("exporter") if t.id == pinned.id)
    assert lost.state == "lost" and lost.reason_kind == "pinned"
    assert "belongs to node n2, which is dead" in lost.reason
    assert world.on_nodes("exporter") == {"n1": 1}


def test_the_machine_refuses_a_start_on_a_node_the_service_does_not_run_on():
    world = WorkloadWorld([node("n1", zone="a"), node("n2", zone="b")])
    world.put(agent_spec(node_selectors=(("zone", "a"),)))
    world.settle(8)
    record = world.read(lambda m: m.services.get("exporter"))
    dep = record.deployment
    sneaky = StartReplica(dep.node_replica_id("n2", record.step), 0, dep.version, "n2")
    result = world.submit(ApplyDeploymentPlan(service="exporter", seq=dep.seq, step=record.step, state=SUCCESSFUL,
                                              start=(sneaky,), at=world.now))
    assert {i: r.kind for i, r in result.refused.items()} == {sneaky.id: RefusalKind.INVALID}  # not its node
    keeper = world.wanted("exporter")[0]
    result = world.submit(ApplyDeploymentPlan(service="exporter", seq=dep.seq, step=record.step + 1,
                                              state=SUCCESSFUL, stop=(StopReplica(keeper.id, 0, "no"),),
                                              at=world.now))
    refused(result, RefusalKind.WRONG_STATE)  # its node is still one exporter runs on


# -- the planner's properties --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(eligible=st.sets(st.sampled_from([f"n{i}" for i in range(6)]), max_size=6),
       held=st.sets(st.sampled_from([f"n{i}" for i in range(6)]), max_size=6),
       kept=st.sets(st.sampled_from([f"n{i}" for i in range(6)]), max_size=2))
def test_a_succeeded_global_deployment_fills_every_eligible_node_once_and_releases_the_rest(eligible, held, kept):
    kept = kept - eligible
    dep = replace(Deployment("exporter", 1, 1, 0.0), state=SUCCESSFUL)
    replicas = [deployment.Replica(f"exporter.{n}.d1.0", 0, 1, 1, node=n) for n in sorted(held)]
    view = deployment.RolloutView(dep, 0, UpdatePolicy(), replicas, nodes=tuple(sorted(eligible)),
                                  kept=tuple(sorted(kept)), step=7)
    starts, stops = deployment.refill(view, 7), deployment.release(view)
    assert {s.node for s in starts} == eligible - held
    assert all(s.id == f"exporter.{s.node}.d1.7" for s in starts)
    assert {s.id.split(".")[1] for s in stops} == held - eligible - kept
