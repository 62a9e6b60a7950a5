"""Drain migrates, it does not cut: Nomad's ``migrate`` block, as a pure planner.

A drained node (``orion node drain``, or an agent leaving on SIGTERM) has status
``left``. For each task it runs, the leader places a replacement elsewhere and
the original keeps running until the replacement reports ``running``; only then
may the old copy stop. In the replicated state that is one field,
``Task.migrating_from`` (the old node and generation): ``MigrateTasks`` sets it
together with the new placement, ``FinishMigration`` clears it, and the old
node's reconciler keeps that container exactly as long as the field names it.

Rules (each a scenario in ``tests/unit/control/test_drain.py``):

* At most ``max_parallel`` tasks of one service (its replicas share a group) are
  migrating at once, like Nomad's ``migrate.max_parallel``, which is per task
  group: a service never has more than that many replicas between two homes,
  while different services drain side by side.
* A migration finishes when its replacement has run for ``min_running`` (Nomad's
  ``migrate.min_healthy_time``: "running" means the container started, not that
  its server listens yet), or when the old copy cannot be kept anyway (its node
  is dead, not ready, or gone from the registry).
* ``deadline`` seconds after the leader first saw the node ``left`` (Nomad's
  drain deadline) the rest is done the old way: tasks not yet migrating are
  marked ``lost`` (a gap: placed again by the scheduler), and the old copies of
  migrations in flight stop. A task that no other node can take (a static port
  taken everywhere, no capacity) waits for that.

What a client sees: with a static host port the service answers on the same
port throughout, first on the old node's address, then on both, then on the
new one. A dynamic port changes with the node: ``GET /tasks/<id>`` shows the
new placement (``assigned``, no port yet) as soon as it is chosen, and the new
port once the replacement runs; the old address keeps answering until then.

Nothing here reads a clock or does I/O: the leader's healing loop passes
``now``, when it first saw each node ``left`` and each replacement running
(``running_clock``; monotonic, its own memory: a new leader starts these
clocks again, like its other clocks).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orion.control import placement
from orion.domain.model import (
    ASSIGNED,
    DESIRED_RUN,
    LOST,
    NODE_DEAD,
    NODE_LEFT,
    RUNNING,
    NodeInfo,
    NodeUsage,
    Task,
)
from orion.domain.replicas import group_of
from orion.state.commands import Command, FinishMigration, MigrateTasks, Placement, ReportTaskState


@dataclass(frozen=True)
class DrainSettings:
    max_parallel: int
    deadline: float
    min_running: float


@dataclass(frozen=True)
class Finish:
    """The old copy of ``task_id`` may stop now."""

    task_id: str
    generation: int
    reason: str


@dataclass(frozen=True)
class Cut:
    """The deadline passed before ``task_id`` could migrate: mark it lost (placed again, with a gap)."""

    task_id: str
    node_id: str
    generation: int


@dataclass(frozen=True)
class Blocked:
    """``task_id`` waits: its service is at ``max_parallel``, or no node can take it."""

    task_id: str
    reason: str


@dataclass(frozen=True)
class DrainPlan:
    migrate: tuple[Placement, ...] = ()
    finish: tuple[Finish, ...] = ()
    cut: tuple[Cut, ...] = ()
    blocked: tuple[Blocked, ...] = ()

    def commands(self) -> list[Command]:
        out: list[Command] = []
        if self.migrate:
            out.append(MigrateTasks(request_id=_rid(), placements=self.migrate))
        out += [FinishMigration(request_id=_rid(), task_id=f.task_id, generation=f.generation, reason=f.reason)
                for f in self.finish]
        out += [ReportTaskState(request_id=_rid(), task_id=c.task_id, node_id=c.node_id, generation=c.generation,
                                state=LOST, reason=f"node {c.node_id} drain deadline passed before it could migrate")
                for c in self.cut]
        return out

    @property
    def sentence(self) -> str:
        parts = []
        if self.migrate:
            parts.append("migrating " + ", ".join(f"{p.task_id} to {p.node_id}" for p in self.migrate))
        if self.finish:
            parts.append("old copies stop: " + ", ".join(f"{f.task_id} ({f.reason})" for f in self.finish))
        if self.cut:
            parts.append("drain deadline passed, marked lost " + ", ".join(c.task_id for c in self.cut))
        return "; ".join(parts) or "nothing to drain"


def _rid() -> str:
    return uuid.uuid4().hex


def running_clock(tasks: Sequence[Task], seen: Mapping[tuple[str, int], float],
                  now: float) -> dict[tuple[str, int], float]:
    """When the leader first saw each migrating replacement running, by (task, generation):
    ``seen`` kept, new ones stamped ``now``, the rest dropped."""
    return {(t.id, t.generation): seen.get((t.id, t.generation), now)
            for t in tasks if t.migrating_from is not None and t.state == RUNNING}


def _finish_reason(task: Task, old: NodeInfo | None, expired: bool, ran_for: float, min_running: float) -> str:
    """Why the old copy of a migrating ``task`` may stop now, or "" to keep it."""
    if task.state == RUNNING and ran_for >= min_running:
        return f"replacement running on {task.node_id}"
    if old is None or old.status == NODE_DEAD or not old.ready:
        return "the old node cannot keep it"
    if expired:
        return "drain deadline passed"
    return ""


def plan(tasks: Sequence[Task], nodes: Sequence[NodeInfo], usages: Mapping[str, NodeUsage], now: float,
         left_since: Mapping[str, float], running_since: Mapping[tuple[str, int], float],
         settings: DrainSettings) -> DrainPlan:
    """This pass's drain decisions. ``left_since[node]``: when the leader first saw it ``left``;
    ``running_since[(task, generation)]``: when it first saw a replacement running
    (``running_clock``). Missing entries count from ``now``."""
    by_id = {n.id: n for n in nodes}
    expired = {n.id for n in nodes if n.status == NODE_LEFT
               and now - left_since.get(n.id, now) >= settings.deadline}
    finish: list[Finish] = []
    in_flight: dict[str, int] = {}
    for task in tasks:
        if task.migrating_from is None or task.desired != DESIRED_RUN:
            continue
        old_id = task.migrating_from.node_id
        ran_for = now - running_since.get((task.id, task.generation), now)
        why = _finish_reason(task, by_id.get(old_id), old_id in expired, ran_for, settings.min_running)
        if why:
            finish.append(Finish(task.id, task.generation, why))
        # Counted until the finish is committed: a slot frees on the next pass, never early.
        in_flight[group_of(task)] = in_flight.get(group_of(task), 0) + 1

    draining = {n.id for n in nodes if n.status == NODE_LEFT and n.ready}
    cut: list[Cut] = []
    candidates: list[Task] = []
    blocked: list[Blocked] = []
    for task in tasks:
        if (task.node_id not in draining or task.state not in (ASSIGNED, RUNNING)
                or task.desired != DESIRED_RUN or task.migrating_from is not None):
            continue
        if task.pin:  # a global service's replica belongs to its node: it stops there (deployment.release)
            continue
        if task.node_id in expired:
            cut.append(Cut(task.id, task.node_id or "", task.generation))
        elif in_flight.get(group_of(task), 0) >= settings.max_parallel:
            blocked.append(Blocked(task.id, f"{group_of(task)} has {settings.max_parallel} migrating already"))
        else:
            in_flight[group_of(task)] = in_flight.get(group_of(task), 0) + 1
            candidates.append(task)
    placements, no_fit = placement.plan(candidates, nodes, usages)
    blocked += [Blocked(task_id, why.sentence) for task_id, why in no_fit.items()]
    return DrainPlan(tuple(placements), tuple(finish), tuple(cut), tuple(blocked))
