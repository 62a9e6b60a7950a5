"""DockerRuntime against the real engine (ORION_TEST_DOCKER_HOST): limits and
labels land in the container, ports are really published, failures come back
as short reasons, and listing is per node."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from harness import free_ports, http_get

from orion.domain.model import PortBinding, Task, TaskSpec, Volume
from orion.runtime import (
    ContainerGone,
    ContainerState,
    EngineUnreachable,
    LogQuery,
    NetworkAttachment,
    NetworkNotReady,
    RuntimeFailure,
)
from orion.runtime.create import NodePolicy
from orion.runtime.docker import DockerRuntime

pytestmark = pytest.mark.docker

MiB = 1024 * 1024


@pytest.fixture
def runtime(docker_host) -> Iterator[DockerRuntime]:
    rt = DockerRuntime(docker_host)
    yield rt
    rt.close()


def make_task(image: str, node: str, gen: int = 1, **spec) -> Task:
    spec.setdefault("memory", 64 * MiB)
    return Task(id=f"t-{uuid.uuid4().hex[:8]}", spec=TaskSpec(image=image, **spec), state="assigned",
                node_id=node, generation=gen)


def wait_status(rt: DockerRuntime, cid: str, status: str, deadline: float = 10.0) -> ContainerState:
    end = time.monotonic() + deadline
    while True:
        state = rt.inspect(cid)
        if state is not None and state.status == status or time.monotonic() > end:
            assert state is not None
            return state
        time.sleep(0.05)


def test_start_applies_limits_labels_and_no_engine_restarts(runtime, node_id, test_image, docker_client):
    task = make_task(test_image, node_id, gen=3, memory=96 * MiB, cpu_millis=250, env=(("GREETING", "hi"),))
    state = runtime.start(task, node_id)
    assert (state.task_id, state.generation, state.status) == (task.id, 3, "running")
    assert state.name == f"orion-{task.id}-g3"
    attrs = docker_client.api.inspect_container(state.container_id)
    host = attrs["HostConfig"]
    assert host["Memory"] == 96 * MiB
    assert host["NanoCpus"] == 250_000_000
    assert host["RestartPolicy"]["Name"] == "no"
    assert attrs["Config"]["Labels"] == {
        "orion.task": task.id, "orion.node": node_id, "orion.generation": "3", "orion.managed": "1",
    }
    assert "GREETING=hi" in attrs["Config"]["Env"]


def test_zero_cpu_means_no_cpu_limit(runtime, node_id, test_image, docker_client):
    state = runtime.start(make_task(test_image, node_id, cpu_millis=0), node_id)
    assert docker_client.api.inspect_container(state.container_id)["HostConfig"]["NanoCpus"] == 0


def test_static_host_port_is_published(runtime, node_id, test_image):
    (port,) = free_ports(1)
    task = make_task(test_image, node_id, ports=(PortBinding(80, "tcp", port),))
    state = runtime.start(task, node_id)
    assert state.host_ports == (("80/tcp", port),)
    assert http_get(port).strip() == "hello from orion"


def test_dynamic_host_port_is_chosen_by_the_engine_and_reported(runtime, node_id, test_image):
    state = runtime.start(make_task(test_image, node_id, ports=(PortBinding(80),)), node_id)
    ((key, port),) = state.host_ports
    assert key == "80/tcp" and port > 0
    assert http_get(port).strip() == "hello from orion"


def test_image_missing_with_pull_policy_never_is_a_clear_failure(runtime, node_id):
    task = make_task("orion/does-not-exist:1", node_id, pull_policy="never")
    with pytest.raises(RuntimeFailure) as info:
        runtime.start(task, node_id)
    assert str(info.value) == "image orion/does-not-exist:1 not found locally (pull policy never)"
    assert runtime.list_managed(node_id) == []


def test_image_missing_and_unpullable_names_the_pull_error(runtime, node_id):
    # A registry on a closed loopback port: the pull fails at once and never leaves this host.
    task = make_task("127.0.0.1:1/orion-missing:1", node_id)
    with pytest.raises(RuntimeFailure) as info:
        runtime.start(task, node_id)
    reason = str(info.value)
    assert reason.startswith("image 127.0.0.1:1/orion-missing:1 not found locally and pull failed: ")
    assert "connection refused" in reason and "\n" not in reason and "Traceback" not in reason
    assert runtime.list_managed(node_id) == []


def test_start_failure_leaves_no_container_behind(runtime, node_id, test_image):
    (port,) = free_ports(1)
    first = runtime.start(make_task(test_image, node_id, ports=(PortBinding(80, "tcp", port),)), node_id)
    assert first.status == "running"
    clash = make_task(test_image, node_id, ports=(PortBinding(80, "tcp", port),))
    with pytest.raises(RuntimeFailure, match=f"start of orion-{clash.id}-g1 failed: .*"):
        runtime.start(clash, node_id)
    assert [c.task_id for c in runtime.list_managed(node_id)] == [first.task_id]


def test_starting_the_same_generation_twice_adopts_the_running_container(runtime, node_id, test_image):
    task = make_task(test_image, node_id)
    first = runtime.start(task, node_id)
    again = runtime.start(task, node_id)
    assert again.container_id == first.container_id
    assert len(runtime.list_managed(node_id)) == 1


def test_list_managed_filters_by_node_and_shows_all_states(runtime, node_id, test_image):
    other = f"{node_id}-other"
    try:
        mine = runtime.start(make_task(test_image, node_id), node_id)
        done = runtime.start(make_task(test_image, node_id, command=("sh", "-c", "exit 3")), node_id)
        theirs = runtime.start(make_task(test_image, other), other)
        wait_status(runtime, done.container_id, "exited")
        listed = {c.container_id: c for c in runtime.list_managed(node_id)}
        assert set(listed) == {mine.container_id, done.container_id}
        assert listed[done.container_id].exit_code == 3
        assert listed[mine.container_id].exit_code is None
        assert [c.container_id for c in runtime.list_managed(other)] == [theirs.container_id]
    finally:
        for c in runtime.list_managed(other):
            runtime.remove(c.container_id)


def test_stop_then_remove_and_both_are_idempotent(runtime, node_id, test_image):
    state = runtime.start(make_task(test_image, node_id), node_id)
    runtime.stop(state.container_id, timeout=5)
    stopped = runtime.inspect(state.container_id)
    assert stopped is not None and stopped.status == "exited"
    runtime.stop(state.container_id, timeout=5)
    runtime.remove(state.container_id)
    runtime.remove(state.container_id)
    runtime.stop(state.container_id, timeout=5)
    assert runtime.inspect(state.container_id) is None


def test_engine_capacity_and_ping(runtime, docker_client):
    info = docker_client.info()
    cap = runtime.engine_capacity()
    assert cap.memory == info["MemTotal"] > 0
    assert cap.cpu_millis == info["NCPU"] * 1000
    assert runtime.ping()
    assert runtime.ping(timeout=1.0)  # the readiness loop bounds every ping


def test_unreachable_engine_is_a_short_failure_not_a_traceback(tmp_path):
    rt = DockerRuntime(f"unix://{tmp_path}/nothing.sock", timeout=2)
    assert rt.ping() is False
    assert rt.ping(timeout=0.5) is False
    with pytest.raises(RuntimeFailure, match="docker engine .*nothing.sock") as info:
        rt.list_managed("n")
    assert "\n" not in str(info.value)
    assert isinstance(info.value, EngineUnreachable)  # the reconciler retries, never fails a task on it
    with pytest.raises(EngineUnreachable):
        rt.start(Task(id="t1", spec=TaskSpec(image="orion/busybox:latest", memory=8 << 20)), "n")


# -- volumes ------------------------------------------------------------------------------------

def test_a_host_volume_is_the_declared_path_and_read_only_means_it(docker_host, node_id, test_image, tmp_path):
    (tmp_path / "seed").write_text("from the host\n")
    rt = DockerRuntime(docker_host, policy=NodePolicy(host_volumes={"data": str(tmp_path)}))
    try:
        writer = rt.start(make_task(test_image, node_id, command=("sh", "-c", "cat /data/seed > /data/copy"),
                                    volumes=(Volume("data", "/data"),)), node_id)
        assert wait_status(rt, writer.container_id, "exited").exit_code == 0
        assert (tmp_path / "copy").read_text() == "from the host\n"
        reader = rt.start(make_task(test_image, node_id, command=("sh", "-c", "touch /ro/x"),
                                    volumes=(Volume("data", "/ro", read_only=True),)), node_id)
        assert wait_status(rt, reader.container_id, "exited").exit_code != 0
        assert not (tmp_path / "x").exists()
    finally:
        rt.close()


def test_an_undeclared_host_volume_fails_the_start_and_names_it(runtime, node_id, test_image):
    task = make_task(test_image, node_id, volumes=(Volume("nowhere", "/data"),))
    with pytest.raises(RuntimeFailure, match=f"host volume nowhere is not declared on node {node_id}"):
        runtime.start(task, node_id)
    assert runtime.list_managed(node_id) == []


def test_a_docker_volume_outlives_its_container(runtime, node_id, test_image, docker_client):
    name = f"orion-test-{uuid.uuid4().hex[:8]}"
    try:
        first = runtime.start(make_task(test_image, node_id, command=("sh", "-c", "echo kept > /v/f"),
                                        volumes=(Volume(name, "/v", type="volume"),)), node_id)
        wait_status(runtime, first.container_id, "exited")
        runtime.remove(first.container_id)
        second = runtime.start(make_task(test_image, node_id, command=("cat", "/v/f"),
                                         volumes=(Volume(name, "/v", type="volume"),)), node_id)
        wait_status(runtime, second.container_id, "exited")
        assert b"".join(runtime.logs(second.container_id, LogQuery())) == b"kept\n"
        runtime.remove(second.container_id)
    finally:
        docker_client.volumes.get(name).remove(force=True)


# -- logs ---------------------------------------------------------------------------------------

def test_logs_tail_and_stderr(runtime, node_id, test_image):
    # The engine copies stdout and stderr on separate pipes, so lines written to both at once
    # may be logged in either order; the pause makes the order the test asserts the real one.
    script = "for i in 1 2 3 4 5; do echo out$i; done; sleep 1; echo err >&2"
    state = runtime.start(make_task(test_image, node_id, command=("sh", "-c", script)), node_id)
    wait_status(runtime, state.container_id, "exited")
    assert b"".join(runtime.logs(state.container_id, LogQuery())) == b"out1\nout2\nout3\nout4\nout5\nerr\n"
    assert b"".join(runtime.logs(state.container_id, LogQuery(tail=2))) == b"out5\nerr\n"
    stamped = b"".join(runtime.logs(state.container_id, LogQuery(tail=1, timestamps=True))).decode()
    assert stamped.endswith(" err\n") and stamped[:4].isdigit()


def test_a_follow_streams_new_lines_and_close_ends_it_from_another_thread(runtime, node_id, test_image):
    state = runtime.start(make_task(test_image, node_id, command=("sh", "-c", "echo first; sleep 600")), node_id)
    stream = runtime.logs(state.container_id, LogQuery(follow=True))
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.extend(stream), daemon=True)
    reader.start()
    deadline = time.monotonic() + 10
    while b"first\n" not in b"".join(got) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b"".join(got) == b"first\n"
    stream.close()  # the container prints nothing more: only close() can end this iteration
    reader.join(timeout=5)
    assert not reader.is_alive()


def test_logs_of_a_removed_container_say_it_is_gone(runtime, node_id, test_image):
    state = runtime.start(make_task(test_image, node_id, command=("true",)), node_id)
    wait_status(runtime, state.container_id, "exited")
    runtime.remove(state.container_id)
    with pytest.raises(ContainerGone):
        runtime.logs(state.container_id, LogQuery())


@pytest.fixture
def overlay_net(docker_client) -> Iterator[str]:
    """A bridge network of this test's own standing in for the overlay's ``orion`` (the shared
    engine's ``orion`` belongs to whoever runs the demo)."""
    name = f"orion-rt-{uuid.uuid4().hex[:8]}"
    docker_client.networks.create(name, driver="bridge")
    yield name
    for c in docker_client.containers.list(all=True, filters={"network": name}):
        c.remove(force=True)
    docker_client.networks.get(name).remove()


def test_a_task_on_the_overlay_gets_its_network_resolver_and_reports_its_address(
        runtime, node_id, test_image, docker_client, overlay_net):
    net = docker_client.api.inspect_network(overlay_net)
    gateway = net["IPAM"]["Config"][0]["Gateway"]
    attach = NetworkAttachment(overlay_net, (gateway,), ("service.orion", "orion"))
    port = free_ports(1)[0]
    task = make_task(test_image, node_id, ports=(PortBinding(80, "tcp", port),))
    state = runtime.start(task, node_id, network=attach)
    attrs = docker_client.api.inspect_container(state.container_id)
    assert list(attrs["NetworkSettings"]["Networks"]) == [overlay_net]  # its only network
    assert state.ip == attrs["NetworkSettings"]["Networks"][overlay_net]["IPAddress"] != ""
    assert attrs["HostConfig"]["Dns"] == [gateway]
    assert attrs["HostConfig"]["DnsSearch"] == ["service.orion", "orion"]
    assert attrs["Config"]["Labels"]["orion.network"] == overlay_net
    assert runtime.list_managed(node_id)[0].ip == state.ip  # read back after a restart too
    assert http_get(port) == "hello from orion\n"  # port bindings still work on the network


def test_a_task_whose_network_does_not_exist_yet_waits_instead_of_failing(runtime, node_id, test_image):
    attach = NetworkAttachment(f"orion-absent-{uuid.uuid4().hex[:8]}", ("10.42.9.1",), ("service.orion",))
    with pytest.raises(NetworkNotReady, match="does not exist on this engine yet"):
        runtime.start(make_task(test_image, node_id), node_id, network=attach)
    assert runtime.list_managed(node_id) == []


def test_the_engine_id_is_the_hosts_key(runtime, docker_client):
    assert runtime.engine_id() == docker_client.info()["ID"]


def test_the_engines_event_stream_tells_of_a_node_s_container_dying_and_no_other(runtime, node_id, test_image,
                                                                              docker_client):
    """watch_exits: the reconciler's wake on a crash (a container of this node dies), from the
    engine's events; a container of another node says nothing."""
    heard: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=runtime.watch_exits, args=(node_id, lambda: heard.append(time.monotonic()),
                                                                   stop), daemon=True)
    watcher.start()
    mine = runtime.start(make_task(test_image, node_id, command=("sleep", "60")), node_id)
    other = docker_client.containers.run(test_image, ["true"], labels={"orion.node": node_id + "-other"},
                                         detach=True)
    try:
        other.wait(timeout=10)
        time.sleep(0.5)
        assert heard == []  # another node's container died: not ours
        killed = time.monotonic()
        docker_client.api.kill(mine.container_id)
        deadline = killed + 5
        while not heard and time.monotonic() < deadline:
            time.sleep(0.01)
        assert heard and heard[0] - killed < 2, heard
    finally:
        stop.set()
        other.remove(force=True)
        runtime.remove(mine.container_id)
