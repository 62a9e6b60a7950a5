"""The leader's job loop: each job's due cron slot and each running run, one command each.

The decisions are pure: ``periodic.plan`` (is a slot due, and what to do with it) and
``job.plan`` (a run's next attempts, or its end), both called with the leader's clock as a
value (``clock``: a test hands its own, on a ``LocalStore``, and steps it). This loop reads
one view per job from the local replica and submits what changed: a ``RunCronSlot`` or an
``ApplyJobPlan``. It keeps nothing between passes: the runs, their counts, the attempts
and the last slot are replicated, and the state machine refuses a slot no later than the
last one recorded and a plan whose step moved on, so a new leader decides the same next
step and an old leader's late decision changes nothing.

Attempts are pending tasks: the placement loop places them, the reconciler runs them,
their nodes report how they exited, and the machine counts that (``orion/state/jobs.py``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from orion.control import job, periodic
from orion.domain.job import JobRun
from orion.domain.service import ServiceSpec
from orion.loop import PassResult, decided_pass, run_loop, wake_on_leader
from orion.state.commands import ApplyJobPlan, RunCronSlot
from orion.state.machine import StateMachine
from orion.state.results import Refused
from orion.store.port import Store

log = logging.getLogger("orion.control.job_loop")

# Seconds between a pass's end and the next when woken by every apply (the deployment loop's).
_MIN_GAP = 0.05


@dataclass(frozen=True)
class JobView:
    """One job as a pass reads it: its current spec and version time, its step and last slot,
    and each running run with its spec and attempts."""

    spec: ServiceSpec
    declared_at: float
    step: int
    last_slot: float | None
    runs: tuple[tuple[JobRun, ServiceSpec, tuple[job.Attempt, ...]], ...]


def _jobs(machine: StateMachine) -> list[JobView]:
    views = []
    for record in machine.services.all():
        jobs = machine.jobs.get(record.name)
        if record.spec.job is None or jobs is None:
            continue
        runs = []
        for run in jobs.running:
            kept = record.version(run.version)
            attempts = tuple(job.Attempt(t.id, t.state, t.desired)
                             for t in machine.jobs.attempts(record.name, run.number))
            runs.append((run, kept.spec if kept is not None else record.spec, attempts))
        views.append(JobView(record.spec, record.current.at, jobs.step, jobs.last_slot, tuple(runs)))
    return views


class JobLoop:
    """Runs on every node, acts only while this node is the Raft leader."""

    def __init__(self, store: Store, interval: float, write_timeout: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._interval = interval
        self._timeout = write_timeout
        self._clock = clock
        self._wake = threading.Event()
        store.add_listener(wake_on_leader(store, self._wake))

    def decide(self, views: list[JobView], now: float) -> list[tuple[RunCronSlot | ApplyJobPlan, str]]:
        """This pass's commands: per job, a due slot, and the first run whose plan changes
        something (one plan per job per pass: the next one is made on the state it leaves)."""
        out: list[tuple[RunCronSlot | ApplyJobPlan, str]] = []
        for view in views:
            name, policy = view.spec.name, view.spec.job
            if policy is not None and view.spec.scheduled:
                slot = periodic.plan(name, policy, view.declared_at, view.last_slot, len(view.runs), now)
                if slot is not None:
                    out.append((RunCronSlot(request_id=uuid.uuid4().hex, service=name, slot=slot.slot,
                                            action=slot.action, missed=slot.missed, at=now), slot.sentence))
            for run, spec, attempts in view.runs:
                if spec.job is None:
                    continue
                decided = job.plan(job.RunView(run, spec.job, attempts), now)
                if job.changes(run, decided):
                    out.append((ApplyJobPlan(request_id=uuid.uuid4().hex, service=name, run=run.number,
                                             step=view.step, state=decided.state, reason=decided.reason,
                                             start=decided.start, stop=decided.stop,
                                             failures_seen=decided.failures_seen, at=now), decided.sentence))
                    break
        return out

    def run_once(self) -> PassResult[tuple[Refused, ...]]:
        if not self._store.is_leader():
            return decided_pass([], [], "no job to move")
        views, _ = self._store.read(_jobs)
        sentences: list[str] = []
        refused: list[Refused] = []
        for command, sentence in self.decide(views, self._clock()):
            result = self._store.submit(command, self._timeout)
            if isinstance(result, Refused):
                refused.append(result)
            else:
                sentences.append(sentence)
        return decided_pass(sentences, refused, "no job to move")

    def run_forever(self, stop: threading.Event) -> None:
        run_loop("jobs", log, self._wake, self._interval, stop, self.run_once, min_gap=_MIN_GAP)
