"""Healing decisions, read as rules over a real state machine.

Each scenario applies commands to a :class:`StateMachine` as the Raft log
would, runs one healing pass (pure: view, ``now`` -> commands), applies what it
decided, and lets the scheduler place what became placeable, exactly as the
leader's loops do. Then properties over random clusters.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from parts import api_deps, restart_config
from result_kit import accepted, refused

from orion.control import healing, restart
from orion.control.placement_loop import plan_with_avoidance
from orion.domain.model import (
    ASSIGNED,
    DESIRED_RUN,
    FAILED,
    LOST,
    NODE_ALIVE,
    NODE_DEAD,
    NODE_LEFT,
    NODE_RESTARTING,
    NODE_SUSPECT,
    PENDING,
    RUNNING,
    STOPPED,
    NodeInfo,
    PortBinding,
    Resources,
    TaskSpec,
)
from orion.state.commands import (
    CreateTask,
    Placement,
    PlaceTasks,
    RegisterNode,
    ReportTaskState,
    ScaleTask,
    SetNodeReadiness,
    SetNodeStatus,
    StopTask,
)
from orion.state.machine import StateMachine
from orion.state.results import RefusalKind, Result

GiB = 1 << 30
CFG = restart_config()


class Cluster:
    """A state machine driven like the leader drives it."""

    def __init__(self, *nodes: str, mem_gib: int = 8) -> None:
        self.m = StateMachine()
        self.index = 0
        for n in nodes:
            self.apply(RegisterNode(node=NodeInfo(n, f"{n}:8000", f"{n}:7000",
                                                  capacity=Resources(mem_gib * GiB, 4000))))

    def apply(self, command) -> Result:
        self.index += 1
        return self.m.apply(command, self.index)

    def submit(self, task_id: str, mem_gib: float = 1, host_port: int | None = None,
               policy: str = "never", group: str = "") -> None:
        ports = (PortBinding(80, "tcp", host_port),) if host_port else ()
        spec = TaskSpec("img", int(mem_gib * GiB), 100, ports=ports, restart_policy=policy, group=group)
        accepted(self.apply(CreateTask(task_id=task_id, spec=spec)))

    def schedule(self, now: float = 0.0) -> dict:
        tasks = self.m.placeable_tasks()
        failures = {t.id: self.m.failures(t.id) for t in tasks}
        placements, no_fit = plan_with_avoidance(
            tasks, self.m.nodes(), self.m.usages(), failures,
            lambda f, t: restart.avoid_nodes(f, t, CFG), now)
        if placements:
            self.apply(PlaceTasks(placements=tuple(placements)))
        return no_fit

    def run_all(self) -> None:
        """Every assigned task's node reports it running."""
        for t in self.m.tasks():
            if t.state == ASSIGNED:
                self.apply(ReportTaskState(task_id=t.id, node_id=t.node_id, generation=t.generation,
                                           state=RUNNING, container_id=f"c-{t.id}-{t.generation}"))

    def heal(self, now: float = 100.0, ended_at: dict | None = None) -> healing.HealPlan:
        tasks = self.m.tasks()
        view = healing.HealView(tasks, self.m.nodes(), {t.id: self.m.failures(t.id) for t in tasks})
        decided = healing.plan(view, now, ended_at or {}, CFG)
        for command in decided.commands:
            self.apply(command)
        return decided

    def node_status(self, node: str, status: str) -> None:
        accepted(self.apply(SetNodeStatus(node_id=node, status=status)))

    def task(self, task_id: str):
        return self.m.task(task_id)


def running_cluster(*tasks: str, nodes=("n1", "n2", "n3")) -> Cluster:
    c = Cluster(*nodes)
    for t in tasks:
        c.submit(t)
    c.schedule()
    c.run_all()
    return c


# -- node loss ---------------------------------------------------------------------------------


def test_a_dead_nodes_tasks_are_marked_lost_and_placed_on_a_healthy_node():
    c = running_cluster("web")
    first = c.task("web")
    c.node_status(first.node_id, NODE_DEAD)
    decided = c.heal()
    assert decided.lost == ("web",) and "marked lost web" in decided.sentence
    assert decided.causes == {"web": healing.CAUSE_NODE_DEAD}
    lost = c.task("web")
    assert (lost.state, lost.generation, lost.reason) == (LOST, first.generation, f"node {first.node_id} is dead")
    c.schedule()
    moved = c.task("web")
    assert moved.state == ASSIGNED and moved.node_id != first.node_id
    assert moved.generation == first.generation + 1


def test_a_suspect_node_is_not_yet_dead():
    c = running_cluster("web")
    c.node_status(c.task("web").node_id, NODE_SUSPECT)
    assert c.heal().commands == ()
    assert c.task("web").state == RUNNING


def test_a_node_that_left_is_not_cut_by_healing_its_tasks_migrate_instead():
    c = running_cluster("web")
    c.node_status(c.task("web").node_id, NODE_LEFT)
    assert c.heal().commands == ()  # the drain planner moves them: tests/unit/control/test_drain.py
    assert c.task("web").state == RUNNING


def test_a_node_whose_engine_stopped_answering_loses_its_tasks_like_a_dead_one():
    c = running_cluster("web", "db", nodes=("n1", "n2"))
    first = c.task("web")
    why = "docker engine has not answered for 8s"
    assert c.apply(SetNodeReadiness(node_id=first.node_id, ready=False, reason=why)).changed
    decided = c.heal()
    assert "web" in decided.lost
    assert decided.causes["web"] == healing.CAUSE_NODE_NOT_READY
    assert c.task("web").reason == f"node {first.node_id} is not ready: {why}"
    c.schedule()
    moved = c.task("web")
    assert moved.state == ASSIGNED and moved.node_id != first.node_id  # placement skips a not-ready node
    assert c.m.node(first.node_id).status == NODE_ALIVE  # membership is untouched: gossip still sees it


def test_a_not_ready_node_takes_no_task_and_takes_them_again_once_ready():
    c = Cluster("n1")
    c.apply(SetNodeReadiness(node_id="n1", ready=False, reason="engine down"))
    c.submit("web")
    assert c.schedule()["web"].sentence == "no alive nodes (1 not ready)"
    c.apply(SetNodeReadiness(node_id="n1", ready=True))
    assert c.m.node("n1").ready_reason == ""
    c.schedule()
    assert c.task("web").node_id == "n1"


def test_healing_twice_decides_nothing_new():
    c = running_cluster("a", "b")
    c.node_status(c.task("a").node_id, NODE_DEAD)
    c.heal()
    assert c.heal().commands == ()


def test_the_old_nodes_report_is_refused_after_the_replacement_is_placed():
    c = running_cluster("web")
    old = c.task("web")
    c.node_status(old.node_id, NODE_DEAD)
    c.heal()
    c.schedule()
    # The partitioned node comes back and reports its container: fenced by generation.
    stale = c.apply(ReportTaskState(task_id="web", node_id=old.node_id, generation=old.generation,
                                    state=RUNNING, container_id="c-old"))
    refused(stale, RefusalKind.STALE)
    assert old.id not in {t.id for t in c.m.tasks_on(old.node_id)}  # its reconciler stops the container


def test_a_lost_task_that_fits_nowhere_waits_with_a_reason():
    c = running_cluster("big", nodes=("n1", "n2"))
    c.submit("big2", mem_gib=7.5)
    c.schedule()
    c.run_all()
    owner = c.task("big").node_id
    c.node_status(owner, NODE_DEAD)
    c.heal()
    no_fit = c.schedule()
    # The survivor holds big2 (7.5 GiB of 8) or has room: either way nothing is over-committed.
    survivor = ({"n1", "n2"} - {owner}).pop()
    assert c.m.usage(survivor).used.memory <= 8 * GiB
    assert c.task("big").state in (LOST, ASSIGNED)
    if c.task("big").state == LOST:
        assert "big" in no_fit


def test_host_ports_stay_exclusive_when_tasks_move():
    c = Cluster("n1", "n2")
    c.submit("a", host_port=8080)
    c.submit("b", host_port=8080)
    c.schedule()
    c.run_all()
    c.node_status(c.task("a").node_id, NODE_DEAD)
    c.heal()
    c.schedule()
    # Only one node is alive and b holds 8080 there: a cannot be placed beside it.
    assert c.task("a").state == LOST


def test_a_stopped_task_on_a_dead_node_is_not_replaced():
    c = running_cluster("web")
    c.apply(StopTask(task_id="web"))
    c.node_status(c.task("web").node_id, NODE_DEAD)
    assert c.heal().causes == {}  # lost, but not sent back to the scheduler: not a reschedule
    c.schedule()
    assert c.task("web").state == LOST and c.m.placeable_tasks() == []


def test_a_node_back_from_the_dead_registers_alive_and_takes_work_again():
    c = running_cluster("web", nodes=("n1", "n2"))
    owner = c.task("web").node_id
    c.node_status(owner, NODE_DEAD)
    c.heal()
    c.schedule()
    c.apply(RegisterNode(node=NodeInfo(owner, f"{owner}:8000", f"{owner}:7000",
                                       capacity=Resources(8 * GiB, 4000))))
    assert c.m.node(owner).status == NODE_ALIVE


def test_a_restarting_node_keeps_its_tasks_and_gets_nothing_new():
    """Its agent announced a restart (SIGTERM): the containers keep running, so healing marks
    nothing lost and the scheduler places new work on the other nodes only."""
    c = running_cluster("web", nodes=("n1", "n2"))
    owner = c.task("web").node_id
    c.node_status(owner, NODE_RESTARTING)
    assert c.heal().commands == ()
    assert c.task("web").state == RUNNING and c.task("web").node_id == owner
    c.submit("new")
    c.schedule()
    assert c.task("new").node_id != owner
    # Past the grace the leader's liveness says dead: then it is a node loss like any other.
    c.node_status(owner, NODE_DEAD)
    assert c.heal().lost == ("web",)


def test_a_restart_due_on_a_restarting_node_waits_for_its_agent():
    c = Cluster("n1", "n2")
    c.submit("job", policy="on-failure")
    c.schedule()
    c.run_all()
    fail(c, "job")
    gen = c.task("job").generation
    c.node_status("n1", NODE_RESTARTING)
    assert c.heal(now=200.0, ended_at={("job", gen): 100.0}).commands == ()  # not sent elsewhere
    c.apply(RegisterNode(node=NodeInfo("n1", "n1:8000", "n1:7000", capacity=Resources(8 * GiB, 4000))))
    c.heal(now=201.0, ended_at={("job", gen): 100.0})
    again = c.task("job")
    assert (again.state, again.node_id, again.generation) == (ASSIGNED, "n1", gen + 1)


# -- restarts --------------------------------------------------------------------------------------


def fail(c: Cluster, task_id: str) -> None:
    t = c.task(task_id)
    accepted(c.apply(ReportTaskState(task_id=task_id, node_id=t.node_id, generation=t.generation,
                                     state=FAILED, exit_code=1)))


def test_a_crashed_task_waits_its_backoff_then_restarts_on_its_node():
    c = Cluster("n1", "n2")
    c.submit("job", policy="on-failure")
    c.schedule()
    c.run_all()
    fail(c, "job")
    gen = c.task("job").generation
    waiting = c.heal(now=100.0, ended_at={("job", gen): 100.0})
    assert waiting.commands == () and waiting.next_due == 101.0
    c.heal(now=101.0, ended_at={("job", gen): 100.0})
    again = c.task("job")
    assert (again.state, again.generation, again.restarts) == (ASSIGNED, gen + 1, 1)
    assert c.m.failures("job") == (("n1", 101.0),)


def test_after_three_local_restarts_the_task_moves_and_avoids_the_failing_node():
    c = Cluster("n1", "n2")
    c.submit("job", policy="always")
    c.schedule()
    c.run_all()
    first_node = c.task("job").node_id
    now = 1000.0
    for _ in range(3):
        fail(c, "job")
        c.heal(now=now, ended_at={("job", c.task("job").generation): now - 60})
        assert c.task("job").node_id == first_node
        c.run_all()
        now += 100
    fail(c, "job")
    decided = c.heal(now=now, ended_at={("job", c.task("job").generation): now - 60})
    assert decided.rescheduled == ("job",) and c.task("job").state == PENDING
    assert decided.causes == {"job": healing.CAUSE_CONTAINER_FAILED}
    c.schedule(now=now)
    assert c.task("job").node_id != first_node


def test_never_is_never_restarted_and_the_limit_stops_a_crash_loop():
    c = Cluster("n1")
    c.submit("once")
    c.schedule()
    c.run_all()
    fail(c, "once")
    assert c.heal(now=10.0).commands == ()
    assert c.task("once").state == FAILED


# -- replicas ----------------------------------------------------------------------------------------


def test_scaling_a_service_adds_then_stops_members_newest_first():
    c = Cluster("n1", "n2")
    c.submit("web1", group="g")
    c.submit("web2", group="g")
    grown = c.apply(ScaleTask(task_id="web2", count=4, new_task_ids=("w3", "w4", "w5", "w6")))
    assert grown.created == ("w3", "w4") and grown.group == "g"
    shrunk = c.apply(ScaleTask(task_id="web1", count=1))
    assert shrunk.stopped == ("w4", "w3", "web2")
    wanted = [t.id for t in c.m.group_members("g") if t.desired == DESIRED_RUN]
    assert wanted == ["web1"]


def test_a_lone_task_scaled_up_becomes_the_head_of_its_service():
    c = Cluster("n1")
    c.submit("solo")
    assert c.apply(ScaleTask(task_id="solo", count=2, new_task_ids=("x",))).created == ("x",)
    assert [t.id for t in c.m.group_members("solo")] == ["solo", "x"]


def test_scaling_without_enough_ids_is_refused_and_changes_nothing():
    c = Cluster("n1")
    c.submit("solo")
    refused(c.apply(ScaleTask(task_id="solo", count=3, new_task_ids=("x",))), RefusalKind.INVALID)
    assert len(c.m.tasks()) == 1


def test_replicas_are_kept_at_n_through_a_node_loss():
    c = Cluster("n1", "n2", "n3")
    for i in range(3):
        c.submit(f"r{i}", group="svc")
    c.schedule()
    c.run_all()
    c.node_status("n1", NODE_DEAD)
    c.heal()
    c.schedule()
    c.run_all()
    members = c.m.group_members("svc")
    assert [t.state for t in members] == [RUNNING] * 3
    assert all(t.node_id != "n1" for t in members)


# -- properties ----------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(n_nodes=st.integers(2, 5), n_tasks=st.integers(0, 12), dead=st.sets(st.integers(0, 4), max_size=3),
       sizes=st.lists(st.sampled_from([0.5, 1, 2, 3]), min_size=12, max_size=12))
def test_after_healing_no_wanted_task_is_held_by_a_gone_node_and_nothing_is_over_committed(
        n_nodes, n_tasks, dead, sizes):
    ids = [f"n{i}" for i in range(n_nodes)]
    c = Cluster(*ids)
    for i in range(n_tasks):
        c.submit(f"t{i}", mem_gib=sizes[i])
    c.schedule()
    c.run_all()
    gone = {ids[i] for i in dead if i < n_nodes}
    for n in gone:
        c.node_status(n, NODE_DEAD)
    c.heal()
    c.schedule()
    c.run_all()
    for t in c.m.tasks():
        assert t.node_id not in gone or t.state not in (ASSIGNED, RUNNING)
        assert t.state in (RUNNING, LOST, PENDING)
        if t.state == LOST:  # waiting for room, with the scheduler's reason
            assert t.reason
    for n in ids:
        assert c.m.usage(n).used.memory <= 8 * GiB
    assert c.heal().commands == ()  # a second pass decides nothing more
    # Every running task runs once: on one node, at one generation.
    placed = [(t.id, t.node_id) for t in c.m.tasks() if t.state == RUNNING]
    assert len({tid for tid, _ in placed}) == len(placed)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10), st.sampled_from(["grow", "shrink"])), max_size=8))
def test_a_service_always_has_exactly_count_wanted_members(ops):
    c = Cluster("n1")
    c.submit("s0", group="svc")
    fresh = (f"id{i}" for i in range(10_000))
    for count, _ in ops:
        result = c.apply(ScaleTask(task_id="s0", count=count, new_task_ids=tuple(next(fresh) for _ in range(count))))
        accepted(result)
        wanted = [t for t in c.m.group_members("svc") if t.desired == DESIRED_RUN and t.state != STOPPED]
        assert len(wanted) == count


def test_a_stale_plan_for_a_lost_task_is_refused():
    c = running_cluster("web", nodes=("n1", "n2"))
    old = c.task("web")
    c.node_status(old.node_id, NODE_DEAD)
    c.heal()
    c.schedule()
    other = ({"n1", "n2"} - {old.node_id}).pop()
    again = c.apply(PlaceTasks(placements=(Placement("web", other, old.generation),)))
    assert again.refused["web"].kind == RefusalKind.WRONG_STATE  # placed meanwhile: no longer waiting


# -- the ops API (PATCH /tasks/<id>, POST /nodes/<id>/drain) -------------------------------------------


def ops_client():
    from orion.api.app import create_app
    from orion.api.ops import ops_blueprint
    from orion.store.local import LocalStore

    store = LocalStore()
    app = create_app(api_deps(store, "n1", placement_wait=0.0))
    app.register_blueprint(ops_blueprint(store, 1.0))
    store.submit(RegisterNode(node=NodeInfo("n1", "n1:8000", "n1:7000", capacity=Resources(8 * GiB, 4000))), 1)
    return app.test_client(), store


def test_patch_scales_the_service_a_task_belongs_to():
    client, store = ops_client()
    created = client.post("/tasks", json={"image": "img", "memory": "64M", "count": 2}).get_json()
    grown = client.patch(f"/tasks/{created[1]['id']}", json={"count": 3})
    assert grown.status_code == 200, grown.get_json()
    body = grown.get_json()
    assert len(body["created"]) == 1 and len(body["tasks"]) == 3
    shrunk = client.patch(f"/tasks/{created[0]['id']}", json={"count": 1}).get_json()
    assert len(shrunk["stopped"]) == 2


def test_patch_refuses_anything_but_a_count():
    client, _ = ops_client()
    task = client.post("/tasks", json={"image": "img", "memory": "64M"}).get_json()
    assert client.patch(f"/tasks/{task['id']}", json={"count": -1}).status_code == 400
    assert client.patch(f"/tasks/{task['id']}", json={"image": "other"}).status_code == 400
    assert client.patch("/tasks/nope", json={"count": 2}).status_code == 404


def test_drain_marks_the_node_left_and_lists_what_must_move():
    client, store = ops_client()
    answer = client.post("/nodes/n1/drain")
    assert answer.status_code == 202 and answer.get_json()["status"] == NODE_LEFT
    assert store.read(lambda m: m.node("n1").status)[0] == NODE_LEFT
    assert client.post("/nodes/ghost/drain").status_code == 404


def test_failure_records_survive_a_snapshot_and_restore():
    c = Cluster("n1")
    c.submit("job", policy="on-failure")
    c.schedule()
    c.run_all()
    fail(c, "job")
    c.heal(now=500.0, ended_at={("job", c.task("job").generation): 0.0})
    restored = StateMachine.restore(c.m.snapshot())
    assert restored.failures("job") == c.m.failures("job") == (("n1", 500.0),)
