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

from orion.control import deployment
from orion.domain.model import DESIRED_RUN, Task
from orion.domain.service import HEALTHY, RUNNING_DEPLOYMENT, STARTING, SUCCESSFUL, StartReplica
from orion.loop import PassResult, run_loop, wake_on_leader
from orion.state.commands import ApplyDeploymentPlan
from orion.state.machine import StateMachine
from orion.state.results import Refused
from orion.state.services import ServiceRecord
from orion.store.port import Store

log = logging.getLogger("orion.control.deployment_loop")

# Seconds between a pass's end and the next when woken by every apply: the loop's own writes
# (and each replica's placement, start and health report) wake it; a burst needs one pass.
_MIN_GAP = 0.05


def replica_of(task: Task) -> deployment.Replica:
    """A task as the planner sees it: ``health`` "" (not reported since placed) is starting."""
    health = task.health or STARTING
    return deployment.Replica(task.id, task.slot, task.version, task.deployment, task.state, task.desired,
                              health, task.health_since if health == HEALTHY else None, task.created_at)


def rollout_view(record: ServiceRecord, replicas: Sequence[Task]) -> deployment.RolloutView:
    """The planner's input for ``record``'s current deployment. Replicas wanted stopped are left
    out: the planner neither counts nor judges them."""
    spec = record.spec
    return deployment.RolloutView(record.deployment, spec.count, spec.update,
                                  tuple(replica_of(t) for t in replicas if t.desired == DESIRED_RUN),
                                  static_ports=bool(spec.static_host_ports))


def changes(record: ServiceRecord, decided: deployment.DeploymentPlan) -> bool:
    """Is the plan worth a Raft entry: replicas to start or stop, a new state, new progress?"""
    return bool(decided.start or decided.stop or decided.deployment.state != record.deployment.state
                or decided.progress != record.progress)


def command_for(record: ServiceRecord, decided: deployment.DeploymentPlan, now: float) -> ApplyDeploymentPlan:
    dep = decided.deployment
    return ApplyDeploymentPlan(request_id=uuid.uuid4().hex, service=record.name, seq=dep.seq, step=record.step,
                               state=dep.state, reason=dep.reason, start=decided.start, stop=decided.stop,
                               progress=decided.progress, revert_to=decided.revert_to, at=now)


def _rollouts(machine: StateMachine) -> list[tuple[ServiceRecord, list[Task]]]:
    """Services with a rollout running, or whose last one succeeded (their slots are kept full)."""
    return [(record, machine.services.replicas(record.name)) for record in machine.services.all()
            if record.deployment.state in (RUNNING_DEPLOYMENT, SUCCESSFUL)]


def refill_command(record: ServiceRecord, starts: tuple[StartReplica, ...], now: float) -> ApplyDeploymentPlan:
    """Replacements for emptied slots, under the succeeded deployment: nothing else changes."""
    dep = record.deployment
    return ApplyDeploymentPlan(request_id=uuid.uuid4().hex, service=record.name, seq=dep.seq, step=record.step,
                               state=dep.state, reason=dep.reason, start=starts, progress=record.progress, at=now)


def pass_result(sentences: list[str], refused: list[Refused]) -> PassResult[tuple[Refused, ...]]:
    """The plans' sentences (the log lines, what tests read) and the plans refused (``detail``)."""
    parts = sentences + [f"refused: {r}" for r in refused]
    return PassResult("; ".join(parts) or "nothing to roll out", acted=bool(parts), detail=tuple(refused))


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
            return pass_result([], [])
        rollouts, _ = self._store.read(_rollouts)
        now = self._clock()
        sentences: list[str] = []
        refused: list[Refused] = []
        for record, replicas in rollouts:
            view = rollout_view(record, replicas)
            if record.deployment.state == SUCCESSFUL:
                starts = deployment.refill(view, record.step)
                if not starts:
                    continue
                command = refill_command(record, starts, now)
                sentence = f"service {record.name}: refill " + ", ".join(s.id for s in starts)
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
        return pass_result(sentences, refused)

    def run_forever(self, stop: threading.Event) -> None:
        run_loop("deployments", log, self._wake, self._interval, stop, self.run_once, min_gap=_MIN_GAP)
