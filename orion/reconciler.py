"""Make a node's containers match what the replicated state says it should run.

Level-triggered: every pass compares the whole desired set (tasks placed on
this node, read from the local replica) with the whole actual set (the
engine's managed containers) and plans what to do. Nothing depends on having
seen an earlier event, so a missed wake-up, an agent restart or a container
someone removed by hand are all repaired by the next pass.

:func:`plan` is the pure core (values in, actions out; no clock, no I/O).
:class:`Reconciler` is the thin runner: read, list, plan, act, report, and
return one sentence that is both the log line and what tests assert.

Adoption: containers carry task id and generation in labels, so after a
restart a running container of the task's current generation is reported
(``running``) rather than started a second time.

Died with the engine: a node that crashes (agent and engine) and comes back
before it is declared dead finds its containers "exited 255" (Docker lost their
processes). That is the node losing the task, not the task failing, so it is
reported ``lost`` and placed again whatever its restart policy, exactly as if the
node had been declared dead. The runner tells the two apart by what it saw: an
exit 255 of a container it saw running (or started) since it last reached the
engine is the task's own doing and follows the restart policy, which also bounds
a task that really exits 255 to one extra placement.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

from orion.model import (
    ASSIGNED,
    COMPLETED,
    DESIRED_RUN,
    DESIRED_STOP,
    FAILED,
    LOST,
    RUNNING,
    STOPPED,
    Task,
)
from orion.runtime import (
    ENGINE_LOST_EXIT,
    REMOVING_STATUS,
    ContainerState,
    EngineUnreachable,
    Runtime,
    RuntimeFailure,
)
from orion.state.commands import ReportTaskState
from orion.state.store import Store

log = logging.getLogger(__name__)


# -- actions: what the planner decides ----------------------------------------------


@dataclass(frozen=True)
class Start:
    """Create and start the task's container (its generation names it)."""

    task: Task


@dataclass(frozen=True)
class Stop:
    """Stop a container that must not run any more."""

    container_id: str
    task_id: str
    generation: int
    reason: str


@dataclass(frozen=True)
class Remove:
    """Delete a container that is no longer needed (stopped, stale, or a dead leftover)."""

    container_id: str
    task_id: str = ""
    generation: int = 0


@dataclass(frozen=True)
class Report:
    """Tell the replicated state what a task's container is doing."""

    task_id: str
    node_id: str
    generation: int
    state: str
    container_id: str | None = None
    host_ports: tuple[tuple[str, int], ...] = ()
    exit_code: int | None = None
    reason: str = ""

    def command(self, request_id: str = "") -> ReportTaskState:
        return ReportTaskState(
            request_id=request_id,
            task_id=self.task_id,
            node_id=self.node_id,
            generation=self.generation,
            state=self.state,
            container_id=self.container_id,
            host_ports=self.host_ports,
            exit_code=self.exit_code,
            reason=self.reason,
        )


Action = Start | Stop | Remove | Report

RestartHook = Callable[[Task, ContainerState], bool]


def never_restart(task: Task, container: ContainerState) -> bool:
    """The restart-policy hook. Today a finished container is reported, never restarted.

    A later restart policy (``on-failure``/``always`` with backoff) plugs in
    here: returning True makes :func:`plan` remove the finished container and
    start the same generation afresh; the state machine counts the new
    container id as a restart.
    """
    return False


# -- the pure core ---------------------------------------------------------------------


def report_for(node_id: str, task: Task, container: ContainerState) -> Report:
    """What a container's status means for its task: running, completed or failed."""
    if container.finished:
        code = container.exit_code if container.exit_code is not None else 0
        reason = f"exited with code {code}"
        if container.error:
            reason += f": {container.error}"
        return Report(task.id, node_id, task.generation, COMPLETED if code == 0 else FAILED,
                      container.container_id, container.host_ports, code, reason)
    return Report(task.id, node_id, task.generation, RUNNING, container.container_id, container.host_ports)


def died_with_engine(container: ContainerState, witnessed: Collection[str]) -> bool:
    """Did this container end because its engine lost it, not by itself?"""
    return (container.finished and container.exit_code == ENGINE_LOST_EXIT
            and container.container_id not in witnessed and "out of memory" not in container.error)


def lost_report(node_id: str, task: Task, container: ContainerState) -> Report:
    return Report(task.id, node_id, task.generation, LOST, container.container_id, task.host_ports,
                  container.exit_code, f"its container died with the Docker engine on {node_id} "
                  f"(exit {container.exit_code}, not seen exiting): placing it again")


def _in_sync(task: Task, container: ContainerState) -> bool:
    return (task.state == RUNNING and task.container_id == container.container_id
            and task.host_ports == container.host_ports)


def plan(
    node_id: str,
    desired: Sequence[Task],
    actual: Sequence[ContainerState],
    should_restart: RestartHook = never_restart,
    witnessed: Collection[str] = frozenset(),
) -> list[Action]:
    """The actions that bring ``actual`` to ``desired`` on ``node_id``.

    ``witnessed`` are the containers the caller saw running (or started) since it
    last reached the engine: their exits are the tasks' own (see the module doc).

    ``desired`` is the tasks placed on this node that are not over (including
    ``stopping`` ones); ``actual`` is every managed container of this node.
    Actions come ordered stops, removes, reports, starts: a replacement may
    need the host port its predecessor holds, and a ``stopped`` report must
    follow the stop it announces. Pure and deterministic: the same inputs give
    the same list, and an empty one when everything is in sync.
    """
    here = {t.id: t for t in desired if t.node_id == node_id}
    stops: list[Action] = []
    removes: list[Action] = []
    reports: list[Action] = []
    starts: list[Action] = []
    current: set[str] = set()  # tasks with a container of their current generation

    def retire(c: ContainerState, reason: str) -> None:
        if c.live:
            stops.append(Stop(c.container_id, c.task_id, c.generation, reason))
        removes.append(Remove(c.container_id, c.task_id, c.generation))

    for c in sorted(actual, key=lambda c: (c.task_id, c.generation, c.container_id)):
        if c.status == REMOVING_STATUS:
            continue  # the engine is already deleting it
        task = here.get(c.task_id)
        if task is None:
            retire(c, f"task {c.task_id} is not placed on {node_id}")
        elif c.generation < task.generation:
            retire(c, f"generation {c.generation} of task {c.task_id} replaced by {task.generation}")
        elif c.generation > task.generation:
            # Our replica is behind the log that placed this container (it is
            # catching up after a restart): leave it, and start nothing older.
            current.add(task.id)
        else:
            current.add(task.id)
            if task.desired == DESIRED_STOP:
                retire(c, "stop requested")
            elif c.live:
                if not _in_sync(task, c):
                    reports.append(report_for(node_id, task, c))
            elif c.finished:
                if died_with_engine(c, witnessed):
                    reports.append(lost_report(node_id, task, c))
                elif should_restart(task, c):
                    removes.append(Remove(c.container_id, c.task_id, c.generation))
                    starts.append(Start(task))
                else:
                    reports.append(report_for(node_id, task, c))
            else:
                # Created but never started: the agent died between create and start.
                removes.append(Remove(c.container_id, c.task_id, c.generation))
                starts.append(Start(task))

    for task in here.values():
        if task.desired == DESIRED_STOP:
            reports.append(Report(task.id, node_id, task.generation, STOPPED, task.container_id,
                                  reason="stopped on request"))
        elif task.desired == DESIRED_RUN and task.id not in current and task.state in (ASSIGNED, RUNNING):
            starts.append(Start(task))
    return stops + removes + reports + starts


# -- the runner ----------------------------------------------------------------------------


@dataclass
class _Outcome:
    """What one pass did, for the sentence it returns."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    removed: int = 0
    reported: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_containers: set[str] = field(default_factory=set)
    held_tasks: set[str] = field(default_factory=set)
    engine_down: bool = False

    def sentence(self) -> str:
        parts = []
        if self.started:
            parts.append("started " + ", ".join(self.started))
        if self.stopped:
            parts.append("stopped " + ", ".join(self.stopped))
        if self.removed:
            parts.append(f"removed {self.removed} container{'s' if self.removed != 1 else ''}")
        if self.reported:
            parts.append("reported " + ", ".join(self.reported))
        if self.errors:
            parts.append("errors: " + "; ".join(self.errors))
        return "; ".join(parts) or "nothing done"


class Reconciler:
    """Runs :func:`plan` against the store and the runtime, one pass at a time.

    Threading: :meth:`run_forever` is the only thread that acts; the store's
    listener only sets an event (it must not block the apply path).
    """

    def __init__(
        self,
        node_id: str,
        store: Store,
        runtime: Runtime,
        *,
        interval: float = 5.0,
        stop_timeout: float = 10.0,
        write_timeout: float = 5.0,
        should_restart: RestartHook = never_restart,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.node_id = node_id
        self._store = store
        self._runtime = runtime
        self._interval = interval
        self._stop_timeout = stop_timeout
        self._write_timeout = write_timeout
        self._should_restart = should_restart
        # Told "start" / "failure" / "restart" as containers come and go (metrics).
        self._on_event = on_event or (lambda _kind: None)
        self._wake = threading.Event()
        # Containers seen running or started since the engine was last unreachable.
        self._witnessed: set[str] = set()
        self.last_result = ""
        self.passes = 0
        store.add_listener(self._on_apply)

    def _on_apply(self, index: int) -> None:
        self._wake.set()

    def wake(self) -> None:
        """Ask for a pass now (e.g. the engine reported a container event)."""
        self._wake.set()

    def run_once(self) -> str:
        """One full pass: read desired, list actual, plan, act. Returns what it did."""
        desired, _ = self._store.read(lambda m: m.tasks_on(self.node_id))
        try:
            actual = self._runtime.list_managed(self.node_id)
        except RuntimeFailure as exc:
            self._witnessed.clear()  # whatever ends while we cannot see is not the task's doing
            return self._done(f"cannot list containers: {exc}")
        actions = plan(self.node_id, desired, actual, self._should_restart, frozenset(self._witnessed))
        self._witnessed = {c.container_id for c in actual if c.live or c.container_id in self._witnessed}
        if not actions:
            live = sum(1 for c in actual if c.live)
            return self._done(f"in sync: {len(desired)} tasks, {live} running containers")
        outcome = _Outcome()
        for action in actions:
            self._execute(action, outcome)
        return self._done(outcome.sentence())

    def _done(self, sentence: str) -> str:
        self.passes += 1
        self.last_result = sentence
        return sentence

    def _execute(self, action: Action, out: _Outcome) -> None:
        if isinstance(action, Stop):
            try:
                self._runtime.stop(action.container_id, self._stop_timeout)
                out.stopped.append(action.task_id)
            except RuntimeFailure as exc:
                # Keep the container and the task as they are; the next pass tries again.
                out.failed_containers.add(action.container_id)
                out.held_tasks.add(action.task_id)
                out.errors.append(f"stop {action.task_id}: {exc}")
        elif isinstance(action, Remove):
            if action.container_id in out.failed_containers:
                return
            try:
                self._runtime.remove(action.container_id)
                out.removed += 1
            except RuntimeFailure as exc:
                out.errors.append(f"remove {action.container_id[:12]}: {exc}")
        elif isinstance(action, Report):
            if action.task_id not in out.held_tasks:
                self._report(action, out)
        elif isinstance(action, Start):
            task = action.task
            if out.engine_down:
                return
            try:
                container = self._runtime.start(task, self.node_id)
            except EngineUnreachable as exc:
                # Not the task's fault: leave it as it is and try again next pass (a
                # node whose engine stays down is the node's problem, not the tasks').
                out.engine_down = True
                self._witnessed.clear()
                out.errors.append(f"start {task.id}: {exc}")
                return
            except RuntimeFailure as exc:
                out.errors.append(f"start {task.id}: {exc}")
                self._report(Report(task.id, self.node_id, task.generation, FAILED, reason=str(exc)), out)
                return
            out.started.append(task.id)
            self._witnessed.add(container.container_id)
            self._on_event("restart" if task.state not in (ASSIGNED,) else "start")
            self._report(report_for(self.node_id, task, container), out)

    def _report(self, report: Report, out: _Outcome) -> None:
        # A fresh request id: a retried write is not applied twice, yet the same
        # report sent again on a later pass (the state changed meanwhile) still counts.
        try:
            result = self._store.submit(report.command(uuid.uuid4().hex), self._write_timeout)
        except Exception as exc:  # noqa: BLE001 - NoLeader/WriteTimeout: retried next pass
            out.errors.append(f"report {report.task_id} {report.state}: {exc}")
            return
        if isinstance(result, dict) and result.get("ok") is False:
            out.errors.append(f"report {report.task_id} {report.state} refused: {result.get('error')}")
        else:
            out.reported.append(f"{report.task_id} {report.state}")
            if report.state == FAILED:
                self._on_event("failure")

    def run_forever(self, stop_event: threading.Event) -> None:
        """Pass after pass until ``stop_event``: at once when the store changes,
        else every ``interval`` (which catches changes outside Orion, like a
        container that died or was removed by hand)."""
        poll = min(0.25, self._interval)  # how soon stop_event is noticed while idle
        last_desired: tuple | None = None
        last_pass = 0.0
        while not stop_event.is_set():
            self._wake.clear()
            # Every commit anywhere wakes us; most do not concern this node. Listing the
            # engine costs far more than reading the replica, so skip the pass when this
            # node's desired set is unchanged and the periodic pass is not yet due.
            desired = self._desired_fingerprint()
            if desired == last_desired and time.monotonic() - last_pass < self._interval:
                self._sleep(stop_event, last_pass + self._interval, poll)
                continue
            last_desired, last_pass = desired, time.monotonic()
            try:
                sentence = self.run_once()
                if sentence.startswith("in sync"):
                    log.debug("reconcile %s: %s", self.node_id, sentence)
                else:
                    log.info("reconcile %s: %s", self.node_id, sentence)
            except Exception:
                log.exception("reconcile %s: pass failed; retrying", self.node_id)
            self._sleep(stop_event, time.monotonic() + self._interval, poll)

    def _sleep(self, stop_event: threading.Event, deadline: float, poll: float) -> None:
        """Until ``deadline``, a wake-up, or ``stop_event``."""
        while not stop_event.is_set() and not self._wake.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wake.wait(min(poll, remaining))

    def _desired_fingerprint(self) -> tuple:
        """What this node is asked to run, as plain values (cheap: the replica, no engine)."""
        desired, _ = self._store.read(
            lambda m: tuple((t.id, t.generation, t.state, t.desired, t.container_id) for t in m.tasks_on(self.node_id)))
        return desired
