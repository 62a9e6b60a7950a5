"""Task commands: create, place, migrate, report, stop, restart, scale. Applied by
``orion/state/machine.py`` (scaling a group: ``orion/state/services.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from orion.domain.model import NoFitKind, TaskSpec
from orion.state.commands.base import Command, command, optional


@command
class CreateTask(Command):
    """A new task, pending until the leader places it.

    ``idempotency_key``: a second CreateTask with the same key returns the task
    the first one created (HTTP ``Idempotency-Key``).
    """

    TYPE: ClassVar[str] = "create_task"
    task_id: str = ""
    spec: TaskSpec = field(default_factory=lambda: TaskSpec(image="", memory=0))
    idempotency_key: str = optional("")


@dataclass(frozen=True)
class Placement:
    """One scheduling decision: put ``task_id`` on ``node_id``.

    ``generation`` is the task's generation the decision was made against; the
    state machine refuses it if the task moved on since (a stale plan).
    """

    task_id: str
    node_id: str
    generation: int

    def to_dict(self) -> dict[str, Any]:
        return {"task_id": self.task_id, "node_id": self.node_id, "generation": self.generation}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Placement:
        return cls(d["task_id"], d["node_id"], int(d["generation"]))


@command
class PlaceTasks(Command):
    """The leader's plan: a batch of placements, each re-checked on apply."""

    TYPE: ClassVar[str] = "place_tasks"
    placements: tuple[Placement, ...] = ()


@command
class MigrateTasks(Command):
    """The drain planner's decision: place replacements, keeping each old copy running.

    Each placement must be for a task that runs (or is assigned) at ``generation`` on
    a node that is draining; it is re-checked like a ``PlaceTasks`` placement. The
    task moves to the new node as a new generation and remembers its old placement
    (``Task.migrating_from``) until a ``FinishMigration``.
    """

    TYPE: ClassVar[str] = "migrate_tasks"
    placements: tuple[Placement, ...] = ()


@command
class FinishMigration(Command):
    """The old copy of a migrating task may stop now: its replacement at ``generation``
    runs, or the drain deadline passed. Refused if the task moved on meanwhile."""

    TYPE: ClassVar[str] = "finish_migration"
    task_id: str = ""
    generation: int = 0
    reason: str = optional("")


@command
class MarkUnschedulable(Command):
    """The scheduler found no node; record why: ``kind`` for code, ``reason`` for people.

    ``kind`` was added without a version bump: an older node ignores the field and
    still records the sentence, and an entry an older node wrote reads as OTHER.
    """

    TYPE: ClassVar[str] = "mark_unschedulable"
    task_id: str = ""
    reason: str = ""
    kind: NoFitKind = optional(NoFitKind.OTHER)


@command
class ReportTaskState(Command):
    """A node reports what its container is doing.

    Refused when ``node_id``/``generation`` no longer match the task: a report
    from a placement that has been replaced must not overwrite the new one.
    """

    TYPE: ClassVar[str] = "report_task_state"
    task_id: str = ""
    node_id: str = ""
    generation: int = 0
    state: str = ""
    container_id: str | None = optional(None)
    host_ports: tuple[tuple[str, int], ...] = optional(())
    exit_code: int | None = optional(None)
    reason: str = optional("")
    # The container's overlay address (log format 4): recorded once the network is set.
    ip: str | None = optional(None, when_set=True)


@command
class StopTask(Command):
    """The user wants the task stopped (DELETE /tasks/<id>)."""

    TYPE: ClassVar[str] = "stop_task"
    task_id: str = ""


@command
class RestartTask(Command):
    """The leader's restart-policy decision for a failed (or finished) task.

    ``node_id`` set: start it again on that node (its own, a local restart) as a
    new generation; empty: send it back to pending so the scheduler places it
    elsewhere. ``at`` is the leader's wall clock, carried in the log so every
    replica records the same failure time (the machine itself has no clock).
    Refused unless the task is still at ``generation`` and still failed/finished.
    """

    TYPE: ClassVar[str] = "restart_task"
    task_id: str = ""
    generation: int = 0
    node_id: str = optional("")
    at: float = optional(0.0)
    reason: str = optional("")


@command
class ScaleTask(Command):
    """Set the size of the service ``task_id`` belongs to (PATCH /tasks/<id>).

    ``new_task_ids`` are ids for members to add (the writer draws them, so the
    log stays deterministic); surplus members are stopped newest first.
    """

    TYPE: ClassVar[str] = "scale_task"
    task_id: str = ""
    count: int = 1
    new_task_ids: tuple[str, ...] = optional(())
