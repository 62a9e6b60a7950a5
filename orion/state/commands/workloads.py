"""The commands of a service's modes (docs/services.md, "Modes"): jobs' runs, cron slots,
redeploys and rebalances. Applied by ``orion/state/jobs.py`` and ``orion/state/service_actions.py``.

They are written only once every node reads them (``WORKLOADS_LOG_VERSION``,
``orion/state/entries.py``): an older replica would refuse them. Every time in them is the
writer's clock (the leader's, or the accepting node's): the machine has none.
"""

from __future__ import annotations

from typing import ClassVar

from orion.state.commands.base import Command, command, optional


@command
class RedeployService(Command):
    """Replace every replica with the update rules, same spec (``orion service redeploy``, Swarm's
    ``--force``): a new version copying the current one, deployed as kind ``redeploy``. For a
    job: run it again now (a run that still goes is cancelled)."""

    TYPE: ClassVar[str] = "redeploy_service"
    name: str = ""
    at: float = 0.0


@command
class RebalanceService(Command):
    """Move the replicas ``moves`` (decided by ``orion/control/rebalance.py``) with the update
    rules: a new version copying the current one, deployed as kind ``rebalance``, that keeps
    every other replica as it is. Refused while a rollout runs or if a move is not a live
    replica of the service."""

    TYPE: ClassVar[str] = "rebalance_service"
    name: str = ""
    moves: tuple[str, ...] = ()
    at: float = 0.0


@command
class ApplyJobPlan(Command):
    """One pass of the run planner (``orion/control/job.py``) for run ``run`` of job ``service``:
    attempts to start (their ids, derived from the run's attempt count) and to stop, the failures
    the leader has now seen (its clock ``at`` starts their backoff), the run's next state.

    Refused unless ``step`` is the job's plan count (a plan on a view another plan changed since
    is refused, never applied beside it) and the run still runs; the machine re-checks that the
    starts keep within ``parallelism`` and ``completions`` and that a final state is true.
    """

    TYPE: ClassVar[str] = "apply_job_plan"
    service: str = ""
    run: int = 0
    step: int = 0
    state: str = ""
    reason: str = optional("")
    start: tuple[str, ...] = optional(())
    stop: tuple[str, ...] = optional(())
    failures_seen: int = optional(0)
    at: float = 0.0


@command
class RunCronSlot(Command):
    """The cron planner's decision (``orion/control/periodic.py``) for scheduled job ``service``:
    slot ``slot`` (a run time, UNIX seconds) is due; ``action`` start, skip or replace.

    Refused unless ``slot`` is later than the last slot recorded for the job: a slot runs once,
    whichever leader decides it and however late its decision lands. The machine re-checks the
    action against the overlap policy and the runs going (a start under ``forbid`` while a
    run goes is refused); a skip is recorded as a run in state ``skipped``.
    """

    TYPE: ClassVar[str] = "run_cron_slot"
    service: str = ""
    slot: float = 0.0
    action: str = ""
    missed: int = optional(0)
    at: float = 0.0
