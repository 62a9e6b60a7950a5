"""The leader's scheduling loop: pending tasks in, one PlaceTasks plan out.

The decision is the pure ``placement.plan``; this module only reads one
snapshot, calls it, and submits the result. The state machine re-checks every
placement on apply, so a plan made from a snapshot that went stale is refused
instead of over-committing (Nomad's plan applier, in the replicated log).

A new task is placed where it is created (:meth:`PlacementLoop.submit_create`):
the node that takes the ``POST`` plans it on its own replica and sends the
placement in the same entry as the create. Nomad runs schedulers on every
server for the same reason; the one plan applier here is the machine's
re-check, so a placement planned on a replica that lagged is refused and the
task simply waits for the leader's pass, as it always did.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from orion.control import placement
from orion.domain.model import ASSIGNED, DESIRED_RUN, RUNNING, NoFitKind, Task
from orion.loop import PassResult, run_loop, wake_on_leader
from orion.state.commands import CreateTask, MarkUnschedulable, PlaceTasks
from orion.state.entries import BATCH_LOG_VERSION, batch_of, results_of
from orion.state.machine import StateMachine
from orion.state.results import Placed, Result
from orion.store.port import Store

log = logging.getLogger("orion.control.placement_loop")

# Placements per Raft command: big enough to amortise a commit over a burst,
# small enough that one entry stays well under pysyncobj's 64 KiB batch.
MAX_BATCH = 200


@dataclass(frozen=True)
class Placements:
    """A placement pass's figures (its ``PassResult.detail``)."""

    placed: int = 0
    refused: int = 0
    unschedulable: int = 0

    def result(self) -> PassResult[Placements]:
        """The pass's result: it acted if it placed, was refused or recorded a no-fit, and then
        runs again at once (more may be pending beyond one batch)."""
        acted = bool(self.placed or self.refused or self.unschedulable)
        sentence = (f"placed {self.placed} task(s), {self.refused} refused as stale, "
                    f"{self.unschedulable} without a fitting node") if acted else "nothing to schedule"
        return PassResult(sentence, acted=acted, again=acted, detail=self)


def _snapshot(machine: StateMachine) -> tuple:
    """Pending tasks and lost ones still wanted (see ``placeable_tasks``), and each one's failures."""
    # Tasks never tried come first: blocked ones (with a no-fit reason) must not
    # fill every batch and starve new submissions behind them.
    placeable = machine.placeable_tasks()
    tasks = ([t for t in placeable if t.reason_kind is None]
             + [t for t in placeable if t.reason_kind is not None])[:MAX_BATCH]
    failures = {t.id: machine.failures(t.id) for t in tasks}
    return tasks, machine.nodes(), machine.usages(), failures, service_spread(machine, tasks)


def service_spread(machine: StateMachine, tasks: list[Task]) -> dict[str, dict[str, int]]:
    """For the services of ``tasks``: how many of their wanted replicas each node holds."""
    spread: dict[str, dict[str, int]] = {}
    for service in {t.service for t in tasks if t.service}:
        counts = spread[service] = {}
        for replica in machine.services.replicas(service):
            if replica.desired == DESIRED_RUN and replica.state in (ASSIGNED, RUNNING) and replica.node_id:
                counts[replica.node_id] = counts.get(replica.node_id, 0) + 1
    return spread


# (failures of a task, wall time now) -> nodes to place it elsewhere than if possible.
AvoidFn = Callable[[tuple[tuple[str, float], ...], float], frozenset[str]]


def plan_with_avoidance(tasks: list, nodes: list, usages: dict, failures: dict, avoid: AvoidFn | None,
                        now: float, spread: dict | None = None) -> tuple[list, dict[str, placement.NoFit]]:
    """``placement.plan``, except a task that keeps failing on some nodes goes elsewhere
    while another node fits (down-ranking); only if none does may it go back there."""
    shunned = {t.id: avoid(failures.get(t.id, ()), now) for t in tasks} if avoid is not None else {}
    plain = [t for t in tasks if not shunned.get(t.id)]
    placements, no_fit = placement.plan(plain, nodes, usages, spread)
    for task in tasks:
        if not shunned.get(task.id):
            continue
        preferred = [n for n in nodes if n.id not in shunned[task.id]]
        got, why = placement.plan([task], preferred, usages, spread)
        if not got:
            got, why = placement.plan([task], nodes, usages, spread)
        placements += got
        no_fit.update(why)
    return placements, no_fit


class PlacementLoop:
    """Runs on every node, acts only while this node is the Raft leader."""

    def __init__(self, store: Store, interval: float, write_timeout: float,
                 observe: Callable[[float, int], None] | None = None,
                 on_no_fit: Callable[[NoFitKind], object] | None = None, avoid: AvoidFn | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._interval = interval
        self._timeout = write_timeout
        self._wake = threading.Event()
        self._observe = observe
        self._on_no_fit = on_no_fit
        self._avoid = avoid
        self._clock = clock
        store.add_listener(wake_on_leader(store, self._wake))

    def run_once(self) -> PassResult[Placements]:
        if not self._store.is_leader():
            return Placements().result()
        started = time.perf_counter()
        (pending, nodes, usages, failures, spread), _ = self._store.read(_snapshot)
        if not pending:
            return Placements().result()
        placements, no_fit = plan_with_avoidance(pending, nodes, usages, failures, self._avoid, self._clock(),
                                                 spread)
        placed = refused = 0
        if placements:
            result = self._store.submit(
                PlaceTasks(request_id=uuid.uuid4().hex, placements=tuple(placements)), self._timeout)
            if isinstance(result, Placed):
                placed, refused = len(result.placed), len(result.refused)
            if self._observe is not None:
                self._observe(time.perf_counter() - started, placed)
        by_id = {t.id: t for t in pending}
        unschedulable = 0
        for task_id, why in no_fit.items():
            if self._on_no_fit is not None:
                self._on_no_fit(why.kind)
            # Record only a new cause, not new live figures: no log entry per pass. The kind
            # is the whole cause here, as the rest of it quotes the task's own (fixed) spec.
            if by_id[task_id].reason_kind != why.kind:
                self._store.submit(MarkUnschedulable(request_id=uuid.uuid4().hex, task_id=task_id,
                                                     reason=why.sentence, kind=why.kind), self._timeout)
                unschedulable += 1
        return Placements(placed, refused, unschedulable).result()

    def submit_create(self, command: CreateTask) -> Result:
        """Commit ``command`` and its placement in one entry; return the create's result.

        One Raft round instead of two (create, then the leader's pass and its
        PlaceTasks), and no wait for the scheduler thread: the API answers with the
        node as soon as the entry is applied here. Measured in bench/write_path.py.
        Where no node fits, or a node cannot read a batch yet (a rolling upgrade), the task
        is created alone and the leader's pass places it or says why.
        """
        started = time.perf_counter()
        (nodes, usages, log_version), _ = self._store.read(lambda m: (m.nodes(), m.usages(), m.log_version()))
        if log_version < BATCH_LOG_VERSION:  # the leader's pass will plan it: do not plan it twice
            return self._store.submit(command, self._timeout)
        placements, _ = placement.plan([Task(id=command.task_id, spec=command.spec)], nodes, usages)
        if not placements:
            return self._store.submit(command, self._timeout)
        place = PlaceTasks(request_id=uuid.uuid4().hex, placements=tuple(placements))
        result = self._store.submit(batch_of(command, place), self._timeout)
        results = results_of(result, 2)
        if results is None:  # refused whole: a node of a version without batches
            return result
        created, placed = results
        if self._observe is not None:
            self._observe(time.perf_counter() - started, len(placed.placed) if isinstance(placed, Placed) else 0)
        return created

    def run_forever(self, stop: threading.Event) -> None:
        run_loop("scheduler", log, self._wake, self._interval, stop, self.run_once)
