"""A job's runs (``"mode": "job"``) as the leader's real JobLoop runs them on a LocalStore, with a
clock the test moves: the scenarios of issue #22, what a stale leader's plan meets, and the run
planner's properties. Attempts are played by ``tests/workload_world.py``: each runs 5 s, then
exits 0 unless the test says otherwise.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from result_kit import refused
from workload_world import WorkloadWorld, node

from orion.control import job
from orion.domain.job import RUN_FAILED, RUN_SUCCEEDED, JobPolicy, JobRun
from orion.domain.model import RUNNING, TaskSpec
from orion.domain.service import JOB, ServiceSpec
from orion.state.commands import ApplyJobPlan
from orion.state.results import RefusalKind

MiB = 1 << 20


def batch(**policy: object) -> ServiceSpec:
    return ServiceSpec("batch", TaskSpec("worker:1", 32 * MiB), mode=JOB, job=JobPolicy(**policy))


def runs(world: WorkloadWorld) -> tuple[JobRun, ...]:
    return world.read(lambda m: m.jobs.get("batch")).runs


def test_five_completions_two_at_a_time_with_one_failure_retried():
    world = WorkloadWorld([node("n1"), node("n2")])
    world.outcome = lambda task: task.id != "batch.r1.1"  # the second attempt fails once
    world.put(batch(completions=5, parallelism=2, retries=2, backoff=3.0))
    most = 0
    for _ in range(60):
        world.step()
        most = max(most, sum(t.state == RUNNING for t in world.tasks("batch")))
    (run,) = runs(world)
    assert (run.state, run.succeeded, run.failed, run.attempts) == (RUN_SUCCEEDED, 5, 1, 6)
    assert run.reason == "5 of 5 completions succeeded"
    assert most == 2  # never more than parallelism at once
    # The machine keeps 5 finished tasks per service (history.py): the failed one, oldest, is gone;
    # the run's counts, kept as each attempt was reported, are what say how it went.
    assert sorted(t.state for t in world.tasks("batch")) == ["completed"] * 5


def test_a_retry_waits_for_its_backoff_doubling_per_failure():
    world = WorkloadWorld([node("n1")])
    world.outcome = lambda task: task.id == "batch.r1.2"  # two failures, then success
    world.put(batch(retries=3, backoff=10.0))
    starts: dict[str, float] = {}
    for _ in range(80):
        world.step()
        for t in world.tasks("batch"):
            starts.setdefault(t.id, world.now)
    assert runs(world)[0].state == RUN_SUCCEEDED
    first, second, third = (starts[f"batch.r1.{i}"] for i in range(3))
    # Each attempt runs 5 s; the retry waits 10 s after the first failure, 20 s after the second.
    assert second - first >= 5 + 10 and third - second >= 5 + 20


def test_retries_exhausted_fail_the_run():
    world = WorkloadWorld([node("n1")])
    world.outcome = lambda task: False
    world.put(batch(retries=1, backoff=0.0))
    world.settle(40)
    (run,) = runs(world)
    assert (run.state, run.failed, run.attempts, run.reason) == (RUN_FAILED, 2, 2, "2 attempts failed (retries 1)")


def test_a_job_past_its_deadline_fails_and_its_attempts_stop():
    world = WorkloadWorld([node("n1")])
    world.attempt_seconds = 1000.0  # it would never end by itself
    world.put(batch(completions=2, parallelism=2, deadline=30.0))
    world.settle(40)
    (run,) = runs(world)
    assert (run.state, run.reason) == (RUN_FAILED, "past its deadline of 30s")
    assert run.finished_at - run.started_at >= 30
    assert {t.state for t in world.tasks("batch")} == {"stopped"}


def test_a_new_version_cancels_the_run_and_runs_again_and_the_same_spec_changes_nothing():
    world = WorkloadWorld([node("n1")])
    world.attempt_seconds = 100.0
    world.put(batch())
    world.settle(3)
    assert world.put(batch()).changed is False
    world.put(ServiceSpec("batch", TaskSpec("worker:2", 32 * MiB), mode=JOB))
    world.settle(3)
    first, second = runs(world)
    assert (first.state, first.reason) == ("cancelled", "superseded by version 2")
    assert second.state == "running" and second.version == 2
    assert [t.state for t in world.tasks("batch") if t.run == 1] == ["stopped"]


def test_an_old_leaders_plan_landing_late_is_refused_and_starts_nothing_twice():
    world = WorkloadWorld([node("n1")])
    world.put(batch(completions=3, parallelism=1))
    views = world.read(lambda m: __import__("orion.control.job_loop", fromlist=["_jobs"])._jobs(m))
    late = world.jobs.decide(views, world.now)  # the old leader decided, then lost its lead
    world.step()  # the new leader decides the same and commits first
    (command, _sentence), = late
    assert isinstance(command, ApplyJobPlan) and command.start == ("batch.r1.0",)
    refused(world.submit(command), RefusalKind.STALE)
    assert [t.id for t in world.tasks("batch")] == ["batch.r1.0"]


# -- the run planner's properties ----------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(completions=st.integers(1, 6), parallelism=st.integers(1, 4), retries=st.integers(0, 3),
       failing=st.sets(st.integers(0, 12), max_size=5))
def test_never_more_than_parallelism_never_more_successes_than_completions(completions, parallelism, retries,
                                                                           failing):
    world = WorkloadWorld([node("n1"), node("n2")])
    world.outcome = lambda task: task.slot not in failing
    world.put(batch(completions=completions, parallelism=parallelism, retries=retries, backoff=1.0))
    for _ in range(120):
        world.step()
        going = [t for t in world.tasks("batch") if t.desired == "run" and t.state in ("pending", "assigned",
                                                                                           "running")]
        assert len(going) <= parallelism
    (run,) = runs(world)
    assert run.succeeded <= completions
    failures = len([n for n in failing if n < run.attempts])
    assert run.failed == failures
    if run.state == RUN_SUCCEEDED:
        assert run.succeeded == completions and run.failed <= retries
    else:  # attempts that go side by side may fail together: the last failures can pass retries + 1
        assert run.state == RUN_FAILED and retries < run.failed <= retries + parallelism
    assert run.attempts == run.succeeded + run.failed  # every attempt started was counted once


@given(succeeded=st.integers(0, 5), failed=st.integers(0, 5), going=st.integers(0, 4), now=st.floats(0, 100))
def test_the_plan_starts_only_what_the_run_still_needs(succeeded, failed, going, now):
    policy = JobPolicy(completions=5, parallelism=3, retries=3, backoff=2.0, deadline=60.0)
    run = JobRun("batch", 1, 1, 0.0, attempts=succeeded + failed + going, succeeded=succeeded, failed=failed,
                 failures_seen=failed, last_failure_at=10.0)
    attempts = [job.Attempt(f"batch.r1.{i}", RUNNING) for i in range(going)]
    decided = job.plan(job.RunView(run, policy, attempts), now)
    if decided.state == "running":
        assert len(decided.start) <= max(policy.parallelism - going, 0)
        assert not decided.start or succeeded + going + len(decided.start) <= policy.completions
        if decided.start:
            assert now >= 10.0 + policy.backoff_after(failed)
    else:
        assert not decided.start and set(decided.stop) == {a.id for a in attempts}
