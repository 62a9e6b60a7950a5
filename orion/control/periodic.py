"""When a scheduled job runs: the cron planner, a pure function of the schedule and ``now``.

Nomad's periodic dispatcher and Kubernetes' CronJob controller, without their clocks: the
leader's ``JobLoop`` calls :func:`plan` with its own clock (or a test's) and submits the
decision as one ``RunCronSlot``. The state machine records each slot it applies
(``JobRecord.last_slot``) and refuses a slot no later than that one (``orion/state/jobs.py``),
so a slot runs once however many leaders decide it: a leader killed after committing a run
leaves a successor that sees the slot recorded, and one killed before leaves a successor
that runs it.

A slot is due once its time has passed and it is later than the last recorded slot and than
the job's current version (a schedule changed at 03:10 does not run the 03:00 slot). Of
several due slots (the leader was away) only the latest runs; the others are reported
missed, not caught up (Kubernetes and Nomad do the same). What the slot does depends on
the runs going and the overlap policy: start; ``forbid`` skips it while a run goes
(recorded as a skipped run); ``replace`` cancels the run that goes and starts anew;
``allow`` starts beside it.
"""

from __future__ import annotations

from orion.domain import cron
from orion.domain.job import SLOT_REPLACE, SLOT_SKIP, SLOT_START, CronSlot, JobPolicy

# Missed slots are counted up to this many (a job every second after an hour away).
_MISSED_CAP = 1000


def plan(service: str, policy: JobPolicy, declared_at: float, last_slot: float | None, running: int,
         now: float) -> CronSlot | None:
    """The slot due at ``now`` and what to do with it, or None (nothing due)."""
    schedule = cron.parse(policy.schedule)
    since = max(declared_at, last_slot if last_slot is not None else declared_at)
    slot = cron.due_slot(schedule, now, since, policy.zone)
    if slot is None:
        return None
    missed, at = 0, cron.next_after(schedule, since, policy.zone)
    while at < slot and missed < _MISSED_CAP:
        missed += 1
        at = cron.next_after(schedule, at, policy.zone)
    if not running or policy.overlap == "allow":
        action = SLOT_START
    else:
        action = SLOT_SKIP if policy.overlap == "forbid" else SLOT_REPLACE
    return CronSlot(service, slot, action, missed)


def next_run(policy: JobPolicy, declared_at: float, last_slot: float | None, now: float) -> float:
    """The next run time ``orion service ls`` shows: the first slot after ``now`` and the last
    recorded one (a slot due but not yet decided shows as now's)."""
    since = max(declared_at, last_slot if last_slot is not None else declared_at)
    schedule = cron.parse(policy.schedule)
    due = cron.due_slot(schedule, now, since, policy.zone)
    return due if due is not None else cron.next_after(schedule, max(now, since), policy.zone)
