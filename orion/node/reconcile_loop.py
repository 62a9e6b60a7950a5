"""The runner of the node reconciler (:func:`orion.node.reconcile.plan`): read the
replica, list the engine, plan, act, report, and return what it did (a
``PassResult``: its sentence is both the log line and what tests assert).

It is also what remembers, between passes, which containers it saw running
(``witnessed``): the pure planner needs that to tell a task's own exit from one
its engine caused (see :mod:`orion.node.reconcile`), and since when each container
of a task the state does not know has been an orphan candidate (:mod:`orion.node.orphans`:
those are kept from the reconciler's plan and removed only after the grace period).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from orion.domain.model import ASSIGNED, FAILED, Task
from orion.loop import SKIPPED, PassResult, run_loop
from orion.node import orphans
from orion.node.reconcile import Action, Remove, Report, Start, Stop, plan, report_for
from orion.node.task_files import Blocked
from orion.node.task_inputs import TaskInputs
from orion.runtime import (
    ContainerState,
    EngineUnreachable,
    NetworkAttachment,
    NetworkNotReady,
    RegistryAuthRequired,
    Runtime,
    RuntimeFailure,
    StartExtras,
    container_name,
)
from orion.state.commands import ReportTaskWaiting
from orion.state.entries import SECRETS_LOG_VERSION
from orion.state.results import Refused
from orion.store.port import Store, StoreError

log = logging.getLogger(__name__)


@dataclass
class _Outcome:
    """What one pass did, for the sentence it returns."""

    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    removed: int = 0
    orphans: list[str] = field(default_factory=list)
    reported: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    failed_containers: set[str] = field(default_factory=set)
    held_tasks: set[str] = field(default_factory=set)
    engine_down: bool = False

    @property
    def acted(self) -> bool:
        return bool(self.started or self.stopped or self.removed or self.orphans or self.reported or self.errors)

    def sentence(self) -> str:
        parts: list[str] = []
        if self.started:
            parts.append("started " + ", ".join(self.started))
        if self.stopped:
            parts.append("stopped " + ", ".join(self.stopped))
        if self.removed:
            parts.append(f"removed {self.removed} container{'s' if self.removed != 1 else ''}")
        if self.orphans:
            parts.append("removed orphaned " + ", ".join(self.orphans))
        if self.reported:
            parts.append("reported " + ", ".join(self.reported))
        if self.errors:
            parts.append("errors: " + "; ".join(self.errors))
        return "; ".join(parts) or "nothing done"


class ReconcileLoop:
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
        interval: float,
        stop_timeout: float,
        write_timeout: float,
        orphan_grace: float,
        on_event: Callable[[str], None] | None = None,
        attachment: Callable[[Task], NetworkAttachment | None | str] | None = None,
        mono: Callable[[], float] = time.monotonic,
        inputs: TaskInputs | None = None,
    ) -> None:
        self.node_id = node_id
        self._store = store
        self._runtime = runtime
        self._interval = interval
        self._stop_timeout = stop_timeout
        self._write_timeout = write_timeout
        self._orphan_grace = orphan_grace
        self._mono = mono
        # Told "start" / "failure" / "restart" / "orphan" as containers come and go (metrics).
        self._on_event = on_event or (lambda _kind: None)
        # How a task joins the overlay (orion/node/network_views.py attachment_for): an
        # attachment, None (it does not), or what it waits for (a start deferred, not failed).
        self._attachment = attachment or (lambda _task: None)
        # Orphan candidates: container id -> when its task was first seen unknown on a current view.
        self._unknown_since: dict[str, float] = {}
        # Secrets, configs and pull credentials of the tasks it starts (docs/secrets.md).
        self._inputs = inputs
        self._wake = threading.Event()
        # A container of this node died since the last pass (the engine's events): the next
        # wake passes even if the desired set is unchanged (see container_exited).
        self._exited = threading.Event()
        # Containers seen running or started since the engine was last unreachable.
        self._witnessed: set[str] = set()
        self.last_result: PassResult[None] = PassResult("no pass yet")
        self.passes = 0
        # The engine did not answer the last pass: retried when the period is due (see _may_skip).
        self.engine_silent = False
        store.add_listener(self._on_apply)

    def _on_apply(self, index: int) -> None:
        self._wake.set()

    def container_exited(self) -> None:
        """Told by the engine's event stream (``DockerRuntime.watch_exits``) that a container of
        this node died: pass now, so the task's report (and so DNS and the VIPs, which drop it)
        follows the crash at once instead of at the next period."""
        self._exited.set()
        self._wake.set()

    def run_once(self) -> PassResult[None]:
        """One full pass: read desired, list actual, plan, act. Returns what it did; a pass that
        found the node in sync did nothing (``acted`` False)."""
        desired, _ = self._store.read(lambda m: m.tasks_on(self.node_id))
        try:
            actual = self._runtime.list_managed(self.node_id)
        except RuntimeFailure as exc:
            self._witnessed.clear()  # whatever ends while we cannot see is not the task's doing
            self.engine_silent = True
            return self._done(PassResult(f"cannot list containers: {exc}", acted=True))
        self.engine_silent = False
        listed = actual
        orphan_plan, actual = self._orphans(actual)
        actions = plan(self.node_id, desired, actual, frozenset(self._witnessed))
        self._witnessed = {c.container_id for c in actual if c.live or c.container_id in self._witnessed}
        if self._inputs is not None:  # files of containers gone (an agent killed mid-way, a docker rm)
            self._inputs.sweep({container_name(c.task_id, c.generation) for c in listed})
        if not actions and not orphan_plan.remove:
            live = sum(1 for c in actual if c.live)
            waiting = f", {orphan_plan.waiting} orphan candidates" if orphan_plan.waiting else ""
            return self._done(PassResult(f"in sync: {len(desired)} tasks, {live} running containers{waiting}"))
        outcome = _Outcome()
        for orphan in orphan_plan.remove:
            self._remove_orphan(orphan, outcome)
        for action in actions:
            self._execute(action, outcome)
        return self._done(PassResult(outcome.sentence(), acted=outcome.acted))

    def _orphans(self, actual: list[ContainerState]) -> tuple[orphans.OrphanPlan, list[ContainerState]]:
        """The orphan plan, and the containers left for the reconciler (those of known tasks).
        Which tasks are known is read after listing, so a task purged meanwhile is unknown."""
        ids = {c.task_id for c in actual}
        known, _ = self._store.read(lambda m: {i for i in ids if m.task(i) is not None})
        current = self._store.ready()
        found = orphans.plan(actual, known, self._unknown_since, self._mono(), self._orphan_grace, current)
        self._unknown_since = dict(found.unknown_since)
        return found, [c for c in actual if c.task_id in known]

    def _remove_orphan(self, c: ContainerState, out: _Outcome) -> None:
        try:
            if c.live:
                self._runtime.stop(c.container_id, self._grace(c.stop_grace))
            self._runtime.remove(c.container_id)
        except RuntimeFailure as exc:  # the next pass tries again (it is still unknown, and due)
            self._unknown_since[c.container_id] = self._mono() - self._orphan_grace
            out.errors.append(f"remove orphan {c.container_id[:12]}: {exc}")
            return
        log.warning("%s: removed orphaned container %s of task %s (generation %d, %s): the replicated state "
                    "has not known the task for %gs", self.node_id, c.container_id[:12], c.task_id, c.generation,
                    c.status, self._orphan_grace)
        out.orphans.append(f"{c.task_id} ({c.container_id[:12]})")
        self._on_event("orphan")

    def _grace(self, own: float | None) -> float:
        """How long a container gets between its stop signal and SIGKILL: its task's
        ``stopGracePeriod`` when it was created with one, else this node's ``stop_timeout``."""
        return self._stop_timeout if own is None else own

    def _done(self, result: PassResult[None]) -> PassResult[None]:
        self.passes += 1
        self.last_result = result
        return result

    def _execute(self, action: Action, out: _Outcome) -> None:
        if isinstance(action, Stop):
            try:
                self._runtime.stop(action.container_id, self._grace(action.grace))
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
                if self._inputs is not None and action.task_id:
                    self._inputs.release(action.task_id, action.generation)
            except RuntimeFailure as exc:
                out.errors.append(f"remove {action.container_id[:12]}: {exc}")
        elif isinstance(action, Report):
            if action.task_id not in out.held_tasks:
                self._report(action, out)
        elif isinstance(action, Start):
            task = action.task
            if out.engine_down:
                return
            network = self._attachment(task)
            if isinstance(network, str):
                out.errors.append(f"start {task.id} waits: {network}")
                return
            extras = self._prepare(task, out)
            if extras is None:
                return
            try:
                container = self._runtime.start(task, self.node_id, extras, network)
            except RegistryAuthRequired as exc:  # not the task's fault: it waits for credentials
                self._release(task)
                self._wait(task, str(exc), out)
                return
            except NetworkNotReady as exc:  # the datapath creates the network on its next pass
                self._release(task)
                out.errors.append(f"start {task.id} waits: {exc}")
                return
            except EngineUnreachable as exc:
                # Not the task's fault: leave it as it is and try again next pass (a
                # node whose engine stays down is the node's problem, not the tasks').
                out.engine_down = True
                self._witnessed.clear()
                out.errors.append(f"start {task.id}: {exc}")
                return
            except RuntimeFailure as exc:
                self._release(task)
                out.errors.append(f"start {task.id}: {exc}")
                self._report(Report(task.id, self.node_id, task.generation, FAILED, reason=str(exc)), out)
                return
            out.started.append(task.id)
            self._witnessed.add(container.container_id)
            self._on_event("restart" if task.state not in (ASSIGNED,) else "start")
            self._report(report_for(self.node_id, task, container), out)

    def _prepare(self, task: Task, out: _Outcome) -> StartExtras | None:
        """The task's files, secret environment and pull credentials (``task_inputs.py``); None when
        it cannot start: it waits (the cluster lacks something) or fails (this node does)."""
        if self._inputs is None:
            return StartExtras()
        try:
            prepared = self._inputs.prepare(task)
        except (RuntimeFailure, OSError) as exc:
            prepared = Blocked(f"cannot write the task's secret and config files: {exc}")
        if isinstance(prepared, StartExtras):
            return prepared
        if prepared.waits:
            self._wait(task, prepared.reason, out)
        else:
            out.errors.append(f"start {task.id}: {prepared.reason}")
            self._report(Report(task.id, self.node_id, task.generation, FAILED, reason=prepared.reason), out)
        return None

    def _release(self, task: Task) -> None:
        if self._inputs is not None:
            self._inputs.release(task.id, task.generation)

    def _wait(self, task: Task, reason: str, out: _Outcome) -> None:
        """Say once (not every pass) why ``task`` waits on this node; it is tried again next pass."""
        out.errors.append(f"start {task.id}: {reason}")
        if task.reason == reason:
            return
        older, _ = self._store.read(lambda m: m.log_version() < SECRETS_LOG_VERSION)
        if older:  # an older node would refuse the report: the reason stays in this node's log
            return
        command = ReportTaskWaiting(request_id=uuid.uuid4().hex, task_id=task.id, node_id=self.node_id,
                                    generation=task.generation, reason=reason)
        try:
            result = self._store.submit(command, self._write_timeout)
        except StoreError as exc:
            out.errors.append(f"report {task.id} waiting: {exc}")
            return
        if isinstance(result, Refused):  # the task moved on meanwhile: the next pass sees it
            out.errors.append(f"report {task.id} waiting refused: {result.detail}")

    def _report(self, report: Report, out: _Outcome) -> None:
        # A fresh request id: a retried write is not applied twice, yet the same
        # report sent again on a later pass (the state changed meanwhile) still counts.
        try:
            result = self._store.submit(report.command(uuid.uuid4().hex), self._write_timeout)
        except StoreError as exc:  # NoLeader/WriteTimeout: retried next pass
            out.errors.append(f"report {report.task_id} {report.state}: {exc}")
            return
        if isinstance(result, Refused):
            out.errors.append(f"report {report.task_id} {report.state} refused: {result.detail}")
        else:
            out.reported.append(f"{report.task_id} {report.state}")
            if report.state == FAILED:
                self._on_event("failure")

    def run_forever(self, stop_event: threading.Event) -> None:
        """Pass after pass until ``stop_event`` (:func:`orion.loop.run_loop`): at once
        when the store changes, else every ``interval`` (which catches changes outside
        Orion, like a container that died or was removed by hand)."""
        last_desired: tuple | None = None
        last_pass = float("-inf")

        def one_pass() -> PassResult[None]:
            nonlocal last_desired, last_pass
            desired = self._desired_fingerprint()
            exited = self._exited.is_set()
            if not exited and self.may_skip(desired == last_desired, time.monotonic() - last_pass):
                return SKIPPED
            self._exited.clear()
            last_desired, last_pass = desired, time.monotonic()
            return self.run_once()

        self._wake.set()  # the first pass at once: registration already caught this replica up
        run_loop(f"reconcile {self.node_id}", log, self._wake, self._interval, stop_event, one_pass)

    def may_skip(self, unchanged: bool, since_last_pass: float) -> bool:
        """Whether a wake may go without a pass before the period is due. Every commit
        anywhere wakes us; most do not concern this node, and listing the engine costs far
        more than reading the replica: skip while this node's desired set is unchanged. An
        engine that did not answer is asked again when the period is due, not after every
        commit: a stream of placements to this node would cost a failed connection each."""
        return since_last_pass < self._interval and (unchanged or self.engine_silent)

    def _desired_fingerprint(self) -> tuple:
        """What this node is asked to run (cheap: the replica, no engine). The task values
        themselves: a task that changed is a new value, and comparing an unchanged tuple with
        the last one only compares identities, so a wake that does not concern this node costs
        little however many tasks it runs."""
        desired, _ = self._store.read(lambda m: tuple(m.tasks_on(self.node_id)))
        return desired
