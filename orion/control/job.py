"""A job's run: which attempts to start or stop next, and when the run is over, as a pure function.

The shape is Kubernetes' Job controller with Nomad's batch reschedule: a run wants
``completions`` attempts to exit 0, with at most ``parallelism`` going at once. :func:`plan`
reads one view (the replicated run record, the job block, the run's attempts, ``now``) and
returns a :class:`~orion.domain.job.JobPlan`; the leader's ``JobLoop`` commits it as one
``ApplyJobPlan``, which the state machine re-checks (``orion/state/jobs.py``). Nothing is
remembered between calls, so a leader change is a non-event: the run record, its counts and
the attempts are replicated, and an attempt's id derives from the run's attempt count
(``JobRun.attempt_id``), so a new leader starts the same next attempt and a late plan from
the old one is refused as stale.

The rules, in order:

* ``completions`` attempts succeeded: the run ``succeeded``.
* More than ``retries`` attempts failed: the run ``failed``; attempts still going stop.
* ``deadline`` seconds after the run started: the run ``failed`` ("past its deadline");
  attempts still going stop (Kubernetes' activeDeadlineSeconds).
* Otherwise start attempts while fewer than ``parallelism`` go and the run still needs
  them (never more going than completions left), but not before the backoff after the
  last failure ends: ``backoff`` doubled per failure of the run, capped. A failure the leader
  has not seen before is acknowledged in the plan, its backoff counting from ``now``.

An attempt is counted by how its container exited (``completed``: exit 0); a lost one (its
node died) is placed again under its id by the healer, as any task, and counts once it ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from orion.domain.job import ATTEMPT_GOING, RUN_FAILED, RUN_RUNNING, RUN_SUCCEEDED, JobPlan, JobPolicy, JobRun
from orion.domain.model import DESIRED_RUN, PENDING


@dataclass(frozen=True)
class Attempt:
    """One attempt of the run as the planner sees it."""

    id: str
    state: str = PENDING
    desired: str = DESIRED_RUN

    @property
    def going(self) -> bool:
        return self.desired == DESIRED_RUN and self.state in ATTEMPT_GOING


@dataclass(frozen=True)
class RunView:
    """What one pass reads about one running run, at one moment."""

    run: JobRun
    policy: JobPolicy
    attempts: Sequence[Attempt]


def plan(view: RunView, now: float) -> JobPlan:
    """Decide this pass of the run (see the module doc for the rules)."""
    run, policy = view.run, view.policy
    going = tuple(a.id for a in sorted(view.attempts, key=lambda a: a.id) if a.going)
    seen = run.failed
    end = None
    if run.succeeded >= policy.completions:
        end = (RUN_SUCCEEDED, f"{run.succeeded} of {policy.completions} completions succeeded")
    elif run.failed > policy.retries:
        end = (RUN_FAILED, f"{run.failed} attempts failed (retries {policy.retries})")
    elif policy.deadline and now >= run.started_at + policy.deadline:
        end = (RUN_FAILED, f"past its deadline of {policy.deadline:g}s")
    if end is not None:
        return JobPlan(run.service, run.number, end[0], end[1], stop=going, failures_seen=seen)
    last_failure_at = now if run.failed > run.failures_seen else run.last_failure_at
    ready_at = last_failure_at + policy.backoff_after(run.failed)
    want = min(policy.parallelism - len(going), policy.completions - run.succeeded - len(going))
    starts: tuple[str, ...] = ()
    due = [run.started_at + policy.deadline] if policy.deadline else []
    if want > 0 and now >= ready_at:
        starts = tuple(run.attempt_id(run.attempts + n) for n in range(want))
    elif want > 0:
        due.append(ready_at)
    return JobPlan(run.service, run.number, RUN_RUNNING, start=starts, failures_seen=seen,
                   next_due=min((t for t in due if t > now), default=None))


def changes(run: JobRun, decided: JobPlan) -> bool:
    """Is the plan worth a Raft entry: attempts to start or stop, failures to acknowledge, an end?"""
    return bool(decided.start or decided.stop or decided.state != run.state
                or decided.failures_seen != run.failures_seen)
