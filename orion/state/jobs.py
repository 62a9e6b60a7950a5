"""Jobs inside the replicated state machine: their runs, attempts and cron slots.

Split from ``orion/state/services.py`` (which keeps a job's versions like any service's and
tells this registry when one is declared or deleted). Deterministic like the rest of the
machine: every time comes in a command, stamped by the leader.

What is kept per job (:class:`JobRecord`): its runs (the running ones, and the newest
finished ones, bounded by ``SERVICE_DEFAULTS["runs_kept"]``), the ``step`` (plans applied,
so a stale plan is refused), and ``last_slot``: the latest cron slot recorded, run or
skipped. A slot no later than it is refused, so a slot runs once across leader changes.

Attempts are tasks carrying ``service`` and ``run``; their outcomes are counted here as
their nodes report them (``finished``, called by the machine), exactly once per attempt,
whether or not the finished task is kept afterwards. The planners that decide are
``orion/control/job.py`` and ``orion/control/periodic.py``, run by the leader's ``JobLoop``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from orion.defaults import SERVICE_DEFAULTS
from orion.domain.job import (
    ATTEMPT_GOING,
    OVERLAPS,
    RUN_CANCELLED,
    RUN_FAILED,
    RUN_RUNNING,
    RUN_SKIPPED,
    RUN_SUCCEEDED,
    SLOT_REPLACE,
    SLOT_SKIP,
    SLOT_START,
    JobRun,
)
from orion.domain.model import COMPLETED, DESIRED_RUN, FAILED, Task
from orion.domain.service import ServiceSpec
from orion.state.commands import ApplyJobPlan, RunCronSlot, handles
from orion.state.results import JobPlanApplied, RefusalKind, Refused, RunRecorded

INVALID, NOT_FOUND, WRONG_STATE, STALE = (RefusalKind.INVALID, RefusalKind.NOT_FOUND, RefusalKind.WRONG_STATE,
                                          RefusalKind.STALE)


def active(attempts: list[Task]) -> list[Task]:
    """The attempts that still run or wait to (the planner's rule too)."""
    return [t for t in attempts if t.desired == DESIRED_RUN and t.state in ATTEMPT_GOING]


@dataclass(frozen=True)
class JobRecord:
    """A job's runs (oldest first), its plan count and its last cron slot."""

    name: str
    runs: tuple[JobRun, ...] = ()
    step: int = 0
    last_slot: float | None = None

    def run(self, number: int) -> JobRun | None:
        return next((r for r in self.runs if r.number == number), None)

    @property
    def running(self) -> tuple[JobRun, ...]:
        return tuple(r for r in self.runs if r.running)

    def with_run(self, run: JobRun, kept: int) -> JobRecord:
        """This record with ``run`` added or replaced, finished runs beyond ``kept`` dropped."""
        runs = sorted([r for r in self.runs if r.number != run.number] + [run], key=lambda r: r.number)
        finished = [r for r in runs if not r.running]
        dropped = {r.number for r in finished[:max(len(finished) - kept, 0)]}
        return replace(self, runs=tuple(r for r in runs if r.number not in dropped))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "runs": [r.to_dict() for r in self.runs], "step": self.step,
                "last_slot": self.last_slot}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobRecord:
        slot = d.get("last_slot")
        return cls(str(d["name"]), tuple(JobRun.from_dict(r) for r in d.get("runs") or ()), int(d.get("step", 0)),
                   None if slot is None else float(slot))


class JobRegistry:
    """Jobs by name; changed only through the machine's dispatch and the service registry's calls.

    ``tasks``, ``put`` and ``stop`` are the machine's (list every task, store one, stop one as
    ``StopTask`` does); ``spec_of(name, version)`` and ``version_of(name)`` are the service
    registry's (a kept version's spec, the current one's for None; the current version).
    """

    def __init__(self, tasks: Callable[[], list[Task]], put: Callable[[Task], None],
                 stop: Callable[[str, int], None], spec_of: Callable[[str, int | None], ServiceSpec | None],
                 version_of: Callable[[str], int], runs_kept: int = SERVICE_DEFAULTS["runs_kept"]) -> None:
        self._tasks, self._put, self._stop, self._spec_of = tasks, put, stop, spec_of
        self._version_of = version_of
        self._kept = runs_kept
        self.records: dict[str, JobRecord] = {}
        # Last run number per name, kept after a delete: attempt ids (job.r<n>.<k>) derive from it.
        self._numbers: dict[str, int] = {}

    # -- queries -------------------------------------------------------------------------------
    def get(self, name: str) -> JobRecord | None:
        return self.records.get(name)

    def attempts(self, name: str, run: int) -> list[Task]:
        return [t for t in self._tasks() if t.service == name and t.run == run]

    # -- what the service registry tells ---------------------------------------------------------
    def declared(self, spec: ServiceSpec, version: int, at: float, index: int) -> None:
        """A version of ``spec.name`` was declared: a one-off job runs it (a run of an earlier
        version still going is cancelled); a cron job waits for its next slot; a service that is
        no job any more has its runs cancelled."""
        if spec.job is None:
            if spec.name in self.records:
                self._cancel_running(spec.name, f"{spec.name} is a {spec.mode} service from version {version}",
                                     at, index)
            return
        self.records.setdefault(spec.name, JobRecord(spec.name))
        if not spec.scheduled:
            self._cancel_running(spec.name, f"superseded by version {version}", at, index)
            self._start_run(spec.name, version, at, None)

    def redeployed(self, spec: ServiceSpec, version: int, at: float, index: int) -> JobRun:
        """Run the job again now (``orion service redeploy``), cancelling a run that still goes."""
        self.records.setdefault(spec.name, JobRecord(spec.name))
        self._cancel_running(spec.name, "redeployed", at, index)
        return self._start_run(spec.name, version, at, None)

    def deleted(self, name: str, at: float, index: int) -> None:
        if name in self.records:
            self._cancel_running(name, f"job {name} deleted", at, index)
            del self.records[name]

    def finished(self, task: Task) -> None:
        """Count an attempt that ended (the machine calls this once, as its end is reported)."""
        record = self.records.get(task.service)
        run = record.run(task.run) if record is not None else None
        if record is None or run is None or not run.running or task.state not in (COMPLETED, FAILED):
            return
        counted = replace(run, succeeded=run.succeeded + 1) if task.state == COMPLETED else \
            replace(run, failed=run.failed + 1)
        self.records[task.service] = record.with_run(counted, self._kept)

    # -- commands ---------------------------------------------------------------------------------
    @handles(ApplyJobPlan)
    def apply_plan(self, cmd: ApplyJobPlan, index: int) -> JobPlanApplied | Refused:
        record = self.records.get(cmd.service)
        run = record.run(cmd.run) if record is not None else None
        if record is None or run is None:
            return Refused(NOT_FOUND, f"no run {cmd.run} of job {cmd.service}")
        if record.step != cmd.step or not run.running:
            return Refused(STALE, f"stale plan: {run.id} is {run.state} at step {record.step}, "
                                  f"the plan was for step {cmd.step}")
        spec = self._spec_of(cmd.service, run.version)
        if spec is None or spec.job is None:
            return Refused(NOT_FOUND, f"version {run.version} of job {cmd.service} is not kept")
        problem = self._plan_problem(cmd, run, spec, self.attempts(cmd.service, run.number))
        if problem:
            return problem
        if cmd.failures_seen > run.failures_seen:
            run = replace(run, failures_seen=cmd.failures_seen, last_failure_at=cmd.at)
        for n, task_id in enumerate(cmd.start):
            self._put(Task(id=task_id, spec=spec.task, service=cmd.service, version=run.version, run=run.number,
                           slot=run.attempts + n, created_at=cmd.at, created_index=index, updated_index=index))
        run = replace(run, attempts=run.attempts + len(cmd.start))
        stopped = self._stop_attempts(cmd.service, run.number, set(cmd.stop), index)
        if cmd.state != RUN_RUNNING:
            run = run.ended(cmd.state, cmd.reason, cmd.at)
        self.records[cmd.service] = replace(record.with_run(run, self._kept), step=record.step + 1)
        return JobPlanApplied(run, tuple(cmd.start), tuple(stopped))

    def _plan_problem(self, cmd: ApplyJobPlan, run: JobRun, spec: ServiceSpec,
                      attempts: list[Task]) -> Refused | None:
        """Why this plan does not hold on the run as it is now, or None."""
        policy = spec.job
        assert policy is not None
        if cmd.state not in (RUN_RUNNING, RUN_SUCCEEDED, RUN_FAILED):
            return Refused(INVALID, f"a plan cannot end a run as {cmd.state!r}")
        if not run.failures_seen <= cmd.failures_seen <= run.failed:
            return Refused(STALE, f"the plan saw {cmd.failures_seen} failures; {run.id} counts {run.failed}")
        if cmd.state == RUN_SUCCEEDED and run.succeeded < policy.completions:
            return Refused(WRONG_STATE, f"{run.id} has {run.succeeded} of {policy.completions} completions")
        past_deadline = policy.deadline > 0 and cmd.at >= run.started_at + policy.deadline
        if cmd.state == RUN_FAILED and run.failed <= policy.retries and not past_deadline:
            return Refused(WRONG_STATE, f"{run.id} has {run.failed} failures (retries {policy.retries}) "
                                        "and is within its deadline")
        if not cmd.start:
            return None
        going = len(active(attempts))
        expected = tuple(run.attempt_id(run.attempts + n) for n in range(len(cmd.start)))
        last_failure_at = cmd.at if cmd.failures_seen > run.failures_seen else run.last_failure_at
        if cmd.state != RUN_RUNNING:
            return Refused(INVALID, "a plan that ends the run starts nothing")
        if cmd.start != expected:
            return Refused(STALE, f"the next attempts of {run.id} are {', '.join(expected)}")
        if going + len(cmd.start) > policy.parallelism:
            return Refused(WRONG_STATE, f"{going} attempts of {run.id} run already (parallelism {policy.parallelism})")
        if run.succeeded + going + len(cmd.start) > policy.completions:
            return Refused(WRONG_STATE, f"{run.id} needs {policy.completions - run.succeeded - going} more attempt(s)")
        if cmd.at < last_failure_at + policy.backoff_after(cmd.failures_seen):
            return Refused(WRONG_STATE, f"{run.id} backs off until "
                                        f"{last_failure_at + policy.backoff_after(cmd.failures_seen):.3f}")
        return None

    @handles(RunCronSlot)
    def run_slot(self, cmd: RunCronSlot, index: int) -> RunRecorded | Refused:
        record = self.records.get(cmd.service)
        spec = self._spec_of(cmd.service, None)
        if record is None or spec is None or not spec.scheduled or spec.job is None:
            return Refused(NOT_FOUND, f"no scheduled job {cmd.service}")
        if record.last_slot is not None and cmd.slot <= record.last_slot:
            return Refused(STALE, f"stale slot: {cmd.service} recorded slot {record.last_slot:.0f}, "
                                  f"this one is {cmd.slot:.0f}")
        if cmd.slot > cmd.at:
            return Refused(INVALID, f"slot {cmd.slot:.0f} is not due at {cmd.at:.0f}")
        overlap, going = spec.job.overlap, record.running
        want = SLOT_START if not going or overlap == "allow" else SLOT_SKIP if overlap == "forbid" else SLOT_REPLACE
        if overlap not in OVERLAPS or cmd.action != want:
            return Refused(WRONG_STATE, f"slot {cmd.slot:.0f} of {cmd.service} is a {want} "
                                        f"({len(going)} run(s) going, overlap {overlap}), not a {cmd.action}")
        self.records[cmd.service] = replace(record, last_slot=cmd.slot)
        version = self._version_of(cmd.service)
        if cmd.action == SLOT_SKIP:
            number = self._numbers[cmd.service] = self._numbers.get(cmd.service, 0) + 1
            why = f"run {going[0].number} still running (overlap forbid)"
            skipped = JobRun(cmd.service, number, version, cmd.at, cmd.slot).ended(RUN_SKIPPED, why, cmd.at)
            self.records[cmd.service] = self.records[cmd.service].with_run(skipped, self._kept)
            return RunRecorded(skipped)
        if cmd.action == SLOT_REPLACE:
            self._cancel_running(cmd.service, f"replaced by the run of slot {cmd.slot:.0f}", cmd.at, index)
        return RunRecorded(self._start_run(cmd.service, version, cmd.at, cmd.slot))

    # -- inside -----------------------------------------------------------------------------------
    def _start_run(self, name: str, version: int, at: float, slot: float | None) -> JobRun:
        number = self._numbers[name] = self._numbers.get(name, 0) + 1
        run = JobRun(name, number, version, at, slot)
        self.records[name] = self.records[name].with_run(run, self._kept)
        return run

    def _stop_attempts(self, name: str, run: int, ids: set[str] | None, index: int) -> list[str]:
        stopped = []
        for task in active(self.attempts(name, run)):
            if ids is None or task.id in ids:
                self._stop(task.id, index)
                stopped.append(task.id)
        return stopped

    def _cancel_running(self, name: str, reason: str, at: float, index: int) -> None:
        record = self.records[name]
        for run in record.running:
            self._stop_attempts(name, run.number, None, index)
            record = record.with_run(run.ended(RUN_CANCELLED, reason, at), self._kept)
        self.records[name] = record

    # -- snapshots --------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"records": [self.records[n].to_dict() for n in sorted(self.records)],
                "numbers": dict(sorted(self._numbers.items()))}

    def restore(self, data: dict[str, Any]) -> None:
        self.records = {r.name: r for r in (JobRecord.from_dict(d) for d in data.get("records", ()))}
        self._numbers = {str(k): int(v) for k, v in dict(data.get("numbers", {})).items()}

