"""Logs and host volumes on a real 3-node cluster with a real Docker engine.

One cluster for the module: node2 alone declares the host volume ``data`` (a
directory of this test), and every node serves at most one followed log, so the
follow limit and its release are visible with a single client.

* Logs: a task prints known lines; they are read through a node that does not
  run it (the request is forwarded to the owner); ``follow=1`` streams a line the
  task prints only after the request started, ends when the container ends, and
  a follow whose client left frees its slot.
* Volumes: a task writes to the host volume, is stopped, and a task started
  again on that node (the only one that has it) reads the data; a task asking
  for a volume no node has stays pending with a reason naming it; a raw host
  path in the body is refused with 400.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from harness import ORION, Cluster, Node, running

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

MEMORY = 32 * 1024 * 1024


@pytest.fixture(scope="module")
def volume_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("host-volume")
    path.chmod(0o777)
    return path


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory, docker_host, docker_client, volume_dir) -> Iterator[Cluster]:
    c = Cluster(root=tmp_path_factory.mktemp("cluster"), docker_host=docker_host,
                node_args=[[], ["--host-volume", f"data={volume_dir}"], []],
                extra_env={"ORION_MAX_LOG_FOLLOWS": "1"})
    with running(c, docker_client):
        yield c


@pytest.fixture(autouse=True)
def agent_logs_on_failure(request, cluster):
    request.node.orion_cluster = cluster  # conftest prints the agents' logs when a test fails


def run(cluster: Cluster, via: Node, command: str, **extra) -> dict:
    body = {"image": "orion/busybox:latest", "memory": MEMORY, "command": ["sh", "-c", command], **extra}
    resp = via.post("/tasks", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def wait_state(cluster: Cluster, via: Node, task_id: str, state: str, timeout: float = 30) -> dict:
    return cluster.wait(lambda: (t := via.get(f"/tasks/{task_id}").json())["state"] == state and t,
                        timeout, f"task {task_id} {state}")


def by_id(cluster: Cluster, node_id: str) -> Node:
    return next(n for n in cluster.nodes if n.id == node_id)


def elsewhere(cluster: Cluster, node_id: str) -> Node:
    return next(n for n in cluster.nodes if n.id != node_id)


def follow(via: Node, task_id: str) -> requests.Response:
    return requests.get(f"{via.url}/tasks/{task_id}/logs", params={"follow": "1"}, stream=True,
                        timeout=(5, 30))


def read_until(chunks: Iterator[bytes], wanted: bytes, timeout: float = 20) -> bytes:
    got = b""
    deadline = time.monotonic() + timeout
    while wanted not in got:
        assert time.monotonic() < deadline, f"{wanted!r} not streamed; got {got!r}"
        got += next(chunks)
    return got


# -- logs -------------------------------------------------------------------------------------------


def test_logs_are_read_through_a_node_that_does_not_run_the_task(cluster):
    task = run(cluster, cluster.nodes[0], "echo alpha; sleep 0.2; echo beta >&2; sleep 600")
    running = wait_state(cluster, cluster.nodes[0], task["id"], "running")
    via = elsewhere(cluster, running["nodeId"])
    resp = cluster.wait(lambda: (r := via.get(f"/tasks/{task['id']}/logs")).text == "alpha\nbeta\n" and r,
                        10, "both lines in the log")
    assert resp.headers["X-Orion-Node"] == running["nodeId"] != via.id
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert via.get(f"/tasks/{task['id']}/logs?tail=1").text == "beta\n"
    cli = subprocess.run([*ORION, "--addr", via.url, "logs", "-n", "1", task["id"]], capture_output=True,
                         text=True, timeout=30)
    assert (cli.returncode, cli.stdout) == (0, "beta\n"), cli.stderr
    missing = via.get("/tasks/nope/logs")
    assert (missing.status_code, missing.json()["field"]) == (404, "id")
    via.delete(f"/tasks/{task['id']}")


def test_a_task_without_a_container_is_409_naming_why(cluster):
    task = run(cluster, cluster.nodes[0], "true", memory=64 * 1024 ** 4)  # fits nowhere: stays pending
    # Reads are served by the node asked, from what it has applied: wait until node 2 has the create.
    cluster.wait(lambda: cluster.nodes[1].get(f"/tasks/{task['id']}").status_code == 200, 10,
                 "the create applied on the node asked")
    resp = cluster.nodes[1].get(f"/tasks/{task['id']}/logs")
    assert resp.status_code == 409 and resp.json()["field"] == "id"
    assert f"task {task['id']} has no container yet: it is pending" in resp.json()["error"]
    cluster.nodes[0].delete(f"/tasks/{task['id']}")


def test_follow_streams_a_line_printed_after_the_request_started(cluster, docker_client):
    # The task prints "gamma" only once told to, so that line is written after the follow started.
    task = run(cluster, cluster.nodes[0],
               "echo alpha; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo gamma; sleep 600")
    running = wait_state(cluster, cluster.nodes[0], task["id"], "running")
    via = elsewhere(cluster, running["nodeId"])
    stream = follow(via, task["id"])
    assert (stream.status_code, stream.headers["X-Orion-Node"]) == (200, running["nodeId"])
    chunks = stream.iter_content(chunk_size=None)
    assert read_until(chunks, b"alpha\n") == b"alpha\n"
    # One follow per node: a second one through the same node is refused while this one runs.
    busy = via.get(f"/tasks/{task['id']}/logs?follow=1")
    assert busy.status_code == 429 and "max_log_follows" in busy.json()["error"]
    docker_client.containers.get(running["containerId"]).exec_run(["touch", "/tmp/go"])
    assert read_until(chunks, b"gamma\n") == b"gamma\n"
    # The client goes away while the task is quiet: both nodes notice and free the slot.
    stream.close()
    again = cluster.wait(lambda: (r := follow(via, task["id"])).status_code == 200 and r, 10,
                         "a follow slot freed by the client that left")
    assert read_until(again.iter_content(chunk_size=None), b"gamma\n") == b"alpha\ngamma\n"
    # The container ends (the task is stopped): so does the followed log.
    via.delete(f"/tasks/{task['id']}")
    ended = time.monotonic()
    assert list(again.iter_content(chunk_size=None)) == []
    assert time.monotonic() - ended < 20
    again.close()


# -- host volumes -----------------------------------------------------------------------------------


def test_data_on_a_host_volume_is_there_when_a_task_starts_again_on_its_node(cluster, volume_dir):
    node2 = cluster.nodes[1]
    mount = [{"name": "data", "target": "/data"}]
    writer = run(cluster, cluster.nodes[0], "echo kept-$$ > /data/file; cat /data/file; sleep 600", volumes=mount)
    running = wait_state(cluster, cluster.nodes[0], writer["id"], "running")
    assert running["nodeId"] == node2.id  # the only node that declares the volume
    written = cluster.wait(lambda: (volume_dir / "file").exists() and (volume_dir / "file").read_text(), 10,
                           "the file on the host")
    assert written.startswith("kept-")
    assert node2.get(f"/tasks/{writer['id']}").json()["volumes"] == [
        {"source": "data", "target": "/data", "readOnly": False, "type": "host"}]
    cluster.nodes[0].delete(f"/tasks/{writer['id']}")
    wait_state(cluster, cluster.nodes[0], writer["id"], "stopped")

    reader = run(cluster, cluster.nodes[2], "cat /data/file; sleep 600",
                 volumes=[{"source": "data", "target": "/data", "readOnly": True}])
    again = wait_state(cluster, cluster.nodes[2], reader["id"], "running")
    assert again["nodeId"] == node2.id
    via = cluster.nodes[0]
    assert cluster.wait(lambda: via.get(f"/tasks/{reader['id']}/logs").text == written, 10,
                        "the data read back by the new task")
    via.delete(f"/tasks/{reader['id']}")


def test_a_services_replicas_mount_its_host_volume_where_it_is_declared(cluster, volume_dir):
    (volume_dir / "shared").write_text("for every replica\n")
    api = cluster.nodes[0]
    resp = api.post("/services", json={"name": "reader", "image": "orion/busybox:latest", "memory": MEMORY,
                                       "count": 2, "command": ["sh", "-c", "cat /data/shared; sleep 600"],
                                       "volumes": [{"source": "data", "target": "/data", "readOnly": True}]})
    assert resp.status_code == 201, resp.text
    replicas = cluster.wait(lambda: len(ts := [t for t in api.get("/tasks?service=reader").json()
                                               if t["state"] == "running"]) == 2 and ts, 60, "2 replicas running")
    assert {t["nodeId"] for t in replicas} == {cluster.nodes[1].id}  # the only node with the volume
    for t in replicas:
        assert cluster.wait(lambda t=t: api.get(f"/tasks/{t['id']}/logs").text == "for every replica\n", 10,
                            "the replica's output")
    assert api.delete("/services/reader").status_code == 200


def test_a_task_needing_a_volume_no_node_has_stays_pending_naming_it(cluster):
    task = run(cluster, cluster.nodes[0], "true", volumes=[{"source": "nowhere", "target": "/data"}])
    pending = cluster.wait(lambda: (t := cluster.nodes[2].get(f"/tasks/{task['id']}").json())["reason"] and t,
                           10, "a no-fit reason")
    assert (pending["state"], pending["reasonKind"]) == ("pending", "volume")
    assert pending["reason"] == "no alive node declares host volume nowhere"
    nodes = {n["id"]: n["hostVolumes"] for n in cluster.nodes[0].get("/nodes").json()}
    assert nodes == {cluster.nodes[0].id: [], cluster.nodes[1].id: ["data"], cluster.nodes[2].id: []}
    cluster.nodes[0].delete(f"/tasks/{task['id']}")


@pytest.mark.parametrize("mount,field", [
    ({"source": "/etc", "target": "/host-etc"}, "volumes[0].source"),
    ({"name": "etc/passwd", "target": "/x"}, "volumes[0].name"),
])
def test_a_raw_host_path_is_refused(cluster, mount, field):
    resp = cluster.nodes[0].post("/tasks", json={"image": "orion/busybox:latest", "memory": MEMORY,
                                                 "volumes": [mount]})
    assert resp.status_code == 400 and resp.json()["field"] == field and "host path" in resp.json()["error"]
