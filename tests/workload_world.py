"""A fleet for unit tests of the modes: the leader's real loops over one LocalStore, with a
clock the test moves, and nodes played in the open.

The leader's part is the real code: ``PlacementLoop`` (placement.plan), ``DeploymentLoop``
(rollouts, a global service's nodes, rebalance) and ``JobLoop`` (runs and cron slots), each
handed the world's clock as its ``now``. The nodes' part is played by :meth:`WorkloadWorld.step`:
what is assigned starts running (and reports healthy), what is stopping stops, and a job's
attempt that has run ``attempt_seconds`` exits as ``outcome`` says (exit 0 unless told).
Raft itself is not under test; the machine is the real one, so every decision is re-checked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orion.control.deployment_loop import DeploymentLoop
from orion.control.job_loop import JobLoop
from orion.control.placement_loop import PlacementLoop
from orion.domain.model import ASSIGNED, COMPLETED, DESIRED_RUN, FAILED, RUNNING, STOPPING, NodeInfo, Resources, Task
from orion.domain.service import HEALTHY, ServiceSpec
from orion.state.commands import PutService, RegisterNode, ReportTaskHealth, ReportTaskState, SetNodeStatus
from orion.state.results import Result
from orion.store.local import LocalStore

GiB = 1 << 30


def node(node_id: str, mem_gib: int = 8, **labels: str) -> NodeInfo:
    return NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:9000", capacity=Resources(mem_gib * GiB, 4000),
                    labels=tuple(sorted(labels.items())), hostname=f"host-{node_id}", os="linux", arch="x86_64",
                    engine_version="20.10.24+dfsg1")


class WorkloadWorld:
    """Nodes, the leader's loops and a movable clock over one LocalStore."""

    def __init__(self, nodes: list[NodeInfo], now: float = 1_700_000_000.0, store: LocalStore | None = None) -> None:
        self.store = store or LocalStore()
        self.now = now
        for n in nodes:
            self.submit(RegisterNode(node=n))
        clock = self.clock
        self.placement = PlacementLoop(self.store, interval=0.5, write_timeout=5.0, clock=clock)
        self.deployments = DeploymentLoop(self.store, interval=0.5, write_timeout=5.0, clock=clock)
        self.jobs = JobLoop(self.store, interval=0.5, write_timeout=5.0, clock=clock)
        self.attempt_seconds = 5.0
        # task id -> exit: a job's attempt that has run attempt_seconds exits so (True: 0).
        self.outcome: Callable[[Task], bool] = lambda task: True
        self.started: dict[str, float] = {}
        self.log: list[str] = []

    def clock(self) -> float:
        return self.now

    def submit(self, command: Any) -> Result:
        return self.store.submit(command, 1.0)

    def read(self, fn: Callable[[Any], Any]) -> Any:
        return self.store.read(fn)[0]

    def put(self, spec: ServiceSpec) -> Result:
        return self.submit(PutService(spec=spec, at=self.now))

    def tasks(self, service: str) -> list[Task]:
        return self.read(lambda m: m.services.replicas(service))

    def wanted(self, service: str) -> list[Task]:
        """The replicas wanted and not over (what holds a slot or a node)."""
        return [t for t in self.tasks(service) if t.desired == DESIRED_RUN and t.state in (ASSIGNED, RUNNING)]

    def on_nodes(self, service: str) -> dict[str, int]:
        counts: dict[str, int] = {}
        for t in self.wanted(service):
            counts[t.node_id or ""] = counts.get(t.node_id or "", 0) + 1
        return dict(sorted(counts.items()))

    # -- the nodes' part ------------------------------------------------------------------------
    def _play_nodes(self) -> None:
        for task in self.read(lambda m: m.tasks()):
            if task.state == ASSIGNED and task.desired == DESIRED_RUN:
                self.submit(ReportTaskState(task_id=task.id, node_id=task.node_id or "", generation=task.generation,
                                            state=RUNNING, container_id=f"c-{task.id}-{task.generation}"))
                self.started[task.id] = self.now
                if task.service and not task.run:
                    self.submit(ReportTaskHealth(task_id=task.id, node_id=task.node_id or "",
                                                 generation=task.generation, status=HEALTHY, since=self.now))
            elif task.state in (ASSIGNED, STOPPING) and task.desired != DESIRED_RUN:
                self.submit(ReportTaskState(task_id=task.id, node_id=task.node_id or "", generation=task.generation,
                                            state="stopped"))
            elif task.state == RUNNING and task.run and self.now - self.started[task.id] >= self.attempt_seconds:
                ok = self.outcome(task)
                self.submit(ReportTaskState(task_id=task.id, node_id=task.node_id or "", generation=task.generation,
                                            state=COMPLETED if ok else FAILED, exit_code=0 if ok else 1))

    def step(self, seconds: float = 1.0) -> None:
        """One pass of every leader loop, then the nodes act, then the clock moves."""
        for loop in (self.jobs, self.deployments, self.placement):
            done = loop.run_once()
            if done.acted:
                self.log.append(f"t+{self.now:.0f} {done.sentence}")
        self._play_nodes()
        self.now += seconds

    def settle(self, passes: int = 40, seconds: float = 1.0) -> None:
        for _ in range(passes):
            self.step(seconds)

    # -- the fleet changes ----------------------------------------------------------------------
    def join(self, info: NodeInfo) -> None:
        self.submit(RegisterNode(node=info))

    def drain(self, node_id: str) -> None:
        self.submit(SetNodeStatus(node_id=node_id, status="left"))
