"""The reconciler over the real state machine (LocalStore) and the real engine:
it starts what is placed, adopts what already runs after a restart instead of
starting a duplicate, replaces a stale generation, stops on request, and
reports failures with their reasons."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from harness import http_get
from parts import reconcile_loop

from orion.domain.model import (
    COMPLETED,
    FAILED,
    LOST,
    RUNNING,
    STOPPED,
    NodeInfo,
    PortBinding,
    Resources,
    Task,
    TaskSpec,
)
from orion.runtime.docker import DockerRuntime
from orion.state.commands import CreateTask, Placement, PlaceTasks, RegisterNode, ReportTaskState, StopTask
from orion.store.local import LocalStore

pytestmark = pytest.mark.docker

MiB = 1024 * 1024


@pytest.fixture
def store(node_id) -> LocalStore:
    s = LocalStore()
    node = NodeInfo(node_id, "127.0.0.1:1", "127.0.0.1:2", capacity=Resources(4 << 30, 4000))
    s.submit(RegisterNode(node=node), 5)
    return s


@pytest.fixture
def runtime(docker_host) -> Iterator[DockerRuntime]:
    rt = DockerRuntime(docker_host)
    yield rt
    rt.close()


def place(store: LocalStore, node_id: str, spec: TaskSpec) -> str:
    tid = f"t-{uuid.uuid4().hex[:8]}"
    store.submit(CreateTask(task_id=tid, spec=spec), 5)
    gen = store.read(lambda m: m.task(tid))[0].generation
    assert store.submit(PlaceTasks(placements=(Placement(tid, node_id, gen),)), 5).placed == (tid,)
    return tid


def get(store: LocalStore, tid: str) -> Task:
    return store.read(lambda m: m.task(tid))[0]


def web(image: str) -> TaskSpec:
    return TaskSpec(image=image, memory=64 * MiB, cpu_millis=100, ports=(PortBinding(80),))


def test_start_then_adopt_after_restart_then_stop_on_request(store, node_id, runtime, docker_host,
                                                             test_image):
    tid = place(store, node_id, web(test_image))
    first = reconcile_loop(node_id, store, runtime, stop_timeout=2)
    assert first.run_once().sentence == f"started {tid}; reported {tid} running"
    task = get(store, tid)
    assert task.state == RUNNING and task.container_id
    ((key, port),) = task.host_ports
    assert key == "80/tcp"
    assert http_get(port).strip() == "hello from orion"
    assert first.run_once().sentence == "in sync: 1 tasks, 1 running containers"

    # An agent restart: new reconciler, new client, same engine. It adopts, it does not start.
    restarted_runtime = DockerRuntime(docker_host)
    second = reconcile_loop(node_id, store, restarted_runtime, stop_timeout=2)
    assert second.run_once().sentence == "in sync: 1 tasks, 1 running containers"
    assert [c.container_id for c in runtime.list_managed(node_id)] == [task.container_id]

    store.submit(StopTask(task_id=tid), 5)
    assert second.run_once().sentence == f"stopped {tid}; removed 1 container; reported {tid} stopped"
    assert get(store, tid).state == STOPPED
    assert runtime.list_managed(node_id) == []
    assert second.run_once().sentence == "in sync: 0 tasks, 0 running containers"
    restarted_runtime.close()


def test_adopts_a_running_container_whose_report_was_lost(store, node_id, runtime, test_image):
    tid = place(store, node_id, web(test_image))
    started = runtime.start(get(store, tid), node_id)  # the agent died before reporting
    rec = reconcile_loop(node_id, store, runtime)
    assert rec.run_once().sentence == f"reported {tid} running"
    task = get(store, tid)
    assert task.state == RUNNING
    assert (task.container_id, task.host_ports) == (started.container_id, started.host_ports)
    assert len(runtime.list_managed(node_id)) == 1


def test_stale_generation_is_replaced(store, node_id, runtime, test_image):
    tid = place(store, node_id, web(test_image))
    rec = reconcile_loop(node_id, store, runtime, stop_timeout=2)
    rec.run_once()
    old = get(store, tid)
    # The task is declared lost and placed again (here, on the same node): generation 2.
    store.submit(ReportTaskState(task_id=tid, node_id=node_id, generation=1, state=LOST), 5)
    store.submit(PlaceTasks(placements=(Placement(tid, node_id, 1),)), 5)
    assert get(store, tid).generation == 2
    assert rec.run_once().sentence == f"started {tid}; stopped {tid}; removed 1 container; reported {tid} running"
    (current,) = runtime.list_managed(node_id)
    assert current.generation == 2 and current.container_id != old.container_id
    assert get(store, tid).container_id == current.container_id


def test_missing_image_fails_the_task_with_the_reason(store, node_id, runtime):
    tid = place(store, node_id, TaskSpec(image="orion/not-here:1", memory=64 * MiB, pull_policy="never"))
    rec = reconcile_loop(node_id, store, runtime)
    assert rec.run_once().sentence.startswith(f"reported {tid} failed; errors: start {tid}: image orion/not-here:1")
    task = get(store, tid)
    assert task.state == FAILED
    assert task.reason == "image orion/not-here:1 not found locally (pull policy never)"


def test_exited_containers_report_failed_or_completed_and_are_cleaned_up(store, node_id, runtime, test_image,
                                                                         docker_client):
    # Each waits for /tmp/go, so both are surely running when first reported.
    def waiting(code: int) -> TaskSpec:
        script = f"while [ ! -e /tmp/go ]; do sleep 0.05; done; exit {code}"
        return TaskSpec(image=test_image, memory=16 * MiB, command=("sh", "-c", script))

    bad, good = place(store, node_id, waiting(3)), place(store, node_id, waiting(0))
    rec = reconcile_loop(node_id, store, runtime)
    assert rec.run_once().sentence == f"started {bad}, {good}; reported {bad} running, {good} running"
    for c in runtime.list_managed(node_id):
        docker_client.api.exec_start(docker_client.api.exec_create(c.container_id, ["touch", "/tmp/go"]))
    deadline = time.monotonic() + 15
    while not all(c.finished for c in runtime.list_managed(node_id)):
        assert time.monotonic() < deadline, runtime.list_managed(node_id)
        time.sleep(0.05)
    # Reports follow the containers' order (by task id).
    assert rec.run_once().sentence == "reported " + ", ".join(sorted([f"{bad} failed", f"{good} completed"]))
    assert (get(store, bad).state, get(store, good).state) == (FAILED, COMPLETED)
    assert (get(store, bad).exit_code, get(store, bad).reason) == (3, "exited with code 3")
    assert get(store, good).exit_code == 0
    # Over tasks leave this node's set, so their containers are removed on the next pass.
    assert rec.run_once().sentence == "removed 2 containers"
    assert runtime.list_managed(node_id) == []


def test_loop_wakes_at_once_when_the_store_changes(store, node_id, runtime, test_image):
    # A long interval: only the store's listener can make the second pass happen soon.
    rec = reconcile_loop(node_id, store, runtime, interval=300, stop_timeout=2)
    stop = threading.Event()
    thread = threading.Thread(target=rec.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while rec.passes < 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        tid = place(store, node_id, web(test_image))
        while get(store, tid).state != RUNNING:
            assert time.monotonic() < deadline, f"no wake-up: {rec.last_result}"
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
