"""Make a node's containers match what the replicated state says it should run.

Level-triggered: every pass compares the whole desired set (tasks placed on
this node, read from the local replica) with the whole actual set (the
engine's managed containers) and plans what to do. Nothing depends on having
seen an earlier event, so a missed wake-up, an agent restart or a container
someone removed by hand are all repaired by the next pass.

:func:`plan` is the pure core (values in, actions out; no clock, no I/O).
:class:`orion.node.reconcile_loop.ReconcileLoop` is the thin runner that executes it.

Adoption: containers carry task id and generation in labels, so after a
restart a running container of the task's current generation is reported
(``running``) rather than started a second time.

Migration (a drain, ``orion/control/drain.py``): a task that moves away keeps
naming this node in ``migrating_from`` until its replacement runs elsewhere;
while it does, its container of that generation here is kept running, neither
reported (the task's reports are the new node's now) nor started if it was not
already. Once the leader commits the migration finished, the task is no longer
this node's and the container is stopped like any stale one (generation
fencing: the same rule that stops what a partitioned or engine-less node ran
after its tasks were placed elsewhere).

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

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from orion.domain.model import (
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
)
from orion.state.commands import ReportTaskState

# -- actions: what the planner decides ----------------------------------------------


@dataclass(frozen=True)
class Start:
    """Create and start the task's container (its generation names it)."""

    task: Task


@dataclass(frozen=True)
class Stop:
    """Stop a container that must not run any more, within ``grace`` seconds (the container's own
    ``stopGracePeriod``; None: the node's ``stop_timeout``) before SIGKILL."""

    container_id: str
    task_id: str
    generation: int
    reason: str
    grace: float | None = None


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
    ip: str | None = None  # the container's overlay address, when it has one

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
            ip=self.ip,
        )


Action = Start | Stop | Remove | Report

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
    return Report(task.id, node_id, task.generation, RUNNING, container.container_id, container.host_ports,
                  ip=container.ip or None)


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
            and task.host_ports == container.host_ports and task.ip == (container.ip or None))


def plan(
    node_id: str,
    desired: Sequence[Task],
    actual: Sequence[ContainerState],
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
    # Old copies kept while their task migrates away: task id -> generation kept.
    kept = {t.id: t.migrating_from.generation for t in desired
            if t.migrating_from is not None and t.migrating_from.node_id == node_id and t.id not in here}
    stops: list[Action] = []
    removes: list[Action] = []
    reports: list[Action] = []
    starts: list[Action] = []
    current: set[str] = set()  # tasks with a container of their current generation

    def retire(c: ContainerState, reason: str) -> None:
        if c.live:
            stops.append(Stop(c.container_id, c.task_id, c.generation, reason, c.stop_grace))
        removes.append(Remove(c.container_id, c.task_id, c.generation))

    for c in sorted(actual, key=lambda c: (c.task_id, c.generation, c.container_id)):
        if c.status == REMOVING_STATUS:
            continue  # the engine is already deleting it
        task = here.get(c.task_id)
        if task is None and c.live and kept.get(c.task_id) == c.generation:
            continue  # the original of a migration: runs until its replacement does
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
                # Restarting is the leader's decision (restart policy, orion/control/restart.py):
                # the node only says what happened.
                if died_with_engine(c, witnessed):
                    reports.append(lost_report(node_id, task, c))
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
