"""Jobs: a service that runs to completion (``"mode": "job"``), once or on a cron schedule.

Values only, beside ``orion/domain/service.py``: the job block of a spec (:class:`JobPolicy`),
the replicated record of one run (:class:`JobRun`), and what the planners decide
(:class:`JobPlan`, :class:`CronSlot`). The planners are ``orion/control/job.py`` (one run's
attempts) and ``orion/control/periodic.py`` (when a scheduled job runs); the state machine
keeps the runs (``orion/state/jobs.py``); the design is ``docs/services.md`` ("Jobs").

A run wants ``completions`` successful attempts, at most ``parallelism`` at once. An attempt
is a task (``<job>.r<run>.<n>``) whose container exits 0 (``completed``) or not (``failed``);
the state machine counts each as it is reported, so nothing depends on the finished task
still being kept. A failed attempt is retried, after a backoff that doubles per failure,
until ``retries`` failures fail the run; a run past its ``deadline`` fails and its attempts
stop. Times are float seconds, stamped by the leader into the commands (the machine has
no clock).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from orion.defaults import SERVICE_DEFAULTS
from orion.domain.model import ASSIGNED, LOST, PENDING, RUNNING

# An attempt in one of these states (and still wanted) holds a place among its run's parallelism:
# the run planner's rule and the state machine's re-check read it here.
ATTEMPT_GOING = frozenset({PENDING, ASSIGNED, RUNNING, LOST})

OVERLAPS = ("forbid", "allow", "replace")

# Run states. ``running`` has attempts to make or waits on them; the others are final.
RUN_RUNNING = "running"
RUN_SUCCEEDED = "succeeded"
RUN_FAILED = "failed"
RUN_CANCELLED = "cancelled"  # a new version of a one-off job, a redeploy, a replace overlap, a delete
RUN_SKIPPED = "skipped"  # a cron slot not run: the previous run still went (overlap forbid)
RUN_STATES = (RUN_RUNNING, RUN_SUCCEEDED, RUN_FAILED, RUN_CANCELLED, RUN_SKIPPED)


@dataclass(frozen=True)
class JobPolicy:
    """How a job runs (Kubernetes' Job and CronJob fields, Swarm's replicated-job, Nomad's batch
    and periodic): durations in seconds, ``deadline`` 0 for none, ``schedule`` "" for a one-off job."""

    completions: int = SERVICE_DEFAULTS["completions"]
    parallelism: int = SERVICE_DEFAULTS["parallelism"]
    retries: int = SERVICE_DEFAULTS["retries"]
    backoff: float = SERVICE_DEFAULTS["backoff"]
    deadline: float = 0.0
    schedule: str = ""
    zone: str = ""
    overlap: str = SERVICE_DEFAULTS["overlap"]

    def backoff_after(self, failures: int) -> float:
        """The wait before the next attempt once ``failures`` attempts of the run failed."""
        if failures <= 0:
            return 0.0
        return min(self.backoff * 2 ** (failures - 1), max(self.backoff, SERVICE_DEFAULTS["backoff_max"]))

    def to_dict(self) -> dict[str, Any]:
        return {"completions": self.completions, "parallelism": self.parallelism, "retries": self.retries,
                "backoff": self.backoff, "deadline": self.deadline, "schedule": self.schedule,
                "zone": self.zone, "overlap": self.overlap}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobPolicy:
        base = cls()
        return cls(completions=int(d.get("completions", base.completions)),
                   parallelism=int(d.get("parallelism", base.parallelism)),
                   retries=int(d.get("retries", base.retries)), backoff=float(d.get("backoff", base.backoff)),
                   deadline=float(d.get("deadline", 0.0)), schedule=str(d.get("schedule", "")),
                   zone=str(d.get("zone", "")), overlap=str(d.get("overlap", base.overlap)))


@dataclass(frozen=True)
class JobRun:
    """The replicated record of run ``number`` of job ``service`` (its ``version``'s spec).

    ``slot``: the cron slot it runs for (None: a one-off run, a redeploy). ``attempts``: how
    many attempts were started; ``succeeded``/``failed``: how many ended so, counted by the
    state machine as they are reported. ``failures_seen``: the failures the leader has
    acknowledged, the last at ``last_failure_at`` (its clock), from which the backoff counts.
    """

    service: str
    number: int
    version: int
    started_at: float
    slot: float | None = None
    state: str = RUN_RUNNING
    reason: str = ""
    attempts: int = 0
    succeeded: int = 0
    failed: int = 0
    failures_seen: int = 0
    last_failure_at: float = 0.0
    finished_at: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.service}#r{self.number}"

    @property
    def running(self) -> bool:
        return self.state == RUN_RUNNING

    def attempt_id(self, n: int) -> str:
        """The id of this run's ``n``-th attempt (from 0): the same on every leader."""
        return f"{self.service}.r{self.number}.{n}"

    def ended(self, state: str, reason: str, at: float) -> JobRun:
        return replace(self, state=state, reason=reason, finished_at=at)

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "number": self.number, "version": self.version,
                "started_at": self.started_at, "slot": self.slot, "state": self.state, "reason": self.reason,
                "attempts": self.attempts, "succeeded": self.succeeded, "failed": self.failed,
                "failures_seen": self.failures_seen, "last_failure_at": self.last_failure_at,
                "finished_at": self.finished_at}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobRun:
        slot = d.get("slot")
        return cls(str(d["service"]), int(d["number"]), int(d["version"]), float(d["started_at"]),
                   None if slot is None else float(slot), str(d.get("state", RUN_RUNNING)),
                   str(d.get("reason", "")), int(d.get("attempts", 0)), int(d.get("succeeded", 0)),
                   int(d.get("failed", 0)), int(d.get("failures_seen", 0)), float(d.get("last_failure_at", 0.0)),
                   float(d.get("finished_at", 0.0)))


@dataclass(frozen=True)
class JobPlan:
    """One pass of the run planner for one run: attempts to start and to stop, failures seen,
    and the run's next state (``reason`` says why it ended). ``next_due``: the earliest moment
    the plan changes by time alone (a backoff ending, the deadline)."""

    service: str
    run: int
    state: str = RUN_RUNNING
    reason: str = ""
    start: tuple[str, ...] = ()
    stop: tuple[str, ...] = ()
    failures_seen: int = 0
    next_due: float | None = None

    @property
    def sentence(self) -> str:
        parts = [f"job {self.service} run {self.run} {self.state}" + (f" ({self.reason})" if self.reason else "")]
        if self.start:
            parts.append("start " + ", ".join(self.start))
        if self.stop:
            parts.append("stop " + ", ".join(self.stop))
        return "; ".join(parts)


# What the cron planner does with a due slot.
SLOT_START = "start"  # no run going, or overlap allow: a new run
SLOT_SKIP = "skip"  # overlap forbid and a run still goes: recorded as skipped
SLOT_REPLACE = "replace"  # overlap replace: the running run is cancelled, a new one starts
SLOT_ACTIONS = (SLOT_START, SLOT_SKIP, SLOT_REPLACE)


@dataclass(frozen=True)
class CronSlot:
    """The cron planner's decision: the slot (a run time, UNIX seconds) and what to do with it.
    ``missed``: earlier slots since the last recorded one that are not run (not caught up)."""

    service: str
    slot: float
    action: str
    missed: int = 0

    @property
    def sentence(self) -> str:
        missed = f" ({self.missed} earlier slot(s) missed)" if self.missed else ""
        return f"job {self.service}: slot {self.slot:.0f} {self.action}{missed}"
