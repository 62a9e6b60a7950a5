"""The runner of health checks on a node: the replicas it runs, checked, reported on change.

For every service replica this node runs (read from the local replica), the
check of the replica's version is run when due (``health.next_check_at``), in a
small pool of threads because a check waits up to its timeout; each result is
folded in by the pure ``health.observe``, and only a *change* of status goes to
Raft (``ReportTaskHealth``, checked by the machine against node and generation
like any report). A replica without a check is reported healthy once it runs,
so "counts when healthy for minHealthyTime" means "running that long" for it.

An unhealthy replica is then reported ``failed`` ("unhealthy: <output>"):
its container is stopped by the reconciler (a failed task holds its node no
more) and the restart policy, on the leader, decides what follows, exactly as
for a container that exited by itself (Swarm replaces unhealthy tasks the same
way; Kubernetes restarts a container whose liveness probe fails).

What is remembered here is only the per-placement check state (keyed by task
and generation); a restarted agent starts from the status in Raft, so a
replica that was healthy is not reported again unless it changes.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from orion.domain.model import DESIRED_RUN, FAILED, RUNNING, Task
from orion.domain.service import HEALTHY, STARTING, UNHEALTHY, HealthCheck
from orion.loop import PassResult, run_loop
from orion.node import health
from orion.node.health_checks import CheckRuntime, run_check
from orion.runtime import RuntimeFailure
from orion.state.commands import Command, ReportTaskHealth, ReportTaskState
from orion.state.machine import StateMachine
from orion.state.results import Refused
from orion.store.port import Store, StoreError

log = logging.getLogger("orion.node.health_loop")

NO_CHECK = "no health check: counted healthy while it runs"
# Seconds between a pass's end and the next when woken by every apply: a burst of commits
# (hundreds a second under load, each a read of this node's tasks) needs one pass, and a
# check's interval is seconds (bench/write_path.py: 5.7% of a busy leader's GIL without it).
_MIN_GAP = 0.1


@dataclass
class _Watch:
    """One placement of one replica being checked."""

    started_at: float
    state: health.HealthState
    ip: str | None = None  # fetched once per container
    running: Future | None = None
    at: float = 0.0  # when the running check started


@dataclass(frozen=True)
class Checked:
    """A replica as this pass sees it: the task and its version's check (None: no check)."""

    task: Task
    check: HealthCheck | None


def _replicas(node_id: str) -> Callable[[StateMachine], list[Checked]]:
    def read(m: StateMachine) -> list[Checked]:
        out = []
        for task in m.tasks_on(node_id):
            if not task.service or task.node_id != node_id or task.state != RUNNING or task.desired != DESIRED_RUN:
                continue
            record = m.services.get(task.service)
            if record is None:
                continue
            version = record.version(task.version) or record.current
            out.append(Checked(task, version.spec.health_check))
        return out
    return read


@dataclass
class _Outcome:
    reports: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def result(self) -> PassResult[None]:
        parts = (["reported " + ", ".join(self.reports)] if self.reports else []) + self.errors
        return PassResult("; ".join(parts) or "nothing to report", acted=bool(parts))


class HealthLoop:
    """Checks this node's replicas; one thread decides, a small pool probes."""

    def __init__(self, node_id: str, store: Store, runtime: CheckRuntime, *, tick: float, workers: int,
                 write_timeout: float, clock: Callable[[], float] = time.time) -> None:
        self.node_id = node_id
        self._store = store
        self._runtime = runtime
        self._tick = tick
        self._timeout = write_timeout
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="health-check")
        self._watches: dict[tuple[str, int], _Watch] = {}
        self._wake = threading.Event()
        store.add_listener(lambda _index: self._wake.set())

    def run_once(self) -> PassResult[None]:
        replicas, _ = self._store.read(_replicas(self.node_id))
        now = self._clock()
        out = _Outcome()
        seen = {(r.task.id, r.task.generation) for r in replicas}
        self._watches = {k: w for k, w in self._watches.items() if k in seen}
        for r in replicas:
            task, check = r.task, r.check
            if check is None:
                if task.health != HEALTHY:
                    self._report_health(task, HEALTHY, now, NO_CHECK, out)
                continue
            if task.health == UNHEALTHY:  # reported: now the container goes, and the restart policy decides
                self._submit(ReportTaskState(request_id=uuid.uuid4().hex, task_id=task.id, node_id=self.node_id,
                                             generation=task.generation, state=FAILED,
                                             container_id=task.container_id,
                                             reason=f"unhealthy: {task.health_output}"), f"{task.id} failed", out)
                continue
            key = (task.id, task.generation)
            watch = self._watches.get(key)
            if watch is None:
                status = task.health or STARTING
                since = task.health_since if task.health else None
                watch = self._watches[key] = _Watch(now, health.HealthState(status=status, since=since))
            if watch.running is not None:
                if not watch.running.done():
                    continue
                self._fold(task, check, watch, out)
            if now >= health.next_check_at(watch.state, watch.started_at, check):
                watch.at = now
                watch.running = self._pool.submit(self._probe, task, check, watch)
                watch.running.add_done_callback(lambda _f: self._wake.set())
        return out.result()

    def _probe(self, task: Task, check: HealthCheck, watch: _Watch) -> health.CheckResult:
        if check.kind != "exec" and watch.ip is None:
            try:
                watch.ip = self._runtime.container_ip(task.container_id or "")
            except RuntimeFailure as exc:
                return health.CheckResult(False, f"cannot find the container's address: {exc}")
        return run_check(self._runtime, task, check, watch.ip or "")

    def _fold(self, task: Task, check: HealthCheck, watch: _Watch, out: _Outcome) -> None:
        future, watch.running = watch.running, None
        try:
            result = future.result() if future is not None else None
        except Exception as exc:  # noqa: BLE001 - a check's own bug is a failed check, not a dead loop
            result = health.CheckResult(False, f"check crashed: {exc}")
        if result is None:
            return
        before = watch.state
        watch.state, change = health.observe(before, result, watch.at, watch.started_at, check)
        if change is not None and not self._report_health(task, change.status, change.at, change.output, out):
            # Not committed: keep the status Raft has, so the next result reports the change again.
            watch.state = replace(watch.state, status=before.status, since=before.since)

    def _report_health(self, task: Task, status: str, at: float, output: str, out: _Outcome) -> bool:
        command = ReportTaskHealth(request_id=uuid.uuid4().hex, task_id=task.id, node_id=self.node_id,
                                   generation=task.generation, status=status, since=at, output=output)
        return self._submit(command, f"{task.id} {status}", out)

    def _submit(self, command: Command, what: str, out: _Outcome) -> bool:
        try:
            result = self._store.submit(command, self._timeout)
        except StoreError as exc:  # no leader now: the caller tries again on a later pass
            out.errors.append(f"report {what}: {exc}")
            return False
        if isinstance(result, Refused):
            out.errors.append(f"report {what} refused: {result.detail}")
            return False
        out.reports.append(what)
        return True

    def run_forever(self, stop: threading.Event) -> None:
        try:
            run_loop(f"health {self.node_id}", log, self._wake, self._tick, stop, self.run_once, min_gap=_MIN_GAP)
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
