"""Redeploy and rebalance inside the replicated state machine: replace replicas, same spec.

Split from ``orion/state/services.py``, whose ``declare_again`` they use: each declares the
current spec again as a new version (``copy_of`` the current one) whose deployment has a
``kind``, so the rolling-update planner replaces replicas with the service's update rules
(``orion/control/deployment.py``) and the history reads what happened. A redeploy relabels
nothing, so every replica is replaced (Swarm's ``--force``); a rebalance relabels all but the
moves, so only those are replaced, and the placement planner's spread puts their
successors on the nodes with the fewest replicas. A job's redeploy is a new run instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from orion.domain.model import Task
from orion.domain.replicas import holds_slot
from orion.domain.service import JOB, REBALANCE, REDEPLOY, REPLICATED, RUNNING_DEPLOYMENT
from orion.state.commands import RebalanceService, RedeployService, handles
from orion.state.jobs import JobRegistry
from orion.state.results import RefusalKind, Refused, ServiceDeclared
from orion.state.services import ServiceRegistry


class ServiceActions:
    """The handlers of ``RedeployService`` and ``RebalanceService``."""

    def __init__(self, services: ServiceRegistry, jobs: JobRegistry, tasks: Callable[[], list[Task]]) -> None:
        self._services, self._jobs, self._tasks = services, jobs, tasks

    @handles(RedeployService)
    def redeploy(self, cmd: RedeployService, index: int) -> ServiceDeclared | Refused:
        record = self._services.get(cmd.name)
        if record is None:
            return Refused(RefusalKind.NOT_FOUND, f"no service {cmd.name}")
        if record.spec.mode == JOB:
            run = self._jobs.redeployed(record.spec, record.current.version, cmd.at, index)
            return ServiceDeclared(cmd.name, record.current.version, True, run=run)
        return self._services.declare_again(cmd.name, cmd.at, index, REDEPLOY)

    @handles(RebalanceService)
    def rebalance(self, cmd: RebalanceService, index: int) -> ServiceDeclared | Refused:
        record = self._services.get(cmd.name)
        if record is None:
            return Refused(RefusalKind.NOT_FOUND, f"no service {cmd.name}")
        if record.spec.mode != REPLICATED:
            return Refused(RefusalKind.WRONG_STATE,
                           f"{cmd.name} is a {record.spec.mode} service: only replicated services rebalance")
        if record.deployment.state == RUNNING_DEPLOYMENT:
            return Refused(RefusalKind.WRONG_STATE,
                           f"{record.deployment.id} is still rolling out; rebalance once it ends")
        live = {t.id for t in self._tasks() if t.service == cmd.name and holds_slot(t.desired, t.state)}
        strays = sorted(set(cmd.moves) - live)
        if not cmd.moves or strays:
            return Refused(RefusalKind.NOT_FOUND if strays else RefusalKind.INVALID,
                           f"{', '.join(strays) or 'no replica'}: not a running replica of {cmd.name} to move")
        result = self._services.declare_again(cmd.name, cmd.at, index, REBALANCE, frozenset(cmd.moves))
        return replace(result, moves=tuple(sorted(cmd.moves)))
