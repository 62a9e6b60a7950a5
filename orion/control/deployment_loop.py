"""The leader's deployment loop: each running rollout, one plan, one command.

The decision is the pure ``deployment.plan`` (``orion/control/deployment.py``);
this module reads one view per service from the local replica, calls it with
the leader's clock, and submits what changed as one ``ApplyDeploymentPlan``.
It keeps nothing between passes: the deployment record, its ``step``, the
replicas and their health are all replicated, so a leader elected in the
middle of a rollout decides the same next step, and a plan the old leader sent
that lands late is refused by the state machine as stale (its ``step`` moved
on) instead of being applied beside the new one.

New replicas are pending tasks: the placement loop places them like any task,
the restart policy restarts them; this loop only decides which to create and
which to stop.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence

from orion.control import deployment, rebalance
from orion.domain.model import ASSIGNED, DESIRED_RUN, RUNNING, NodeInfo, NodeUsage, Task
from orion.domain.service import (
    GLOBAL,
    HEALTHY,
    JOB,
    REPLICATED,
    RUNNING_DEPLOYMENT,
    STARTING,
    SUCCESSFUL,
    StartReplica,
    StopReplica,
    eligible,
)
from orion.loop import PassResult, decided_pass, run_loop, wake_on_leader
from orion.state.commands import ApplyDeploymentPlan, Command, RebalanceService
from orion.state.machine import StateMachine
from orion.state.results import Refused
from orion.state.service_records import ServiceRecord
from orion.store.port import Store

log = logging.getLogger("orion.control.deployment_loop")

# Seconds between a pass's end and the next when woken by every apply: the loop's own writes
# (and each replica's placement, start and health report) wake it; a burst needs one pass.
_MIN_GAP = 0.05


def replica_of(task: Task) -> deployment.Replica:
    """A task as the planner sees it: ``health`` "" (not reported since placed) is starting."""
    health = task.health or STARTING
    return deployment.Replica(task.id, task.slot, task.version, task.deployment, task.state, task.desired,
                              health, task.health_since if health == HEALTHY else None, task.created_at, task.pin)


def rollout_view(record: ServiceRecord, replicas: Sequence[Task],
                 nodes: Sequence[NodeInfo] = ()) -> deployment.RolloutView:
    """The planner's input for ``record``'s current deployment. Replicas wanted stopped are left
    out: the planner neither counts nor judges them. A global service's slots are the
    ``nodes`` it is eligible on: those that take replicas now, and those whose replicas are
    kept while they cannot (dead, not ready, restarting)."""
    spec = record.spec
    placeable = kept = None
    if spec.mode == GLOBAL:
        fit = [n for n in nodes if eligible(spec, n)]
        placeable = tuple(n.id for n in fit if n.schedulable)
        kept = tuple(n.id for n in fit if not n.schedulable)
    return deployment.RolloutView(record.deployment, spec.count, spec.update,
                                  tuple(replica_of(t) for t in replicas if t.desired == DESIRED_RUN),
                                  static_ports=bool(spec.static_host_ports), nodes=placeable, kept=kept or (),
                                  step=record.step, max_per_node=spec.task.max_per_node)


def changes(record: ServiceRecord, decided: deployment.DeploymentPlan) -> bool:
    """Is the plan worth a Raft entry: replicas to start or stop, a new state, new progress?"""
    return bool(decided.start or decided.stop or decided.deployment.state != record.deployment.state
                or decided.progress != record.progress)


def command_for(record: ServiceRecord, decided: deployment.DeploymentPlan, now: float) -> ApplyDeploymentPlan:
    dep = decided.deployment
    return ApplyDeploymentPlan(request_id=uuid.uuid4().hex, service=record.name, seq=dep.seq, step=record.step,
                               state=dep.state, reason=dep.reason, start=decided.start, stop=decided.stop,
                               progress=decided.progress, revert_to=decided.revert_to, at=now)


Rollouts = tuple[list[tuple[ServiceRecord, list[Task]]], list[NodeInfo], dict[str, NodeUsage]]


def _rollouts(machine: StateMachine) -> Rollouts:
    """Services with a rollout running, or whose last one succeeded (their slots are kept full),
    the nodes and what they hold. A job has no rollout: its runs are the JobLoop's."""
    services = [(record, machine.services.replicas(record.name)) for record in machine.services.all()
                if record.deployment.state in (RUNNING_DEPLOYMENT, SUCCESSFUL) and record.spec.mode != JOB]
    return services, machine.nodes(), machine.usages()


def refill_command(record: ServiceRecord, starts: tuple[StartReplica, ...], now: float,
                   stops: tuple[StopReplica, ...] = ()) -> ApplyDeploymentPlan:
    """Replacements for emptied slots (and a global service's replicas on nodes it left),
    under the succeeded deployment: nothing else changes."""
    dep = record.deployment
    return ApplyDeploymentPlan(request_id=uuid.uuid4().hex, service=record.name, seq=dep.seq, step=record.step,
                               state=dep.state, reason=dep.reason, start=starts, stop=stops,
                               progress=record.progress, at=now)


def rebalance_command(record: ServiceRecord, replicas: Sequence[Task], nodes: Sequence[NodeInfo],
                      usages: dict[str, NodeUsage], now: float) -> tuple[Command, str] | None:
    """With ``update.rebalance`` on and the rollout over: move replicas where the spread is uneven."""
    if not record.spec.update.rebalance or record.spec.mode != REPLICATED:
        return None
    live = [t for t in replicas if t.desired == DESIRED_RUN and t.state in (ASSIGNED, RUNNING)]
    moves = rebalance.plan(record.spec, live, nodes, usages)
    if not moves.replicas:
        return None
    return RebalanceService(request_id=uuid.uuid4().hex, name=record.name, moves=moves.replicas, at=now), \
        f"rebalance {moves.sentence}"


class DeploymentLoop:
    """Runs on every node, acts only while this node is the Raft leader."""

    def __init__(self, store: Store, interval: float, write_timeout: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._interval = interval
        self._timeout = write_timeout
        self._clock = clock
        self._wake = threading.Event()
        store.add_listener(wake_on_leader(store, self._wake))

    def run_once(self) -> PassResult[tuple[Refused, ...]]:
        if not self._store.is_leader():
            return decided_pass([], [], "nothing to roll out")
        (rollouts, nodes, usages), _ = self._store.read(_rollouts)
        now = self._clock()
        sentences: list[str] = []
        refused: list[Refused] = []
        for record, replicas in rollouts:
            view = rollout_view(record, replicas, nodes)
            if record.deployment.state == SUCCESSFUL:
                starts, stops = deployment.refill(view, record.step), deployment.release(view)
                if not starts and not stops:
                    moved = rebalance_command(record, replicas, nodes, usages, now)
                    if moved is None:
                        continue
                    command, sentence = moved
                else:
                    command = refill_command(record, starts, now, stops)
                    sentence = f"service {record.name}: " + "; ".join(
                        part for part in ("refill " + ", ".join(s.id for s in starts) if starts else "",
                                          "release " + ", ".join(s.id for s in stops) if stops else "") if part)
            else:
                decided = deployment.plan(view, now)
                if not changes(record, decided):
                    continue
                command, sentence = command_for(record, decided, now), decided.sentence
            result = self._store.submit(command, self._timeout)
            if isinstance(result, Refused):
                refused.append(result)
            else:
                sentences.append(sentence)
        return decided_pass(sentences, refused, "nothing to roll out")

    def run_forever(self, stop: threading.Event) -> None:
        run_loop("deployments", log, self._wake, self._interval, stop, self.run_once, min_gap=_MIN_GAP)
