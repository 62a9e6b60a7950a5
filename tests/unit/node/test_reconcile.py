"""The node reconciler's rules, as plain values: desired tasks and engine
containers in, actions out. No docker, no clock.

Each test states one rule of the brief; the property tests at the end drive
the planner against a simulated node and check it converges and never starts
a duplicate.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from parts import reconcile_loop

from orion.domain.model import (
    ASSIGNED,
    COMPLETED,
    DESIRED_STOP,
    FAILED,
    LOST,
    RUNNING,
    STOPPED,
    STOPPING,
    TERMINAL_STATES,
    NodeInfo,
    PortBinding,
    PriorPlacement,
    Resources,
    Task,
    TaskSpec,
)
from orion.node.reconcile import Remove, Report, Start, Stop, plan, report_for
from orion.runtime import ContainerState, EngineUnreachable, NetworkAttachment, RuntimeFailure, StartExtras
from orion.runtime.inspect import state_from_inspect
from orion.state.commands import CreateTask, Placement, PlaceTasks, RegisterNode, StopTask
from orion.store.local import LocalStore

NODE = "n1"
SPEC = TaskSpec(image="orion/busybox:latest", memory=64 << 20, cpu_millis=100, ports=(PortBinding(80),))


def task(tid: str = "t1", state: str = ASSIGNED, gen: int = 1, node: str = NODE, **kw) -> Task:
    return Task(id=tid, spec=SPEC, state=state, node_id=node, generation=gen, **kw)


def container(tid: str = "t1", gen: int = 1, status: str = "running", cid: str = "", **kw) -> ContainerState:
    return ContainerState(cid or f"c-{tid}-{gen}", tid, gen, status, **kw)


PORTS = (("80/tcp", 32768),)


# -- migration (drain) and fencing ---------------------------------------------------------


def migrating(old_gen: int = 1, state: str = ASSIGNED) -> Task:
    """t1 migrating from this node (generation ``old_gen``) to n2 as the next generation."""
    return task(state=state, gen=old_gen + 1, node="n2", migrating_from=PriorPlacement(NODE, old_gen))


def test_the_original_of_a_migrating_task_keeps_running_and_is_not_reported():
    assert plan(NODE, [migrating()], [container(gen=1)]) == []


def test_the_original_is_kept_until_the_replacement_runs_then_fenced_once_the_migration_finishes():
    still = migrating(state=RUNNING)  # the replacement runs, the leader has not finished yet
    assert plan(NODE, [still], [container(gen=1)]) == []
    # FinishMigration: the task is no longer this node's, so it is not even among the desired.
    assert plan(NODE, [], [container(gen=1)]) == [
        Stop("c-t1-1", "t1", 1, "task t1 is not placed on n1"), Remove("c-t1-1", "t1", 1)]


def test_a_migrating_original_that_never_started_is_not_started_here():
    assert plan(NODE, [migrating()], []) == []


def test_a_migrating_original_that_exited_is_removed_not_reported():
    assert plan(NODE, [migrating()], [container(gen=1, status="exited", exit_code=0)]) == [
        Remove("c-t1-1", "t1", 1)]


def test_only_the_remembered_generation_is_kept():
    older = container(gen=0, cid="c-old")
    assert plan(NODE, [migrating()], [container(gen=1), older]) == [
        Stop("c-old", "t1", 0, "task t1 is not placed on n1"), Remove("c-old", "t1", 0)]


def test_the_new_node_starts_the_replacement_like_any_placement():
    t = migrating()
    assert plan("n2", [t], []) == [Start(t)]


def test_after_the_engine_returns_containers_of_tasks_moved_meanwhile_are_stopped():
    """Engine down -> node not ready -> its tasks marked lost and placed on n2 (generation 2).
    When the engine answers again it still runs generation 1 of t1 and t2: fenced, like after a
    partition. A task still placed here (t3) is left running."""
    t3 = task("t3", state=RUNNING, container_id="c-t3-1")
    actual = [container("t1", 1), container("t2", 1), container("t3", 1)]
    actions = plan(NODE, [t3], actual)
    assert [a for a in actions if isinstance(a, Stop)] == [
        Stop("c-t1-1", "t1", 1, "task t1 is not placed on n1"), Stop("c-t2-1", "t2", 1, "task t2 is not placed on n1")]
    assert not any(isinstance(a, Start | Report) for a in actions)


# -- start -------------------------------------------------------------------------------


def test_assigned_task_without_container_is_started():
    t = task()
    assert plan(NODE, [t], []) == [Start(t)]


def test_running_task_whose_container_vanished_is_started_again():
    t = task(state=RUNNING, container_id="gone")
    assert plan(NODE, [t], []) == [Start(t)]


def test_task_placed_on_another_node_is_not_started_here():
    assert plan(NODE, [task(node="n2")], []) == []


def test_container_of_older_generation_does_not_count_as_started():
    t = task(gen=2)
    old = container(gen=1)
    assert plan(NODE, [t], [old]) == [
        Stop(old.container_id, "t1", 1, "generation 1 of task t1 replaced by 2"),
        Remove(old.container_id, "t1", 1),
        Start(t),
    ]


# -- adopt ---------------------------------------------------------------------------------


def test_running_container_of_assigned_task_is_adopted_not_duplicated():
    t = task(state=ASSIGNED)
    c = container(host_ports=PORTS)
    assert plan(NODE, [t], [c]) == [Report("t1", NODE, 1, RUNNING, c.container_id, PORTS)]


def test_report_again_when_container_id_or_ports_differ():
    c = container(host_ports=PORTS)
    other_id = task(state=RUNNING, container_id="old", host_ports=PORTS)
    other_ports = task(state=RUNNING, container_id=c.container_id, host_ports=(("80/tcp", 1),))
    assert plan(NODE, [other_id], [c]) == [Report("t1", NODE, 1, RUNNING, c.container_id, PORTS)]
    assert plan(NODE, [other_ports], [c]) == [Report("t1", NODE, 1, RUNNING, c.container_id, PORTS)]


def test_nothing_to_do_when_in_sync():
    c = container(host_ports=PORTS)
    t = task(state=RUNNING, container_id=c.container_id, host_ports=PORTS)
    assert plan(NODE, [t], [c]) == []
    assert plan(NODE, [], []) == []


def test_paused_container_counts_as_running():
    c = container(status="paused")
    t = task(state=RUNNING, container_id=c.container_id)
    assert plan(NODE, [t], [c]) == []


# -- stop ------------------------------------------------------------------------------------


def test_container_of_task_not_placed_here_is_stopped_and_removed():
    c = container(tid="orphan")
    assert plan(NODE, [], [c]) == [
        Stop(c.container_id, "orphan", 1, "task orphan is not placed on n1"),
        Remove(c.container_id, "orphan", 1),
    ]


def test_container_of_task_moved_to_another_node_is_stopped():
    c = container()
    actions = plan(NODE, [task(node="n2", gen=2)], [c])
    assert [type(a) for a in actions] == [Stop, Remove]


def test_exited_orphan_is_only_removed():
    c = container(tid="old", status="exited", exit_code=0)
    assert plan(NODE, [], [c]) == [Remove(c.container_id, "old", 1)]


def test_desired_stop_stops_then_reports_stopped():
    c = container(host_ports=PORTS)
    t = task(state=STOPPING, desired=DESIRED_STOP, container_id=c.container_id)
    assert plan(NODE, [t], [c]) == [
        Stop(c.container_id, "t1", 1, "stop requested"),
        Remove(c.container_id, "t1", 1),
        Report("t1", NODE, 1, STOPPED, c.container_id, reason="stopped on request"),
    ]


def test_a_stop_gives_the_container_the_grace_it_was_created_with():
    """A task's stopGracePeriod travels with its container (the engine keeps it): whoever's task it
    was by now (stopped, replaced, unknown), the stop waits that long before SIGKILL."""
    mine = container(cid="c-mine", stop_grace=45.0)
    other = container(tid="gone", stop_grace=None)
    t = task(state=STOPPING, desired=DESIRED_STOP, container_id="c-mine")
    stops = [a for a in plan(NODE, [t], [mine, other]) if isinstance(a, Stop)]
    assert [(s.container_id, s.grace) for s in stops] == [("c-gone-1", None), ("c-mine", 45.0)]


def test_desired_stop_without_container_just_reports_stopped():
    t = task(state=STOPPING, desired=DESIRED_STOP)
    assert plan(NODE, [t], []) == [Report("t1", NODE, 1, STOPPED, None, reason="stopped on request")]


def test_stops_come_before_starts_so_a_static_port_is_free_for_the_replacement():
    t = task(gen=2)
    actions = plan(NODE, [t], [container(gen=1)])
    assert isinstance(actions[0], Stop) and isinstance(actions[-1], Start)


# -- exited ------------------------------------------------------------------------------------


def test_exited_nonzero_reports_failed_and_is_not_restarted():
    c = container(status="exited", exit_code=3)
    t = task(state=RUNNING, container_id=c.container_id)
    assert plan(NODE, [t], [c]) == [
        Report("t1", NODE, 1, FAILED, c.container_id, (), 3, "exited with code 3")
    ]


def test_exited_zero_reports_completed():
    c = container(status="exited", exit_code=0)
    assert plan(NODE, [task(state=RUNNING)], [c]) == [
        Report("t1", NODE, 1, COMPLETED, c.container_id, (), 0, "exited with code 0")
    ]


def test_oom_kill_is_in_the_reason():
    c = container(status="exited", exit_code=137, error="killed: out of memory")
    (r,) = plan(NODE, [task(state=RUNNING)], [c])
    assert r.state == FAILED and r.reason == "exited with code 137: killed: out of memory"


def test_exit_255_not_seen_happening_is_the_engine_losing_the_task():
    """A node that crashed and came back: Docker restored the container as exited 255."""
    c = container(status="exited", exit_code=255)
    t = task(state=RUNNING, container_id=c.container_id, host_ports=PORTS)
    (r,) = plan(NODE, [t], [c])
    assert (r.state, r.generation, r.host_ports, r.exit_code) == (LOST, 1, PORTS, 255)
    assert "died with the Docker engine" in r.reason


def test_exit_255_of_a_witnessed_container_is_the_tasks_own_failure():
    c = container(status="exited", exit_code=255)
    t = task(state=RUNNING, container_id=c.container_id)
    assert plan(NODE, [t], [c], witnessed={c.container_id}) == [
        Report("t1", NODE, 1, FAILED, c.container_id, (), 255, "exited with code 255")
    ]


def test_other_unwitnessed_exits_and_oom_kills_are_failures():
    for c in (container(status="exited", exit_code=1),
              container(status="exited", exit_code=255, error="killed: out of memory")):
        (r,) = plan(NODE, [task(state=RUNNING)], [c])
        assert r.state == FAILED, c


def test_created_but_never_started_leftover_is_replaced():
    c = container(status="created")
    t = task()
    assert plan(NODE, [t], [c]) == [Remove(c.container_id, "t1", 1), Start(t)]


# -- replica behind, engine busy ------------------------------------------------------------------


def test_container_of_newer_generation_is_left_alone_while_replica_catches_up():
    assert plan(NODE, [task(gen=1, state=RUNNING, container_id="x")], [container(gen=2)]) == []


def test_container_being_removed_is_ignored():
    assert plan(NODE, [], [container(status="removing")]) == []


def test_planning_twice_gives_the_same_actions():
    desired = [task("a"), task("b", state=STOPPING, desired=DESIRED_STOP), task("c", state=RUNNING, gen=3)]
    actual = [container("b"), container("c", gen=2), container("z", status="exited", exit_code=1)]
    assert plan(NODE, desired, actual) == plan(NODE, desired, actual)


# -- inspect output -> ContainerState ---------------------------------------------------------------


def test_state_from_inspect_reads_labels_status_and_ipv4_port():
    attrs = {
        "Id": "abc",
        "Name": "/orion-t1-g4",
        "Config": {"Labels": {"orion.task": "t1", "orion.generation": "4", "orion.node": NODE}},
        "State": {"Status": "exited", "ExitCode": 137, "OOMKilled": True, "Error": ""},
        "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "::", "HostPort": "5"},
                                                 {"HostIp": "0.0.0.0", "HostPort": "49153"}],
                                      "81/tcp": None}},
    }
    s = state_from_inspect(attrs)
    assert (s.task_id, s.generation, s.status, s.exit_code, s.name) == ("t1", 4, "exited", 137, "orion-t1-g4")
    assert s.host_ports == (("80/tcp", 49153),)
    assert s.error == "killed: out of memory"


# -- simulated node: convergence properties ------------------------------------------------------------


def _simulate(node: str, desired: list[Task], actual: list[ContainerState], actions) -> tuple[list, list]:
    """Apply actions as a perfect runtime and a simplified state machine would."""
    tasks = {t.id: t for t in desired}
    cons = {c.container_id: c for c in actual}
    for a in actions:
        if isinstance(a, Stop):
            cons[a.container_id] = replace(cons[a.container_id], status="exited", exit_code=143,
                                           host_ports=())
        elif isinstance(a, Remove):
            cons.pop(a.container_id)
        elif isinstance(a, Start):
            c = ContainerState(f"new-{a.task.id}-{a.task.generation}-{len(cons)}", a.task.id,
                               a.task.generation, "running", host_ports=PORTS)
            cons[c.container_id] = c
            a = report_for(node, a.task, c)
        if isinstance(a, Report | Start):
            t = tasks[a.task_id]
            state = STOPPING if (a.state == RUNNING and t.state == STOPPING) else a.state
            tasks[t.id] = replace(t, state=state, container_id=a.container_id, host_ports=a.host_ports)
    return [t for t in tasks.values() if t.state not in TERMINAL_STATES], list(cons.values())


task_st = st.builds(
    lambda tid, gen, state, stop, node: task(
        tid, gen=gen, node=node, state=STOPPING if stop else state, desired=DESIRED_STOP if stop else "run"),
    st.sampled_from(["a", "b", "c", "d"]), st.integers(1, 3), st.sampled_from([ASSIGNED, RUNNING]),
    st.booleans(), st.sampled_from([NODE, NODE, "n2"]),
)
container_st = st.builds(
    lambda tid, gen, status, code: container(tid, gen, status, cid=f"c-{tid}-{gen}",
                                             exit_code=code if status == "exited" else None),
    st.sampled_from(["a", "b", "c", "d", "e"]), st.integers(1, 3),
    st.sampled_from(["running", "exited", "created", "paused"]), st.sampled_from([0, 1]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(task_st, unique_by=lambda t: t.id),
       st.lists(container_st, unique_by=lambda c: c.container_id))
def test_plan_converges_and_never_runs_two_containers_of_one_task(desired, actual):
    for _ in range(4):
        actions = plan(NODE, desired, actual)
        if not actions:
            break
        started = [a.task.id for a in actions if isinstance(a, Start)]
        assert len(started) == len(set(started)), "one task started twice in one pass"
        desired, actual = _simulate(NODE, desired, actual, actions)
        gens = {t.id: t.generation for t in desired}
        live = [c.task_id for c in actual if c.live and c.generation <= gens.get(c.task_id, 0)]
        assert len(live) == len(set(live)), "two live containers of one task after a pass"
    assert plan(NODE, desired, actual) == [], "not converged after 4 passes"
    # In the end every wanted task of this node runs its generation (or a newer one the
    # replica has not caught up with), and nothing else runs.
    wanted = {t.id: t.generation for t in desired if t.node_id == NODE and t.desired == "run"}
    for c in actual:
        if c.live:
            assert c.generation >= wanted.get(c.task_id, c.generation + 1), f"{c} should not run"
    for tid, gen in wanted.items():
        assert any(c.task_id == tid and (c.generation > gen or (c.live and c.generation == gen))
                   for c in actual), f"{tid} not running"


# -- the runner, with the real state machine and a fake runtime ------------------------------------------


class FakeRuntime:
    """Records calls; fails starts of images named in ``missing``."""

    def __init__(self, missing: frozenset[str] = frozenset()) -> None:
        self.containers: dict[str, ContainerState] = {}
        self.missing = missing
        self.calls: list[str] = []
        self.timeouts: list[float] = []
        self.engine_down = False

    def start(self, task: Task, node_id: str, extras: StartExtras | None = None,
              network: NetworkAttachment | None = None) -> ContainerState:
        self.calls.append(f"start {task.id}")
        if self.engine_down:
            raise EngineUnreachable("inspect image: docker engine unreachable at unix:///x: refused")
        if task.spec.image in self.missing:
            raise RuntimeFailure(f"image {task.spec.image} not found locally and pull failed: nope")
        c = ContainerState(f"cid-{task.id}-{task.generation}", task.id, task.generation, "running",
                           host_ports=PORTS)
        self.containers[c.container_id] = c
        return c

    def stop(self, container_id: str, timeout: float) -> None:
        self.calls.append(f"stop {container_id}")
        self.timeouts.append(timeout)
        self.containers[container_id] = replace(self.containers[container_id], status="exited", exit_code=143)

    def remove(self, container_id: str) -> None:
        self.calls.append(f"remove {container_id}")
        self.containers.pop(container_id, None)

    def list_managed(self, node_id: str) -> list[ContainerState]:
        return list(self.containers.values())

    def engine_capacity(self) -> Resources:
        return Resources(1 << 30, 1000)

    def ping(self, timeout: float | None = None) -> bool:
        return True


def _store_with(*specs: tuple[str, TaskSpec]) -> LocalStore:
    store = LocalStore()
    store.submit(RegisterNode(node=NodeInfo(NODE, "a", "r", capacity=Resources(4 << 30, 4000))), 1)
    for tid, spec in specs:
        store.submit(CreateTask(task_id=tid, spec=spec), 1)
        store.submit(PlaceTasks(placements=(Placement(tid, NODE, 0),)), 1)
    return store


def test_runner_starts_reports_and_then_is_in_sync():
    store = _store_with(("t1", SPEC))
    r = reconcile_loop(NODE, store, FakeRuntime())
    assert r.run_once().sentence == "started t1; reported t1 running"
    t1, _ = store.read(lambda m: m.task("t1"))
    assert (t1.state, t1.container_id, t1.host_ports) == (RUNNING, "cid-t1-1", PORTS)
    assert r.run_once().sentence == "in sync: 1 tasks, 1 running containers"


def test_runner_reports_a_failed_start_with_its_reason():
    store = _store_with(("t1", replace(SPEC, image="nope:1")))
    r = reconcile_loop(NODE, store, FakeRuntime(missing=frozenset({"nope:1"})))
    assert r.run_once().sentence.startswith("reported t1 failed; errors: start t1: image nope:1 not found locally")
    t1, _ = store.read(lambda m: m.task("t1"))
    assert t1.state == FAILED and "not found locally and pull failed" in t1.reason


def test_runner_adopts_instead_of_starting_twice_and_stops_on_request():
    store = _store_with(("t1", SPEC))
    rt = FakeRuntime()
    reconcile_loop(NODE, store, rt).run_once()
    second = reconcile_loop(NODE, store, rt)  # an agent restart over the same engine
    assert second.run_once().sentence.startswith("in sync")
    assert rt.calls == ["start t1"]
    store.submit(StopTask(task_id="t1"), 1)
    assert second.run_once().sentence == "stopped t1; removed 1 container; reported t1 stopped"
    t1, _ = store.read(lambda m: m.task("t1"))
    assert t1.state == STOPPED and rt.containers == {}


def test_runner_stops_with_the_containers_grace_else_the_nodes_stop_timeout():
    store = _store_with(("t1", SPEC), ("t2", SPEC))
    rt = FakeRuntime()
    loop = reconcile_loop(NODE, store, rt, stop_timeout=7.0)
    loop.run_once()
    rt.containers["cid-t1-1"] = replace(rt.containers["cid-t1-1"], stop_grace=45.0)  # created with one
    store.submit(StopTask(task_id="t1"), 1)
    store.submit(StopTask(task_id="t2"), 1)
    loop.run_once()
    assert rt.timeouts == [45.0, 7.0]


def test_runner_reads_exit_255_as_lost_only_when_it_did_not_see_the_container_run():
    store = _store_with(("t1", SPEC))
    rt = FakeRuntime()
    first = reconcile_loop(NODE, store, rt)
    first.run_once()
    cid = "cid-t1-1"
    rt.containers[cid] = replace(rt.containers[cid], status="exited", exit_code=255)
    assert first.run_once().sentence == "reported t1 failed"  # it started it: the exit is the task's own
    t1, _ = store.read(lambda m: m.task("t1"))
    assert t1.state == FAILED


def test_runner_after_a_crash_reports_the_engines_casualty_lost():
    store = _store_with(("t1", SPEC))
    rt = FakeRuntime()
    reconcile_loop(NODE, store, rt).run_once()
    cid = "cid-t1-1"
    rt.containers[cid] = replace(rt.containers[cid], status="exited", exit_code=255)
    assert reconcile_loop(NODE, store, rt).run_once().sentence == "reported t1 lost"  # a restarted agent
    t1, _ = store.read(lambda m: m.task("t1"))
    assert t1.state == LOST and t1.exit_code == 255


def test_runner_forgets_what_it_saw_when_the_engine_is_unreachable():
    store = _store_with(("t1", SPEC))
    rt = FakeRuntime()
    r = reconcile_loop(NODE, store, rt)
    r.run_once()
    real_list = rt.list_managed

    def down(node_id: str):
        raise RuntimeFailure("engine unreachable")
    rt.list_managed = down
    assert r.run_once().sentence.startswith("cannot list containers")
    rt.list_managed = real_list
    rt.containers["cid-t1-1"] = replace(rt.containers["cid-t1-1"], status="exited", exit_code=255)
    assert r.run_once().sentence == "reported t1 lost"


def test_an_engine_that_did_not_answer_is_asked_again_when_the_period_is_due_not_at_every_change():
    store = _store_with(("t1", SPEC))
    rt = FakeRuntime()
    r = reconcile_loop(NODE, store, rt, interval=2.0)
    assert r.may_skip(unchanged=True, since_last_pass=1.0) and not r.may_skip(unchanged=False, since_last_pass=1.0)

    def down(node_id: str):
        raise RuntimeFailure("engine unreachable")
    rt.list_managed = down
    r.run_once()
    assert r.may_skip(unchanged=False, since_last_pass=1.0)  # a new placement: still no retry yet
    assert not r.may_skip(unchanged=False, since_last_pass=2.5)  # the period is due: ask again
    del rt.list_managed
    r.run_once()
    assert not r.may_skip(unchanged=False, since_last_pass=1.0)


def test_runner_does_not_fail_a_task_because_its_engine_is_down():
    """An unreachable engine says nothing about the task: no report, one attempt a pass,
    and the task starts once the engine answers again."""
    store = _store_with(("t1", SPEC), ("t2", SPEC))
    rt = FakeRuntime()
    rt.engine_down = True
    r = reconcile_loop(NODE, store, rt)
    assert r.run_once().sentence.startswith("errors: start t1: inspect image: docker engine unreachable")
    assert rt.calls == ["start t1"]  # t2 is not tried against an engine that just refused
    tasks, _ = store.read(lambda m: [m.task("t1"), m.task("t2")])
    assert [t.state for t in tasks] == [ASSIGNED, ASSIGNED]
    rt.engine_down = False
    assert r.run_once().sentence == "started t1, t2; reported t1 running, t2 running"


def test_listener_wakes_the_loop():
    store = _store_with()
    r = reconcile_loop(NODE, store, FakeRuntime())
    assert not r._wake.is_set()
    store.submit(CreateTask(task_id="x", spec=SPEC), 1)
    assert r._wake.is_set()


def test_a_container_that_died_is_reported_at_once_not_at_the_next_period():
    """The engine's event stream says a container died (DockerRuntime.watch_exits): the loop
    passes on that wake although the desired set did not change, long before its period."""
    import threading  # noqa: PLC0415
    import time  # noqa: PLC0415

    store = _store_with(("t1", SPEC))
    rt = FakeRuntime()
    r = reconcile_loop(NODE, store, rt, interval=60.0)
    stop = threading.Event()
    runner = threading.Thread(target=r.run_forever, args=(stop,), daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while "cid-t1-1" not in rt.containers and time.monotonic() < deadline:
            time.sleep(0.01)
        rt.containers["cid-t1-1"] = replace(rt.containers["cid-t1-1"], status="exited", exit_code=1)
        r.container_exited()
        while store.read(lambda m: m.task("t1"))[0].state != FAILED and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.read(lambda m: m.task("t1"))[0].state == FAILED
    finally:
        stop.set()
        runner.join(5)
