"""Service commands (``docs/services.md``): declare, roll back, delete, apply a deployment plan,
report a replica's health. Applied by ``orion/state/services.py``."""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

from orion.domain.model import TaskSpec
from orion.domain.service import ServiceSpec, SlotProgress, StartReplica, StopReplica
from orion.state.commands.base import Command, command, optional


def _no_spec() -> ServiceSpec:
    return ServiceSpec("", TaskSpec(image="", memory=0))


@command
class PutService(Command):
    """Declare a service (``POST /services``, ``PUT /services/<name>``): version 1, or a new
    version and a deployment to roll it out; the same spec again changes nothing.

    ``at`` is the accepting node's wall clock, the deployment's start (the machine has no
    clock). ``create`` (POST) refuses a service that exists instead of updating it.
    """

    TYPE: ClassVar[str] = "put_service"
    spec: ServiceSpec = field(default_factory=_no_spec)
    at: float = 0.0
    create: bool = False


@command
class RollbackService(Command):
    """Declare an earlier version's spec again, as a new version with a rollback deployment.
    ``version`` 0: the last fully healthy version other than the current one."""

    TYPE: ClassVar[str] = "rollback_service"
    name: str = ""
    version: int = optional(0)
    at: float = 0.0


@command
class DeleteService(Command):
    """Remove a service: its replicas stop, its record goes (its deployment numbers stay used)."""

    TYPE: ClassVar[str] = "delete_service"
    name: str = ""


@command
class ApplyDeploymentPlan(Command):
    """One pass of the leader's rolling-update planner (``orion/control/deployment.py``) for one
    service: replicas to create and to stop, the slots' progress, the deployment's new state.

    Refused unless ``seq`` is the service's current deployment and ``step`` the number of plans
    applied to it so far: a plan made on a view that another plan has changed since (an old
    leader's, landing late) is refused, never applied beside it. ``at`` (the leader's clock)
    is the new replicas' creation time, from which their healthy deadline counts.
    """

    TYPE: ClassVar[str] = "apply_deployment_plan"
    service: str = ""
    seq: int = 0
    step: int = 0
    state: str = ""
    reason: str = optional("")
    start: tuple[StartReplica, ...] = optional(())
    stop: tuple[StopReplica, ...] = optional(())
    progress: tuple[SlotProgress, ...] = optional(())
    revert_to: int | None = optional(None)
    at: float = 0.0


@command
class ReportTaskHealth(Command):
    """A node reports a replica's health changed (``orion/node/health.py``): only on change.

    Refused, like a state report, unless ``node_id``/``generation`` are the task's current
    placement: a check of a replaced container says nothing about its successor.
    """

    TYPE: ClassVar[str] = "report_task_health"
    task_id: str = ""
    node_id: str = ""
    generation: int = 0
    status: str = ""
    since: float = 0.0
    output: str = optional("")
