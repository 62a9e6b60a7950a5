"""Services in the state machine, command by command: each example is a small log
(the commands applied, in order) and what the replicated state must be afterwards.

The decisions themselves (which replica to start or stop) are the planner's
(tests/unit/control/test_deployment.py); here the plans are written by hand, to
check what the machine accepts, refuses and records.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from result_kit import accepted, refused
from test_machine import Log, node, place, report

from orion.domain.model import NodeInfo, Resources, TaskSpec, Volume
from orion.domain.service import (
    CANCELLED,
    FAILED_DEPLOYMENT,
    HEALTHY,
    REVERTED,
    RUNNING_DEPLOYMENT,
    SUCCESSFUL,
    UNHEALTHY,
    ServiceSpec,
    SlotProgress,
    StartReplica,
    StopReplica,
)
from orion.state.commands import (
    ApplyDeploymentPlan,
    DeleteService,
    PutService,
    RegisterNode,
    ReportTaskHealth,
    RestartTask,
    RollbackService,
    ScaleTask,
)
from orion.state.machine import StateMachine
from orion.state.results import HealthReported, RefusalKind, Result, ServiceDeclared

MiB = 1 << 20
V1 = ServiceSpec("web", TaskSpec("app:1", 64 * MiB, restart_policy="always"), count=2)
V2 = replace(V1, task=replace(V1.task, image="app:2"))


def put(spec: ServiceSpec, at: float = 100.0, create: bool = False) -> PutService:
    return PutService(spec=spec, at=at, create=create)


def plan(seq: int, step: int, state: str = RUNNING_DEPLOYMENT, start=(), stop=(), at: float = 100.0,
         revert_to: int | None = None, reason: str = "") -> ApplyDeploymentPlan:
    return ApplyDeploymentPlan(service="web", seq=seq, step=step, state=state, reason=reason,
                               start=tuple(StartReplica(i, s, v) for i, s, v in start),
                               stop=tuple(StopReplica(i, 0, "replaced") for i in stop),
                               progress=(SlotProgress(0, "updating", "x"),), revert_to=revert_to, at=at)


def healthy(log: Log, task_id: str, at: float = 101.0) -> Result:
    task = log.m.task(task_id)
    return log(ReportTaskHealth(task_id=task_id, node_id=task.node_id, generation=task.generation,
                                status=HEALTHY, since=at, output="HTTP 200"))


def running(log: Log, *task_ids: str) -> None:
    """Place each on n1 and report it running: what the scheduler and the node would do."""
    for task_id in task_ids:
        assert log(place((task_id, "n1", 0))).placed == (task_id,)
        accepted(log(report(task_id, "n1", 1, "running", container_id=f"c-{task_id}")))


@pytest.fixture
def log() -> Log:
    log = Log()
    accepted(log(node("n1")))
    return log


@pytest.fixture
def v1(log: Log) -> Log:
    """web v1 rolled out: two healthy replicas, deployment #1 successful."""
    assert log(put(V1, create=True)).version == 1
    assert log(plan(1, 0, start=[("web.0.d1", 0, 1), ("web.1.d1", 1, 1)])).started == ("web.0.d1", "web.1.d1")
    running(log, "web.0.d1", "web.1.d1")
    healthy(log, "web.0.d1")
    healthy(log, "web.1.d1")
    accepted(log(plan(1, 1, SUCCESSFUL)))
    return log


# -- declaring ------------------------------------------------------------------------------


def test_a_new_service_is_version_1_with_a_running_deployment_and_no_replica_yet(log):
    result = log(put(V1, at=42.0, create=True))
    assert isinstance(result, ServiceDeclared) and (result.changed, result.version) == (True, 1)
    record = log.m.services.get("web")
    assert record.spec == V1 and record.current.version == 1
    assert record.deployment.id == "web#1" and record.deployment.state == RUNNING_DEPLOYMENT
    assert (record.deployment.started_at, record.deployment.revert_to, record.stable) == (42.0, None, None)
    assert log.m.services.replicas("web") == []  # the leader's planner creates them


def test_the_same_spec_again_is_no_new_version_and_no_deployment(v1):
    before = v1.m.snapshot()
    assert v1(put(V1, at=500.0)) == ServiceDeclared("web", 1, changed=False)
    assert v1.m.snapshot() == before


def test_create_refuses_a_service_that_exists(v1):
    # The sentence names the fix (the API answers it as is).
    assert "PUT /services/web" in refused(v1(put(V2, create=True)), RefusalKind.EXISTS).detail
    assert v1.m.services.get("web").current.version == 1


def test_unsound_specs_are_refused(log):
    refused(log(put(replace(V1, task=replace(V1.task, image="")))), RefusalKind.INVALID)
    refused(log(put(replace(V1, count=5000))), RefusalKind.INVALID)
    assert log.m.services.get("web") is None


# -- deployment plans -----------------------------------------------------------------------


def test_replicas_of_a_service_with_a_host_volume_go_only_where_it_is_declared(log):
    log(RegisterNode(node=NodeInfo("n2", "n2:8000", "n2:9000", capacity=Resources(8 << 30, 4000),
                                   host_volumes=("data",))))
    log(put(replace(V1, volumes=(Volume("data", "/data"),))))
    log(plan(1, 0, start=[("web.0.d1", 0, 1)]))
    assert log.m.task("web.0.d1").spec.host_volumes == {"data"}
    assert log(place(("web.0.d1", "n1", 0))).refused["web.0.d1"].kind == RefusalKind.NO_FIT  # no data on n1
    assert log(place(("web.0.d1", "n2", 0))).placed == ("web.0.d1",)


def test_a_plan_creates_replicas_that_carry_service_version_slot_and_creation_time(log):
    log(put(V1))
    log(plan(1, 0, start=[("web.0.d1", 0, 1)], at=123.0))
    task = log.m.task("web.0.d1")
    assert (task.service, task.version, task.slot, task.deployment, task.created_at) == ("web", 1, 0, 1, 123.0)
    assert task.spec == V1.task and task.state == "pending" and task.health == ""
    assert log.m.services.get("web").step == 1
    assert log.m.services.get("web").progress == (SlotProgress(0, "updating", "x"),)


def test_a_stale_plan_is_refused_whole(log):
    """Nomad's plan applier: a plan made before another one was applied changes nothing."""
    log(put(V1))
    accepted(log(plan(1, 0, start=[("web.0.d1", 0, 1)])))
    before = log.m.snapshot()
    refused(log(plan(1, 0, start=[("web.1.d1", 1, 1)])), RefusalKind.STALE)  # an old leader's, landing late
    refused(log(plan(7, 1)), RefusalKind.STALE)  # not the current deployment
    assert log.m.snapshot() == before


def test_a_start_that_is_not_this_deployments_is_refused_alone(log):
    log(put(V1))
    result = log(plan(1, 0, start=[("web.0.d1", 0, 1), ("web.5.d1", 5, 1), ("web.1.d1", 1, 9)]))
    assert result.started == ("web.0.d1",)
    assert {i: r.kind for i, r in result.refused.items()} == {"web.5.d1": RefusalKind.INVALID,
                                                              "web.1.d1": RefusalKind.INVALID}


def test_a_finished_deployment_takes_no_more_plans_and_success_makes_its_version_stable(v1):
    record = v1.m.services.get("web")
    assert record.deployment.state == SUCCESSFUL and record.stable.version == 1
    refused(v1(plan(1, 2, start=[("web.2.d1", 1, 1)])), RefusalKind.STALE)


# -- a new version --------------------------------------------------------------------------


def test_a_new_image_is_version_2_whose_deployment_may_revert_to_the_stable_one(v1):
    result = v1(put(V2, at=200.0))
    assert (result.version, result.relabelled) == (2, ())  # a new image: new containers
    dep = v1.m.services.get("web").deployment
    assert (dep.id, dep.version, dep.revert_to, dep.rollback, dep.started_at) == ("web#2", 2, 1, False, 200.0)
    assert [t.version for t in v1.m.services.replicas("web")] == [1, 1]


def test_an_in_place_change_relabels_the_replicas_with_the_new_version_and_spec(v1):
    spec = replace(V1, task=replace(V1.task, restart_policy="on-failure"))
    assert v1(put(spec)).relabelled == ("web.0.d1", "web.1.d1")
    replicas = v1.m.services.replicas("web")
    assert [(t.version, t.spec.restart_policy, t.deployment) for t in replicas] == [(2, "on-failure", 1)] * 2
    assert all(t.health == HEALTHY for t in replicas)  # same containers: their health stands


def test_a_put_during_a_rollout_cancels_it(v1):
    v1(put(V2))
    v1(put(replace(V2, task=replace(V2.task, image="app:3"))))
    versions = v1.m.services.get("web").versions
    assert [(v.version, v.deployment.state) for v in versions] == [
        (1, SUCCESSFUL), (2, CANCELLED), (3, RUNNING_DEPLOYMENT)]
    assert versions[1].deployment.reason == "superseded by version 3"


def test_an_auto_revert_declares_the_stable_spec_again_and_relabels_what_never_left_it(v1):
    v1(put(V2))
    v1(plan(2, 0, start=[("web.0.d2", 0, 2)]))
    result = v1(plan(2, 1, REVERTED, revert_to=1, at=300.0,
                     reason="replica web.0.d2 is unhealthy; reverting to version 1"))
    assert result.reverted.version == 3 and result.reverted.relabelled == ("web.0.d1", "web.1.d1")
    record = v1.m.services.get("web")
    assert [(v.version, v.copy_of, v.deployment.state) for v in record.versions] == [
        (1, None, SUCCESSFUL), (2, None, REVERTED), (3, 1, RUNNING_DEPLOYMENT)]
    assert record.spec == V1 and record.deployment.rollback and record.deployment.revert_to is None
    assert record.deployment.started_at == 300.0 and record.step == 0
    assert v1.m.task("web.0.d2").version == 2  # the failed version's replica: replaced by the rollback


# -- rollback and delete --------------------------------------------------------------------


def test_rollback_without_a_version_goes_to_the_newest_earlier_healthy_one(v1):
    v1(put(V2))
    assert v1(RollbackService(name="web", at=400.0)).version == 3
    record = v1.m.services.get("web")
    assert (record.spec, record.current.copy_of, record.deployment.rollback) == (V1, 1, True)


def test_rollback_refuses_what_it_cannot_do(v1):
    refused(v1(RollbackService(name="web")), RefusalKind.NOT_FOUND)  # no earlier healthy version
    refused(v1(RollbackService(name="web", version=9)), RefusalKind.NOT_FOUND)  # not kept
    refused(v1(RollbackService(name="web", version=1)), RefusalKind.WRONG_STATE)  # the spec it runs now
    refused(v1(RollbackService(name="nope")), RefusalKind.NOT_FOUND)


def test_delete_stops_every_replica_and_a_new_service_of_that_name_never_reuses_an_id(v1):
    assert v1(DeleteService(name="web")).stopped == ("web.0.d1", "web.1.d1")
    assert v1.m.services.get("web") is None
    assert {t.desired for t in v1.m.services.replicas("web")} == {"stop"}
    v1(put(V1))
    assert v1.m.services.get("web").deployment.replica_id(0) == "web.0.d2"
    refused(v1(DeleteService(name="nope")), RefusalKind.NOT_FOUND)


def test_versions_are_bounded_but_the_stable_one_is_kept():
    log = Log(StateMachine())
    log(node("n1"))
    log(put(V1))
    log(plan(1, 0, SUCCESSFUL))
    for i in range(2, 15):
        log(put(replace(V1, task=replace(V1.task, image=f"app:{i}"))))
    record = log.m.services.get("web")
    assert [v.version for v in record.versions] == list(range(5, 15))
    assert record.stable.version == 1 and record.version(1).spec == V1
    assert log(RollbackService(name="web", version=1)).version == 15


def test_the_replica_of_a_named_service_is_not_scaled_by_patch(v1):
    result = v1(ScaleTask(task_id="web.0.d1", count=5, new_task_ids=("a", "b", "c")))
    assert "PUT /services/web" in refused(result, RefusalKind.WRONG_STATE).detail  # the sentence names the fix


# -- health ---------------------------------------------------------------------------------


def test_health_is_recorded_only_when_it_changes(v1):
    before = v1.m.task("web.0.d1")
    assert healthy(v1, "web.0.d1", at=555.0) == HealthReported(changed=False)
    assert v1.m.task("web.0.d1") == before
    task = v1.m.task("web.1.d1")
    v1(ReportTaskHealth(task_id=task.id, node_id="n1", generation=1, status=UNHEALTHY, since=600.0,
                        output="HTTP 503"))
    task = v1.m.task("web.1.d1")
    assert (task.health, task.health_since, task.health_output) == (UNHEALTHY, 600.0, "HTTP 503")


def test_a_health_report_of_an_older_placement_is_refused_and_a_new_placement_starts_unchecked(v1):
    v1(report("web.0.d1", "n1", 1, "failed", exit_code=1))
    accepted(v1(RestartTask(task_id="web.0.d1", generation=1, node_id="n1", at=700.0)))
    task = v1.m.task("web.0.d1")
    assert (task.generation, task.health, task.health_output) == (2, "", "")
    stale = v1(ReportTaskHealth(task_id="web.0.d1", node_id="n1", generation=1, status=HEALTHY, since=701.0))
    refused(stale, RefusalKind.STALE)
    refused(v1(ReportTaskHealth(task_id="web.0.d1", node_id="n1", generation=2, status="bogus")), RefusalKind.INVALID)


def test_services_survive_a_snapshot_and_a_log_replay_alike(v1):
    v1(put(V2))
    v1(plan(2, 0, FAILED_DEPLOYMENT, reason="replica web.0.d2 exited"))
    restored = StateMachine.restore(json.loads(json.dumps(v1.m.snapshot())))
    assert restored.snapshot() == v1.m.snapshot()
    assert restored.services.get("web") == v1.m.services.get("web")
    assert restored.task("web.0.d1") == v1.m.task("web.0.d1")
