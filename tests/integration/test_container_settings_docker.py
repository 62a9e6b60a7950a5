"""Every container setting reaches the container as asked, on the real engine (ORION_TEST_DOCKER_HOST).

Each task is built from a request body by the API's own parser, so the whole path is exercised:
body -> ``TaskSpec`` -> ``create_args`` -> the engine -> ``docker inspect`` (and, where the
process can show it, what the container itself sees). One test per group of settings: the
process, security, resources, metadata. Then the stop: a node stopping a task sends the task's
stop signal and waits its grace period (timed against a container that traps the signal).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from parts import reconcile_loop

from orion.api.schema.tasks import parse_task_request
from orion.domain.model import RUNNING, STOPPED, NodeInfo, Resources, Task
from orion.runtime import LogQuery, RuntimeFailure
from orion.runtime.create import NodePolicy, create_args
from orion.runtime.docker import DockerRuntime
from orion.state.commands import CreateTask, Placement, PlaceTasks, RegisterNode, StopTask
from orion.store.local import LocalStore

pytestmark = pytest.mark.docker

# Devices every Linux host has: handed to a container under another name, read-only.
DEVICE = "/dev/zero"


@pytest.fixture
def runtime(docker_host) -> Iterator[DockerRuntime]:
    rt = DockerRuntime(docker_host, policy=NodePolicy(host_devices=frozenset({DEVICE}), allow_privileged=True))
    yield rt
    rt.close()


def task_from(body: dict, image: str, node: str) -> Task:
    spec = parse_task_request({"image": image, "memory": "64M", **body})
    return Task(id=f"t-{uuid.uuid4().hex[:8]}", spec=spec, state="assigned", node_id=node, generation=1)


def run(runtime: DockerRuntime, docker_client, body: dict, image: str, node: str) -> tuple[dict, str]:
    """Start the task's container, let it finish; (docker inspect, its output)."""
    state = runtime.start(task_from(body, image, node), node)
    deadline = time.monotonic() + 20
    while (attrs := docker_client.api.inspect_container(state.container_id))["State"]["Running"]:
        assert time.monotonic() < deadline, "the container did not finish"
        time.sleep(0.05)
    output = b"".join(runtime.logs(state.container_id, LogQuery())).decode()
    assert attrs["State"]["ExitCode"] == 0, output
    return attrs, output


def created(runtime: DockerRuntime, docker_client, task: Task, node: str) -> dict:
    """The task's container created (not started) with the runtime's own arguments: docker inspect."""
    host, create = create_args(task, node, runtime.policy)
    create["host_config"] = docker_client.api.create_host_config(**host)
    cid = docker_client.api.create_container(**create)["Id"]
    try:
        return docker_client.api.inspect_container(cid)
    finally:
        docker_client.api.remove_container(cid, force=True)


def test_process_settings_user_workdir_entrypoint_command_init_signal_hostname(
        runtime, docker_client, test_image, node_id):
    attrs, output = run(runtime, docker_client, {
        "user": "1000:1001", "workingDir": "/tmp/work", "entrypoint": ["/bin/sh", "-c"],
        "command": ["echo uid=$(id -u) gid=$(id -g) pwd=$(pwd) host=$(hostname) pid1=$(cat /proc/1/comm)"],
        "init": False, "stopSignal": "SIGUSR1", "hostname": "web-1"}, test_image, node_id)
    config, host = attrs["Config"], attrs["HostConfig"]
    assert (config["User"], config["WorkingDir"], config["Hostname"]) == ("1000:1001", "/tmp/work", "web-1")
    assert (config["Entrypoint"], config["Cmd"]) == (["/bin/sh", "-c"], [
        "echo uid=$(id -u) gid=$(id -g) pwd=$(pwd) host=$(hostname) pid1=$(cat /proc/1/comm)"])
    assert (host["Init"], config["StopSignal"]) == (False, "SIGUSR1")
    # What the process itself sees: no init as PID 1, the shell is (the agent's default is the engine's init).
    assert output.strip() == "uid=1000 gid=1001 pwd=/tmp/work host=web-1 pid1=sh"
    attrs, output = run(runtime, docker_client, {"command": "cat /proc/1/comm", "entrypoint": ""}, test_image,
                        node_id)
    assert attrs["HostConfig"]["Init"] is True and attrs["Config"]["Entrypoint"] is None  # "" cleared it
    assert output.strip() == "docker-init"


def test_security_settings_capabilities_privileged_read_only_sysctls_devices(
        runtime, docker_client, test_image, node_id):
    attrs, output = run(runtime, docker_client, {
        "capAdd": ["NET_ADMIN", "sys_time"], "capDrop": ["CHOWN", "CAP_MKNOD"], "readOnly": True,
        "sysctls": {"net.core.somaxconn": 1234}, "devices": [f"{DEVICE}:/dev/orion-zero:r"],
        "command": ["sh", "-c", "cat /proc/sys/net/core/somaxconn; touch /x 2>/dev/null || echo read-only; "
                                "grep CapEff /proc/self/status; test -c /dev/orion-zero && echo device"]},
        test_image, node_id)
    host = attrs["HostConfig"]
    assert (sorted(host["CapAdd"]), sorted(host["CapDrop"])) == (["NET_ADMIN", "SYS_TIME"], ["CHOWN", "MKNOD"])
    assert (host["ReadonlyRootfs"], host["Privileged"]) == (True, False)
    assert host["Sysctls"] == {"net.core.somaxconn": "1234"}
    assert host["Devices"] == [{"PathOnHost": DEVICE, "PathInContainer": "/dev/orion-zero", "CgroupPermissions": "r"}]
    lines = output.split()
    assert lines[:2] == ["1234", "read-only"] and lines[-1] == "device"
    caps = int(lines[3], 16)
    assert caps & (1 << 12) and caps & (1 << 25)  # CAP_NET_ADMIN and CAP_SYS_TIME added
    assert not caps & (1 << 0) and not caps & (1 << 27)  # CAP_CHOWN and CAP_MKNOD dropped
    privileged = task_from({"privileged": True, "command": "grep CapEff /proc/self/status"}, test_image, node_id)
    assert created(runtime, docker_client, privileged, node_id)["HostConfig"]["Privileged"] is True
    try:
        state = runtime.start(privileged, node_id)
    except RuntimeFailure as exc:
        # An engine that itself runs without every capability (CI's runs in a container) cannot
        # start a privileged container; what it was asked to create is checked above.
        assert "unable to apply caps: operation not permitted" in str(exc), exc
    else:
        assert docker_client.api.inspect_container(state.container_id)["HostConfig"]["Privileged"] is True
    # A node that hands out neither refuses them at start (its config changed since placement).
    strict = DockerRuntime(runtime.docker_host)
    try:
        with pytest.raises(RuntimeFailure, match=f"device {DEVICE} is not handed out by node {node_id}"):
            strict.start(task_from({"devices": [DEVICE]}, test_image, node_id), node_id)
        with pytest.raises(RuntimeFailure, match="does not run privileged containers"):
            strict.start(task_from({"privileged": True}, test_image, node_id), node_id)
    finally:
        strict.close()


def test_resource_settings_ulimits_shm_size_cpu_shares_tmpfs(runtime, docker_client, test_image, node_id):
    attrs, output = run(runtime, docker_client, {
        "ulimits": {"nofile": {"soft": 1024, "hard": 2048}, "nproc": 512}, "shmSize": "96M", "cpuShares": 512,
        "tmpfs": ["/run:size=8M,mode=1770,noexec"],
        "command": ["sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u; grep -E ' /(dev/shm|run) ' /proc/mounts"]},
        test_image, node_id)
    host = attrs["HostConfig"]
    assert sorted(host["Ulimits"], key=lambda u: u["Name"]) == [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                                                                {"Name": "nproc", "Soft": 512, "Hard": 512}]
    assert (host["ShmSize"], host["CpuShares"]) == (96 << 20, 512)
    assert host["Tmpfs"] == {"/run": "size=8388608,mode=1770,noexec"}
    lines = output.splitlines()
    assert lines[:3] == ["1024", "2048", "512"]
    shm = next(line for line in lines if " /dev/shm " in line)
    run_mount = next(line for line in lines if " /run " in line)
    assert "size=98304k" in shm
    assert "size=8192k" in run_mount and "mode=1770" in run_mount and "noexec" in run_mount


def test_metadata_settings_labels_logging_extra_hosts(runtime, docker_client, test_image, node_id):
    attrs, output = run(runtime, docker_client, {
        "labels": {"com.example.team": "payments", "tier": "web"},
        "logging": {"driver": "json-file", "options": {"max-size": "1m", "max-file": "2"}},
        "extraHosts": ["db:10.0.0.5", "v6=fd00::1"], "command": "cat /etc/hosts"}, test_image, node_id)
    labels = attrs["Config"]["Labels"]
    assert {k: labels[k] for k in ("com.example.team", "tier")} == {"com.example.team": "payments", "tier": "web"}
    assert labels["orion.node"] == node_id and labels["orion.managed"] == "1"  # Orion's own are intact
    assert attrs["HostConfig"]["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m", "max-file": "2"}}
    assert sorted(attrs["HostConfig"]["ExtraHosts"]) == ["db:10.0.0.5", "v6:fd00::1"]
    hosts = {tuple(line.split()[:2]) for line in output.splitlines() if line.strip()}
    assert {("10.0.0.5", "db"), ("fd00::1", "v6")} <= hosts


# -- the node's stop ---------------------------------------------------------------------------
# Traps SIGUSR1 (says so, takes a second, exits 0) and ignores SIGTERM: only the right signal ends it early.
TRAPPER = ["sh", "-c", "trap 'echo got USR1; sleep 1; exit 0' USR1; trap '' TERM; "
                       "echo ready; while true; do sleep 0.1; done"]


@pytest.fixture
def store(node_id) -> LocalStore:
    s = LocalStore()
    s.submit(RegisterNode(node=NodeInfo(node_id, "127.0.0.1:1", "127.0.0.1:2", capacity=Resources(4 << 30, 4000))), 5)
    return s


def started(store: LocalStore, runtime: DockerRuntime, node_id: str, body: dict, image: str) -> tuple[str, object]:
    tid = f"t-{uuid.uuid4().hex[:8]}"
    spec = parse_task_request({"image": image, "memory": "64M", "command": TRAPPER, **body})
    store.submit(CreateTask(task_id=tid, spec=spec), 5)
    store.submit(PlaceTasks(placements=(Placement(tid, node_id, 0),)), 5)
    loop = reconcile_loop(node_id, store, runtime, stop_timeout=30.0)  # the node's default: far longer
    first = loop.run_once()
    assert first.acted, first
    task = store.read(lambda m: m.task(tid))[0]
    assert task.state == RUNNING, first  # started and reported in the one pass
    cid = task.container_id
    deadline = time.monotonic() + 10
    while b"ready" not in b"".join(runtime.logs(cid, LogQuery())):  # the traps are set
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return tid, loop


def timed_stop(store: LocalStore, loop, tid: str) -> float:
    store.submit(StopTask(task_id=tid), 5)
    began = time.monotonic()
    result = loop.run_once()
    elapsed = time.monotonic() - began
    assert result.acted, result
    assert store.read(lambda m: m.task(tid))[0].state == STOPPED, result  # stopped and reported in the one pass
    return elapsed


def test_the_node_stops_with_the_tasks_signal_and_waits_its_grace(store, runtime, docker_client, test_image,
                                                                   node_id):
    # SIGUSR1 is sent (not SIGTERM, which the task ignores): it ends in about the second its trap takes.
    tid, loop = started(store, runtime, node_id, {"stopSignal": "SIGUSR1", "stopGracePeriod": "20s"}, test_image)
    cid = store.read(lambda m: m.task(tid))[0].container_id
    elapsed = timed_stop(store, loop, tid)
    assert 0.9 <= elapsed < 10, elapsed
    assert docker_client.api.containers(all=True, filters={"id": cid}) == []  # stopped and removed
    # SIGTERM is ignored: the node waits the task's grace (3 s), not its own stop_timeout (30 s), then kills.
    tid, loop = started(store, runtime, node_id, {"stopGracePeriod": "3s"}, test_image)
    elapsed = timed_stop(store, loop, tid)
    assert 2.9 <= elapsed < 15, elapsed
