"""Drain migrates, it does not cut: the drain planner over a real state machine.

Each scenario applies commands to a :class:`StateMachine` as the Raft log
would, runs drain passes (pure: snapshot, ``now`` -> plan), applies what they
decided, and plays the new nodes reporting their replacements running. The
transcript is the planner's sentences, read like the leader's log. Then a
property over random drains: never more than ``max_parallel`` of a service
migrating at once, and an original never stopped before its replacement runs
unless the deadline passed.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from parts import drain_settings
from result_kit import accepted, refused

from orion.control import drain
from orion.control.placement import plan as place
from orion.domain.model import (
    ASSIGNED,
    LOST,
    NODE_DEAD,
    NODE_LEFT,
    RUNNING,
    NodeInfo,
    PortBinding,
    PriorPlacement,
    Resources,
    TaskSpec,
)
from orion.state.commands import (
    CreateTask,
    FinishMigration,
    MigrateTasks,
    Placement,
    PlaceTasks,
    RegisterNode,
    ReportTaskState,
    SetNodeReadiness,
    SetNodeStatus,
    StopTask,
)
from orion.state.machine import StateMachine
from orion.state.results import RefusalKind, Refused, Result

GiB = 1 << 30
# Most scenarios are about order, not timing: a replacement counts as soon as it runs.
SETTINGS = drain_settings(min_running=0.0)


class Drain:
    """A cluster driven the way the leader's healing loop drives the drain planner."""

    def __init__(self, *nodes: str, mem_gib: int = 8, settings: drain.DrainSettings = SETTINGS) -> None:
        self.m = StateMachine()
        self.index = 0
        self.settings = settings
        self.left_since: dict[str, float] = {}
        self.running_since: dict[tuple[str, int], float] = {}
        self.finished: list[tuple[str, bool, float]] = []  # (task, replacement was running, at)
        for n in nodes:
            self.apply(RegisterNode(node=NodeInfo(n, f"{n}:8000", f"{n}:7000",
                                                  capacity=Resources(mem_gib * GiB, 4000))))

    def apply(self, command) -> Result:
        self.index += 1
        return self.m.apply(command, self.index)

    def submit(self, task_id: str, group: str = "", host_port: int | None = None, mem_gib: float = 1) -> None:
        ports = (PortBinding(80, "tcp", host_port),) if host_port else ()
        spec = TaskSpec("img", int(mem_gib * GiB), 100, ports=ports, group=group)
        accepted(self.apply(CreateTask(task_id=task_id, spec=spec)))

    def on(self, task_id: str, node: str) -> None:
        """Place and run ``task_id`` on ``node``."""
        t = self.m.task(task_id)
        assert self.apply(PlaceTasks(placements=(Placement(task_id, node, t.generation),))).placed
        self.run(task_id)

    def run(self, task_id: str) -> None:
        """The task's (new) node reports its container running."""
        t = self.m.task(task_id)
        accepted(self.apply(ReportTaskState(task_id=t.id, node_id=t.node_id, generation=t.generation, state=RUNNING,
                                            container_id=f"c-{t.id}-{t.generation}")))

    def drain(self, node: str, now: float = 0.0) -> None:
        accepted(self.apply(SetNodeStatus(node_id=node, status=NODE_LEFT)))
        self.left_since[node] = now

    def step(self, now: float = 1.0) -> str:
        self.running_since = drain.running_clock(self.m.tasks(), self.running_since, now)
        decided = drain.plan(self.m.tasks(), self.m.nodes(), self.m.usages(), now, self.left_since,
                             self.running_since, self.settings)
        for command in decided.commands():
            if isinstance(command, FinishMigration):
                was_running = self.m.task(command.task_id).state == RUNNING
                if not isinstance(self.apply(command), Refused):
                    self.finished.append((command.task_id, was_running, now))
            else:
                self.apply(command)
        return decided.sentence

    def where(self) -> dict[str, str]:
        """task -> 'node state' (+ ' <- old node' while migrating)."""
        out = {}
        for t in self.m.tasks():
            old = f" <- {t.migrating_from.node_id}" if t.migrating_from else ""
            out[t.id] = f"{t.node_id} {t.state}{old}"
        return out


# -- scenarios ------------------------------------------------------------------------------------


def test_each_replacement_runs_before_its_original_stops_one_replica_of_a_service_at_a_time():
    c = Drain("n1", "n2")
    for tid in ("web-1", "web-2"):
        c.submit(tid, group="web")
        c.on(tid, "n1")
    c.submit("db")
    c.on("db", "n1")
    c.drain("n1")
    log = [c.step()]
    assert c.where() == {"web-1": "n2 assigned <- n1", "web-2": "n1 running", "db": "n2 assigned <- n1"}
    assert c.m.tasks_on("n1") == [c.m.task(t) for t in ("web-1", "web-2", "db")]  # originals still held
    log.append(c.step())  # nothing runs yet: nothing changes
    c.run("web-1")
    log.append(c.step())
    log.append(c.step())
    c.run("web-2")
    c.run("db")
    log.append(c.step())
    log.append(c.step())
    assert log == [
        "migrating web-1 to n2, db to n2",
        "nothing to drain",
        "old copies stop: web-1 (replacement running on n2)",
        "migrating web-2 to n2",
        "old copies stop: web-2 (replacement running on n2), db (replacement running on n2)",
        "nothing to drain",
    ]
    assert c.m.tasks_on("n1") == [] and all(w == "n2 running" for w in c.where().values())
    assert all(was_running for _, was_running, _ in c.finished)


def test_the_original_stops_only_once_its_replacement_has_run_for_min_running():
    c = Drain("n1", "n2", settings=drain_settings(min_running=3.0))
    c.submit("web")
    c.on("web", "n1")
    c.drain("n1", now=0.0)
    assert c.step(now=0.0) == "migrating web to n2"
    c.run("web")  # started: its server may not listen yet
    assert [c.step(now=t) for t in (1.0, 2.0, 3.9)] == ["nothing to drain"] * 3
    assert c.where() == {"web": "n2 running <- n1"}
    assert c.step(now=4.0) == "old copies stop: web (replacement running on n2)"  # first seen running at 1.0
    assert c.finished == [("web", True, 4.0)]


def test_a_static_port_needs_it_free_on_the_new_node_and_waits_for_the_deadline_otherwise():
    c = Drain("n1", "n2")
    c.submit("blocker", host_port=8080)
    c.on("blocker", "n2")
    c.submit("web", host_port=8080)
    c.on("web", "n1")
    c.drain("n1", now=0.0)
    decided = drain.plan(c.m.tasks(), c.m.nodes(), c.m.usages(), 1.0, c.left_since, {}, SETTINGS)
    assert decided.migrate == () and [b.task_id for b in decided.blocked] == ["web"]
    assert "8080/tcp is taken on every eligible node" in decided.blocked[0].reason
    assert c.step(119.0) == "nothing to drain"
    assert c.step(120.0) == "drain deadline passed, marked lost web"
    assert c.m.task("web").state == LOST
    assert c.m.task("web").reason == "node n1 drain deadline passed before it could migrate"


def test_after_the_deadline_old_copies_of_migrations_in_flight_stop():
    c = Drain("n1", "n2")
    c.submit("slow")
    c.on("slow", "n1")
    c.drain("n1", now=0.0)
    assert c.step(1.0) == "migrating slow to n2"
    assert c.step(60.0) == "nothing to drain"  # the replacement is still pulling its image
    assert c.step(121.0) == "old copies stop: slow (drain deadline passed)"
    assert c.where() == {"slow": "n2 assigned"}
    assert c.finished == [("slow", False, 121.0)]


def test_an_old_copy_whose_node_died_or_lost_its_engine_is_not_waited_for():
    c = Drain("n1", "n2", "n3")
    c.submit("a")
    c.on("a", "n1")
    c.submit("b")
    c.on("b", "n3")
    c.drain("n1")
    c.drain("n3")
    assert c.step() == "migrating a to n2, b to n2"
    c.apply(SetNodeStatus(node_id="n1", status=NODE_DEAD))
    c.apply(SetNodeReadiness(node_id="n3", ready=False, reason="engine down"))
    assert c.step() == "old copies stop: a (the old node cannot keep it), b (the old node cannot keep it)"


def test_a_stopped_task_stops_its_old_copy_too():
    c = Drain("n1", "n2")
    c.submit("a")
    c.on("a", "n1")
    c.drain("n1")
    c.step()
    accepted(c.apply(StopTask(task_id="a")))
    assert c.m.task("a").migrating_from is None and c.m.tasks_on("n1") == []


def test_a_replacement_lost_with_its_node_is_placed_again_while_the_original_keeps_running():
    c = Drain("n1", "n2", "n3")
    c.submit("a")
    c.on("a", "n1")
    c.drain("n1")
    assert c.step() == "migrating a to n2"
    t = c.m.task("a")
    c.apply(ReportTaskState(task_id="a", node_id="n2", generation=t.generation, state=LOST, reason="n2 died"))
    placements, _ = place(c.m.placeable_tasks(), [n for n in c.m.nodes() if n.id == "n3"], c.m.usages())
    c.apply(PlaceTasks(placements=tuple(placements)))
    assert c.where() == {"a": "n3 assigned <- n1"}
    c.run("a")
    assert c.step() == "old copies stop: a (replacement running on n3)"


# -- the state machine's own checks -------------------------------------------------------------


def test_the_machine_refuses_migrations_that_are_not_a_drains():
    c = Drain("n1", "n2")
    c.submit("a")
    c.on("a", "n1")
    gen = c.m.task("a").generation
    def migration_refused(node: str, generation: int) -> RefusalKind:
        return c.apply(MigrateTasks(placements=(Placement("a", node, generation),))).refused["a"].kind

    assert migration_refused("n2", gen) == RefusalKind.WRONG_STATE  # n1 is not draining
    c.drain("n1")
    assert migration_refused("n1", gen) == RefusalKind.INVALID  # to the node it leaves
    assert migration_refused("n2", gen - 1) == RefusalKind.STALE
    assert c.apply(MigrateTasks(placements=(Placement("a", "n2", gen),))).placed == ("a",)
    assert c.m.task("a").migrating_from == PriorPlacement("n1", gen)
    assert migration_refused("n2", gen + 1) == RefusalKind.WRONG_STATE  # already migrating from n1
    refused(c.apply(FinishMigration(task_id="a", generation=gen)), RefusalKind.STALE)
    accepted(c.apply(FinishMigration(task_id="a", generation=gen + 1)))
    refused(c.apply(FinishMigration(task_id="a", generation=gen + 1)), RefusalKind.WRONG_STATE)  # not migrating


def test_a_migrating_task_holds_both_nodes_and_survives_a_snapshot():
    c = Drain("n1", "n2")
    c.submit("a", host_port=8080)
    c.on("a", "n1")
    c.drain("n1")
    c.step()
    for m in (c.m, StateMachine.restore(c.m.snapshot())):
        assert m.usage("n1").ports == m.usage("n2").ports == frozenset({(8080, "tcp")})
        assert [t.id for t in m.tasks_on("n1")] == [t.id for t in m.tasks_on("n2")] == ["a"]
    c.run("a")
    c.step()
    assert c.m.usage("n1").ports == frozenset() and c.m.usage("n1").used == Resources()


# -- properties -----------------------------------------------------------------------------------

events = st.lists(st.one_of(st.just(("pass", 0)), st.tuples(st.just("run"), st.integers(0, 20)),
                            st.tuples(st.just("wait"), st.integers(1, 50))), max_size=40)


@settings(max_examples=150, deadline=None)
@given(groups=st.lists(st.sampled_from(["", "web", "api"]), min_size=1, max_size=8),
       max_parallel=st.integers(1, 3), deadline=st.sampled_from([30.0, 1000.0]), script=events)
def test_never_more_than_max_parallel_and_never_an_original_stopped_before_its_replacement_runs(
        groups, max_parallel, deadline, script):
    c = Drain("n1", "n2", "n3", settings=drain.DrainSettings(max_parallel, deadline, min_running=0.0))
    for i, group in enumerate(groups):
        c.submit(f"t{i}", group=group)
        c.on(f"t{i}", "n1")
    c.drain("n1", now=0.0)
    now = 0.0

    def in_flight_ok() -> None:
        counts: dict[str, int] = {}
        for t in c.m.tasks():
            if t.migrating_from is not None:
                counts[t.spec.group or t.id] = counts.get(t.spec.group or t.id, 0) + 1
        assert all(n <= max_parallel for n in counts.values()), counts

    settle = [("pass", 0), *[("run", i) for i in range(len(groups))]] * (2 * len(groups) + 2)
    for kind, arg in script + settle:
        if kind == "pass":
            c.step(now)
        elif kind == "wait":
            now += arg
        else:
            t = c.m.task(f"t{arg % len(groups)}")
            if t.state == ASSIGNED and t.node_id != "n1":
                c.run(t.id)
        in_flight_ok()
        assert all(t.state != LOST or now >= deadline for t in c.m.tasks())  # no cut before the deadline
    assert all(was_running or at >= deadline for _, was_running, at in c.finished)
    if now < deadline:  # everything ran: the drain completed without a gap
        assert c.m.tasks_on("n1") == []
        assert all(t.state == RUNNING and t.node_id != "n1" for t in c.m.tasks())
