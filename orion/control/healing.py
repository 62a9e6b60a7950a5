"""The leader's healing decisions, as a pure function of one state snapshot.

Node loss: a node whose registry status is ``dead`` (gossip, or the fallback
liveness in ``orion/membership/liveness.py``), or that reports itself not ready (its
container engine stopped answering, ``orion/node/readiness.py``), has every task
it still holds marked ``lost`` — one
``ReportTaskState(state=lost)`` per task, checked by the state machine against
the task's node and generation like any report. A lost task that is still
wanted is placeable again (``StateMachine.placeable_tasks``): the leader's
scheduler places it like a pending one, in one ``PlaceTasks`` per plan, with
capacity, selectors and host ports re-checked on apply. Placement bumps the
generation, which fences the old node: its reports are refused, and when it
comes back its reconciler no longer finds the task among its own and stops the
stale container. A ``suspect`` node is not touched: suspicion is gossip's
business (Lifeguard), and it may still be alive. Nor is a ``restarting`` one:
its agent announced a restart and its containers keep running; the liveness
rule (``orion/membership/liveness.py``) makes it ``dead`` if it stays away past
``restart_grace``, and only then are its tasks moved. A ``left`` node (drained,
or shut down with ``leave_on_terminate``) is not cut here either: its tasks
migrate, each replacement running before the original stops
(``orion/control/drain.py``).

Restarts: a task that failed (or finished, for ``always``) is handed to
``orion.control.restart.decide``; a due restart is one ``RestartTask`` command.
A restart due on a ``restarting`` node waits for its agent to be back (or
declared dead) rather than sending the task elsewhere for a restart of seconds.

Nothing here reads a clock or does I/O: ``now`` and the snapshot come in, a
list of commands and a sentence (the log line, and what tests read) go out.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orion.control import restart
from orion.domain.model import (
    ASSIGNED,
    COMPLETED,
    DESIRED_RUN,
    FAILED,
    LOST,
    NODE_DEAD,
    NODE_RESTARTING,
    RUNNING,
    STOPPING,
    NodeInfo,
    Task,
)
from orion.state.commands import Command, ReportTaskState, RestartTask

# Task states that still hold a node: these die with it.
_ON_NODE = (ASSIGNED, RUNNING, STOPPING)
# Why a wanted task goes back to the scheduler (the orion_reschedules_total causes):
# its node died or its engine stopped answering (healing marks it lost), its node left
# (drain migrates it, orion/control/drain.py), or its restart policy sends it elsewhere.
CAUSE_NODE_DEAD = "node_dead"
CAUSE_NODE_NOT_READY = "node_not_ready"
CAUSE_NODE_LEFT = "node_left"
CAUSE_CONTAINER_FAILED = "container_failed"
RESCHEDULE_CAUSES = (CAUSE_NODE_DEAD, CAUSE_NODE_NOT_READY, CAUSE_NODE_LEFT, CAUSE_CONTAINER_FAILED)


def why_lost(node: NodeInfo) -> str:
    """Why ``node`` can no longer run its tasks (they are to be marked lost), or ""."""
    if node.status == NODE_DEAD:
        return f"node {node.id} is dead"
    if not node.ready:
        return f"node {node.id} is not ready: {node.ready_reason or 'its engine does not answer'}"
    return ""


@dataclass(frozen=True)
class HealView:
    """What one healing pass looks at, read at one moment from the local replica."""

    tasks: Sequence[Task]
    nodes: Sequence[NodeInfo]
    failures: Mapping[str, tuple[tuple[str, float], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class HealPlan:
    commands: tuple[Command, ...]
    lost: tuple[str, ...]
    restarted: tuple[str, ...]
    rescheduled: tuple[str, ...]
    # Earliest moment a waiting restart becomes due (None: nothing waits).
    next_due: float | None = None
    # task id -> RESCHEDULE_CAUSES entry, for each command that hands a wanted task back
    # to the scheduler (a lost task that should stop is not placed again, so not counted).
    causes: Mapping[str, str] = field(default_factory=dict)

    @property
    def sentence(self) -> str:
        parts = []
        if self.lost:
            parts.append("marked lost " + _ids(self.lost))
        if self.restarted:
            parts.append("restarting " + _ids(self.restarted))
        if self.rescheduled:
            parts.append("rescheduling " + _ids(self.rescheduled))
        return "; ".join(parts) or "nothing to heal"


def _ids(ids: Sequence[str], shown: int = 5) -> str:
    """A log line stays a line: the first few ids, then how many more."""
    text = ", ".join(ids[:shown])
    return text + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def _rid() -> str:
    return uuid.uuid4().hex


def lost_commands(view: HealView) -> list[ReportTaskState]:
    """Every task still held by a dead or not-ready node, marked lost."""
    gone = {n.id: why for n in view.nodes if (why := why_lost(n))}
    out = []
    for task in view.tasks:
        if task.node_id in gone and task.state in _ON_NODE:
            out.append(ReportTaskState(request_id=_rid(), task_id=task.id, node_id=task.node_id,
                                       generation=task.generation, state=LOST, reason=gone[task.node_id]))
    return out


def plan(view: HealView, now: float, ended_at: Mapping[tuple[str, int], float],
         cfg: restart.RestartConfig) -> HealPlan:
    """Decide this pass: lost tasks first, then due restarts.

    ``ended_at[(task id, generation)]`` is when the leader first saw that
    generation fail or finish (wall clock); missing means ``now``.
    """
    lost_cmds = lost_commands(view)
    commands: list[Command] = list(lost_cmds)
    lost = tuple(c.task_id for c in lost_cmds)
    dead = {n.id for n in view.nodes if n.status == NODE_DEAD}
    wanted = {t.id for t in view.tasks if t.desired == DESIRED_RUN}
    causes = {c.task_id: CAUSE_NODE_DEAD if c.node_id in dead else CAUSE_NODE_NOT_READY
              for c in lost_cmds if c.task_id in wanted}
    alive = {n.id for n in view.nodes if n.schedulable}
    restarting = {n.id for n in view.nodes if n.status == NODE_RESTARTING}
    restarted: list[str] = []
    rescheduled: list[str] = []
    next_due: float | None = None
    for task in view.tasks:
        if task.desired != DESIRED_RUN or task.state not in (FAILED, COMPLETED):
            continue
        decision = restart.decide(task, view.failures.get(task.id, ()),
                                  ended_at.get((task.id, task.generation), now), now, cfg)
        if isinstance(decision, restart.Wait):
            next_due = decision.until if next_due is None else min(next_due, decision.until)
            continue
        if isinstance(decision, restart.RestartHere) and decision.node_id in restarting:
            continue  # its agent is away for seconds: restart it there once it is back
        if isinstance(decision, restart.RestartHere) and decision.node_id in alive:
            commands.append(RestartTask(request_id=_rid(), task_id=task.id, generation=task.generation,
                                        node_id=decision.node_id, at=now, reason=decision.reason))
            restarted.append(task.id)
        elif isinstance(decision, restart.RestartHere | restart.Reschedule):
            reason = decision.reason if isinstance(decision, restart.Reschedule) else \
                f"rescheduling: node {task.node_id} is not alive"
            commands.append(RestartTask(request_id=_rid(), task_id=task.id, generation=task.generation,
                                        node_id="", at=now, reason=reason))
            rescheduled.append(task.id)
            causes[task.id] = CAUSE_CONTAINER_FAILED
    return HealPlan(tuple(commands), lost, tuple(restarted), tuple(rescheduled), next_due, causes)
