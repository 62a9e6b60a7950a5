"""A fake service for the deployment planner: a task table, a clock and replicas that behave.

Each :meth:`RolloutSim.step` is one leader pass: run :func:`deployment.plan` on
the table, apply what it decided (as the state machine would: a start is a
pending replica, a stop is a replica stopping), then let the world move on by
``dt`` seconds: stopping replicas stop, pending ones start (if their static
port is free on some node), running ones turn healthy (or not) as their
version's behaviour says. A revert is applied as the wiring will: the stable
version's spec declared again as a new version, replicas whose spec matches it
relabelled in place, and a rollback deployment. Each step prints one line.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from orion.control import deployment as dp
from orion.domain.model import DESIRED_STOP, FAILED, PENDING, RUNNING, STOPPING
from orion.domain.service import HEALTHY, STARTING, UNHEALTHY, UpdatePolicy

SERVICE = "web"


@dataclass(frozen=True)
class Behaviour:
    """How replicas of one version act once running."""

    image: str
    healthy_after: float | None = 0.0  # None: never healthy
    unhealthy_after: float | None = None
    exits_after: float | None = None


_MARKS = {PENDING: ".", STOPPING: "_", FAILED: "x"}


class RolloutSim:
    def __init__(self, count: int, update: UpdatePolicy, *, static_ports: bool = False,
                 nodes: int | None = None, dt: float = 5.0) -> None:
        self.count = count
        self.update = update
        self.static_ports = static_ports
        self.nodes = nodes if nodes is not None else count
        self.dt = dt
        self.now = 0.0
        self.versions: dict[int, Behaviour] = {}
        self.table: dict[str, dp.Replica] = {}
        self.running_since: dict[str, float] = {}
        self.created: list[str] = []
        self.deployment: dp.Deployment | None = None
        self.history: list[dp.Deployment] = []
        self.stable: int | None = None
        self.lines: list[str] = []

    # -- declaring ---------------------------------------------------------------------------
    def declare(self, behaviour: Behaviour, rollback: bool = False, count: int | None = None) -> int:
        """A new version; its deployment starts now (the previous one, if running, is cancelled)."""
        self.count = count if count is not None else self.count
        version = max(self.versions, default=0) + 1
        self.versions[version] = behaviour
        for rid, r in self.table.items():  # spec_diff says "in place": relabel
            if r.live and self.versions[r.version] == behaviour:
                self.table[rid] = replace(r, version=version)
        seq = self.deployment.seq + 1 if self.deployment else 1
        if self.deployment:
            self.history.append(self.deployment.superseded(version))
        self.deployment = dp.Deployment(SERVICE, seq, version, self.now,
                                        revert_to=None if rollback else self.stable, rollback=rollback)
        return version

    # -- one leader pass ---------------------------------------------------------------------
    def view(self) -> dp.RolloutView:
        assert self.deployment is not None
        return dp.RolloutView(self.deployment, self.count, self.update, tuple(self.table.values()),
                              self.static_ports)

    def apply(self, plan: dp.DeploymentPlan) -> None:
        """What the leader commits: starts, stops and the deployment's new state, in one command."""
        for s in plan.stop:
            r = self.table[s.id]
            self.table[s.id] = replace(r, desired=DESIRED_STOP, state=STOPPING)
        for s in plan.start:
            assert s.id not in self.created, f"{s.id} started twice"
            self.created.append(s.id)
            self.table[s.id] = dp.Replica(s.id, s.slot, s.version, plan.deployment.seq, PENDING,
                                          created_at=self.now)
        self.deployment = plan.deployment
        if plan.deployment.state == dp.SUCCESSFUL:
            self.stable = plan.deployment.version
        if plan.revert_to is not None:
            self.history.append(plan.deployment)
            self.declare(self.versions[plan.revert_to], rollback=True)

    def step(self) -> dp.DeploymentPlan:
        """One pass, then the world moves on by ``dt``."""
        plan = self.decide()
        self.tick()
        return plan

    def tick(self) -> None:
        self.world()
        self.now += self.dt

    def decide(self) -> dp.DeploymentPlan:
        """One leader pass: plan, commit, print the line."""
        before = self.render()
        plan = dp.plan(self.view(), self.now)
        self.apply(plan)
        decided = [f"+{s.id}" for s in plan.start] + [f"-{s.id}" for s in plan.stop]
        self.lines.append(f"t={self.now:<4g}{plan.deployment.state:<11}{before:<36}{' '.join(decided) or '.'}")
        if plan.revert_to is not None:
            self.lines.append(f"      revert to v{plan.revert_to}: declared again as v{self.deployment.version}, "
                              f"deployment {self.deployment.id}")
        return plan

    def run(self, steps: int = 40) -> list[str]:
        for _ in range(steps):
            self.step()
            if self.deployment.state != dp.RUNNING_DEPLOYMENT and not self.moving():
                break
        return self.lines

    def moving(self) -> bool:
        return any(r.state in (PENDING, STOPPING) for r in self.table.values())

    # -- the world -----------------------------------------------------------------------------
    def world(self) -> None:
        holders = sum(1 for r in self.table.values() if r.state != PENDING)
        for rid, r in list(self.table.items()):
            if r.state == STOPPING:
                del self.table[rid]
        for rid, r in sorted(self.table.items()):
            b = self.versions[r.version]
            if r.state == PENDING:
                if self.static_ports and holders >= self.nodes:
                    continue  # every node's port is taken
                holders += 1
                self.table[rid] = replace(r, state=RUNNING, health=STARTING)
                self.running_since[rid] = self.now
                continue
            if r.state != RUNNING:
                continue
            up = self.now - self.running_since[rid]
            if b.exits_after is not None and up >= b.exits_after:
                self.table[rid] = replace(r, state=FAILED, health=STARTING, healthy_since=None)
            elif b.unhealthy_after is not None and up >= b.unhealthy_after:
                self.table[rid] = replace(r, health=UNHEALTHY, healthy_since=None)
            elif r.health == STARTING and b.healthy_after is not None and up >= b.healthy_after:
                self.table[rid] = replace(r, health=HEALTHY, healthy_since=self.now)

    def seed(self, behaviour: Behaviour) -> None:
        """``count`` healthy replicas of a first version, its deployment successful long ago."""
        version = self.declare(behaviour)
        for slot in range(self.count):
            rid = self.deployment.replica_id(slot)
            self.created.append(rid)
            self.table[rid] = dp.Replica(rid, slot, version, self.deployment.seq, RUNNING, health=HEALTHY,
                                         healthy_since=-1000.0, created_at=-1000.0)
            self.running_since[rid] = -1000.0
        self.deployment = replace(self.deployment, state=dp.SUCCESSFUL)
        self.stable = version

    # -- reading -----------------------------------------------------------------------------
    def render(self) -> str:
        def mark(r: dp.Replica) -> str:
            if r.state in _MARKS:
                return _MARKS[r.state]
            return {HEALTHY: "*", UNHEALTHY: "!"}.get(r.health, "~")
        rows = sorted(self.table.values(), key=lambda r: (r.slot, r.version, r.id))
        return " ".join(f"{r.slot}:v{r.version}{mark(r)}" for r in rows)

    def live_versions(self) -> set[int]:
        return {r.version for r in self.table.values() if r.live}

    def serving_slots(self) -> set[int]:
        return {r.slot for r in self.table.values() if r.serving}
