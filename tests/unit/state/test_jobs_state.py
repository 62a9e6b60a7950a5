"""Jobs inside the state machine (orion/state/jobs.py): what it refuses of a plan or a cron slot
that does not hold on the state as it is, how it counts attempts, and that it survives a snapshot."""

from __future__ import annotations

import json

from result_kit import accepted, refused

from orion.domain.job import JobPolicy
from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.domain.service import JOB, ServiceSpec
from orion.state.commands import (
    ApplyJobPlan,
    Placement,
    PlaceTasks,
    PutService,
    RedeployService,
    RegisterNode,
    ReportTaskState,
    RunCronSlot,
)
from orion.state.machine import StateMachine
from orion.state.results import RefusalKind, Result, result_from_dict

MiB = 1 << 20


def machine_with(policy: JobPolicy) -> StateMachine:
    m = StateMachine()
    m.apply(RegisterNode(node=NodeInfo("n1", "", "", capacity=Resources(1 << 33, 4000))), 1)
    m.apply(PutService(spec=ServiceSpec("j", TaskSpec("img", 32 * MiB), mode=JOB, job=policy), at=100.0), 2)
    return m


def plan(m: StateMachine, **fields: object) -> Result:
    record = m.jobs.get("j")
    base = {"service": "j", "run": record.runs[-1].number, "step": record.step, "state": "running", "at": 110.0}
    return m.apply(ApplyJobPlan(**{**base, **fields}), 10 + record.step)


def test_a_plan_is_re_checked_against_parallelism_ids_and_the_step():
    m = machine_with(JobPolicy(completions=3, parallelism=2))
    refused(plan(m, start=("j.r1.0", "j.r1.1", "j.r1.2")), RefusalKind.WRONG_STATE)  # beyond parallelism 2
    refused(plan(m, start=("j.r1.5",)), RefusalKind.STALE)  # the next attempt is j.r1.0
    accepted(plan(m, start=("j.r1.0", "j.r1.1")))
    refused(plan(m, start=("j.r1.2",)), RefusalKind.WRONG_STATE)  # 2 run already (parallelism 2)
    stale = m.apply(ApplyJobPlan(service="j", run=1, step=0, state="running", start=("j.r1.2",), at=111.0), 20)
    refused(stale, RefusalKind.STALE)
    refused(plan(m, state="succeeded"), RefusalKind.WRONG_STATE)  # 0 of 3 completions


def test_attempts_are_counted_once_as_their_nodes_report_them_and_backoff_is_re_checked():
    m = machine_with(JobPolicy(completions=1, retries=2, backoff=10.0))
    plan(m, start=("j.r1.0",))
    m.apply(PlaceTasks(placements=(Placement("j.r1.0", "n1", 0),)), 30)
    m.apply(ReportTaskState(task_id="j.r1.0", node_id="n1", generation=1, state="failed", exit_code=1), 31)
    again = m.apply(ReportTaskState(task_id="j.r1.0", node_id="n1", generation=1, state="failed", exit_code=1), 32)
    refused(again, RefusalKind.WRONG_STATE)  # already failed: not counted twice
    assert m.jobs.get("j").runs[-1].failed == 1
    early = plan(m, failures_seen=1, start=("j.r1.1",), at=115.0)
    assert refused(early, RefusalKind.WRONG_STATE).detail == "j#r1 backs off until 125.000"  # the time, for people
    accepted(plan(m, failures_seen=1, at=115.0))
    accepted(plan(m, start=("j.r1.1",), failures_seen=1, at=125.0))


def test_a_cron_slot_runs_once_is_due_and_follows_the_overlap_policy():
    m = machine_with(JobPolicy(schedule="* * * * *"))
    assert m.jobs.get("j").runs == ()  # a scheduled job waits for its slot
    slot = RunCronSlot(service="j", slot=120.0, action="start", at=121.0)
    refused(m.apply(RunCronSlot(service="j", slot=180.0, action="start", at=121.0), 5), RefusalKind.INVALID)  # not due
    accepted(m.apply(slot, 6))
    refused(m.apply(RunCronSlot(service="j", slot=120.0, action="start", at=125.0), 7), RefusalKind.STALE)
    skip = refused(m.apply(RunCronSlot(service="j", slot=180.0, action="start", at=181.0), 8), RefusalKind.WRONG_STATE)
    assert skip.detail == "slot 180 of j is a skip (1 run(s) going, overlap forbid), not a start"  # says which
    assert m.apply(RunCronSlot(service="j", slot=180.0, action="skip", at=181.0), 9).run.state == "skipped"


def test_jobs_survive_a_snapshot_and_a_machine_without_jobs_digests_as_before():
    m = machine_with(JobPolicy(completions=2))
    plan(m, start=("j.r1.0",))
    restored = StateMachine.restore(m.snapshot())
    assert restored.snapshot() == m.snapshot() and restored.jobs.get("j") == m.jobs.get("j")
    assert "jobs" not in StateMachine().snapshot()


def test_a_jobs_results_survive_their_plain_form():
    """Remembered answers go into snapshots as plain data (orion/state/results.py)."""
    m = machine_with(JobPolicy(completions=2, parallelism=2))
    results = [plan(m, start=("j.r1.0",)),
               m.apply(RedeployService(name="j", at=130.0), 40)]
    cron = machine_with(JobPolicy(schedule="* * * * *"))
    results.append(cron.apply(RunCronSlot(service="j", slot=120.0, action="start", at=121.0), 6))
    assert [type(r).__name__ for r in results] == ["JobPlanApplied", "ServiceDeclared", "RunRecorded"]
    assert results[1].run is not None  # a job's redeploy starts a run
    for result in results:
        assert result_from_dict(json.loads(json.dumps(result.to_dict()))) == result
