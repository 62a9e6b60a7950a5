"""The leader's deployment loop against a real StateMachine (LocalStore): what it
submits, and that a leader change mid-rollout replaces no replica twice."""

from __future__ import annotations

from dataclasses import replace

from result_kit import accepted, refused

from orion.control import deployment
from orion.control.deployment_loop import DeploymentLoop, command_for, refill_command, rollout_view
from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.domain.service import HEALTHY, ServiceSpec, StartReplica, UpdatePolicy
from orion.state.commands import (
    Placement,
    PlaceTasks,
    PutService,
    RegisterNode,
    ReportTaskHealth,
    ReportTaskState,
    StopTask,
)
from orion.state.results import RefusalKind
from orion.store.local import LocalStore

GiB = 1 << 30
V1 = ServiceSpec("web", TaskSpec("app:1", 64 << 20), count=3,
                 update=UpdatePolicy(max_parallel=1, min_healthy_time=5.0, healthy_deadline=60.0))


class World:
    def __init__(self) -> None:
        self.store = LocalStore()
        self.store.submit(RegisterNode(node=NodeInfo("n1", "a", "r", capacity=Resources(8 * GiB, 8000))), 1.0)
        self.now = 0.0

    def loop(self) -> DeploymentLoop:
        return DeploymentLoop(self.store, interval=0.5, write_timeout=1.0, clock=lambda: self.now)

    def run_and_heal(self) -> None:
        """What the scheduler and the nodes do between two passes: place, run, report healthy, stop."""
        for task in self.store.read(lambda m: m.services.replicas("web"))[0]:
            if task.state == "pending" and task.desired == "run":
                self.store.submit(PlaceTasks(placements=(Placement(task.id, "n1", 0),)), 1.0)
                self.store.submit(ReportTaskState(task_id=task.id, node_id="n1", generation=1, state="running",
                                                  container_id="c" + task.id), 1.0)
                self.store.submit(ReportTaskHealth(task_id=task.id, node_id="n1", generation=1, status=HEALTHY,
                                                   since=self.now), 1.0)
            elif task.state == "stopping":
                self.store.submit(ReportTaskState(task_id=task.id, node_id="n1", generation=1, state="stopped"), 1.0)

    def record(self):  # noqa: ANN201
        return self.store.read(lambda m: (m.services.get("web"), m.services.replicas("web")))[0]


def test_a_follower_decides_nothing():
    world = World()
    world.store.submit(PutService(spec=V1, at=0.0), 1.0)
    world.store.leader = False
    assert world.loop().run_once().acted is False
    world.store.leader = True
    assert world.loop().run_once().sentence.startswith("deployment web#1 to version 1 running; start web.0.d1")


def test_a_deposed_leaders_late_plan_is_refused_and_no_replica_is_replaced_twice():
    world = World()
    world.store.submit(PutService(spec=V1, at=0.0), 1.0)
    for _ in range(4):
        world.loop().run_once()
        world.run_and_heal()
        world.now += 5.0
    world.store.submit(PutService(spec=replace(V1, task=replace(V1.task, image="app:2")), at=world.now), 1.0)
    # The old leader plans from its view, then is cut off before its command commits...
    record, replicas = world.record()
    late = command_for(record, deployment.plan(rollout_view(record, replicas), world.now), world.now)
    assert [s.id for s in late.start] == ["web.0.d2"]
    # ...the new leader decides the same step from the replicated state and commits it...
    assert world.loop().run_once().sentence.startswith("deployment web#2 to version 2 running; start web.0.d2")
    # ...and the old leader's command, arriving now, is refused as stale.
    refused(world.store.submit(late, 1.0), RefusalKind.STALE)
    for _ in range(20):
        world.run_and_heal()
        world.now += 5.0
        world.loop().run_once()
    record, replicas = world.record()
    assert record.deployment.state == "successful"
    created = sorted(t.id for t in replicas)
    assert created == ["web.0.d1", "web.0.d2", "web.1.d1", "web.1.d2", "web.2.d1", "web.2.d2"]
    assert {t.id for t in replicas if t.state == "running"} == {"web.0.d2", "web.1.d2", "web.2.d2"}


def settled_world() -> World:
    world = World()
    world.store.submit(PutService(spec=V1, at=0.0), 1.0)
    for _ in range(6):
        world.loop().run_once()
        world.run_and_heal()
        world.now += 5.0
    assert world.record()[0].deployment.state == "successful"
    return world


def test_a_replica_stopped_by_request_is_refilled_in_its_slot_once_the_deployment_succeeded():
    world = settled_world()
    world.store.submit(StopTask(task_id="web.1.d1"), 1.0)  # DELETE /tasks/web.1.d1
    world.run_and_heal()
    record, _ = world.record()
    sentence = world.loop().run_once().sentence
    assert sentence == f"service web: refill web.1.d1.{record.step}"
    assert world.loop().run_once().acted is False  # decided once: the slot is held again
    world.run_and_heal()
    record, replicas = world.record()
    assert record.deployment.state == "successful"  # a refill is no new deployment
    running = sorted((t.slot, t.id) for t in replicas if t.state == "running")
    assert running == [(0, "web.0.d1"), (1, f"web.1.d1.{record.step - 1}"), (2, "web.2.d1")]


def test_a_replica_that_exited_is_left_to_its_restart_policy_not_refilled():
    world = settled_world()
    world.store.submit(ReportTaskState(task_id="web.2.d1", node_id="n1", generation=1, state="failed",
                                       exit_code=1), 1.0)
    assert world.loop().run_once().acted is False


def test_a_refill_decided_on_a_stale_view_starts_nothing_twice():
    world = settled_world()
    world.store.submit(StopTask(task_id="web.0.d1"), 1.0)
    record, replicas = world.record()
    starts = deployment.refill(rollout_view(record, replicas), record.step)
    late = refill_command(record, starts, world.now)
    assert world.loop().run_once().sentence == f"service web: refill web.0.d1.{record.step}"
    refused(world.store.submit(late, 1.0), RefusalKind.STALE)  # the same decision by a deposed leader, late
    # A refill at the current step into a slot that is held again is refused by the machine too.
    record, _ = world.record()
    held = refill_command(record, (StartReplica(record.deployment.refill_id(0, record.step), 0, 1),), world.now)
    answer = accepted(world.store.submit(held, 1.0))
    assert answer.refused[held.start[0].id].kind == RefusalKind.WRONG_STATE  # its slot is held by a wanted replica
    assert len([t for t in world.record()[1] if t.desired == "run"]) == 3
