"""A real 3-node cluster: agents under gunicorn, pysyncobj over TCP, a real dockerd.

These tests follow a task from ``POST /tasks`` on a follower to a container
that answers on its port, through a node's SIGKILL and restart, and into a
cluster that lost its quorum.
"""

from __future__ import annotations

import time

import pytest
import requests
from harness import Cluster, free_ports

pytestmark = [pytest.mark.docker, pytest.mark.cluster]


def _follower(cluster: Cluster):
    leader = cluster.wait(cluster.leader, 20, "a leader")
    return next(n for n in cluster.live() if n is not leader)


def _task(cluster: Cluster, node, task_id: str, catching_up: bool = False) -> dict | None:
    """The task as ``node`` sees it. ``catching_up``: a node just restarted may not know it yet
    (pysyncobj saves its commit index about once a second, so a SIGKILLed node replays up to
    that point and learns the rest from the leader): None until it does."""
    resp = node.get(f"/tasks/{task_id}")
    if catching_up and resp.status_code == 404:
        return None
    assert resp.status_code == 200, resp.text
    return resp.json()


def _wait_state(cluster: Cluster, node, task_id: str, state: str, timeout: float = 30,
                catching_up: bool = False) -> dict:
    return cluster.wait(lambda: (t := _task(cluster, node, task_id, catching_up)) and t["state"] == state and t,
                        timeout, f"task {task_id} {state}")


def _containers(client, task_id: str):
    return client.containers.list(all=True, filters={"label": f"orion.task={task_id}"})


def test_task_runs_with_limits_and_answers_on_its_port(cluster, docker_client, test_image):
    node = _follower(cluster)
    (host_port,) = free_ports(1)
    resp = node.post("/tasks", json={"image": test_image, "memory": 64 * 1024 * 1024, "cpu": 0.25,
                                     "portBindings": {"80/tcp": str(host_port)}})
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert task["nodeId"] in {n.id for n in cluster.nodes}
    running = _wait_state(cluster, node, task["id"], "running")
    assert running["ports"] == {"80/tcp": host_port}

    (container,) = _containers(docker_client, task["id"])
    host_config = container.attrs["HostConfig"]
    assert host_config["Memory"] == 64 * 1024 * 1024
    assert host_config["NanoCpus"] == 250_000_000
    assert container.labels["orion.node"] == task["nodeId"]
    body = cluster.wait(lambda: requests.get(f"http://127.0.0.1:{host_port}/", timeout=2).text,
                        15, "the container to answer")
    assert "hello from orion" in body

    # Every node reads the same task from its own replica.
    for other in cluster.nodes:
        assert _task(cluster, other, task["id"])["state"] in ("running", "assigned")

    resp = node.delete(f"/tasks/{task['id']}")
    assert resp.status_code in (200, 202), resp.text
    _wait_state(cluster, node, task["id"], "stopped")
    cluster.wait(lambda: all(c.status != "running" for c in _containers(docker_client, task["id"])),
                 20, "container stopped")


def test_dynamic_port_is_reported_back(cluster, test_image):
    node = cluster.nodes[0]
    resp = node.post("/tasks", json={"image": test_image, "memory": 32 * 1024 * 1024,
                                     "portBindings": {"80/tcp": ""}})
    assert resp.status_code == 201, resp.text
    running = _wait_state(cluster, node, resp.json()["id"], "running")
    port = running["ports"]["80/tcp"]
    assert isinstance(port, int) and port > 0
    body = cluster.wait(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=2).text, 15, "an answer")
    assert "hello from orion" in body


def test_join_through_the_api_address_still_works(cluster, tmp_path):
    """--join with an API address (no gossip there) falls back to the HTTP join, and the
    new node then joins gossip through the registry: both views list it."""
    from harness import Cluster

    (tmp_path / "extra").mkdir()
    extra = Cluster(root=tmp_path / "extra", docker_host=cluster.docker_host, size=1, secret=cluster.secret)
    node = extra.nodes[0]
    node.id = f"node4-{cluster.tag}"
    cluster.nodes.append(node)  # so a failure prints its log and the fixture stops it
    cluster.start_node(node, join_addr=f"127.0.0.1:{cluster.nodes[0].port}")
    cluster.wait(node.healthy, 60, "node4 healthy")
    assert node.raft_addr in cluster.nodes[0].get("/raft").json()["members"]

    def gossip_sees_node4() -> bool:
        nodes = {n["id"]: n for n in cluster.nodes[1].get("/nodes").json()}
        return nodes.get(node.id, {}).get("gossip", {}).get("state") == "alive"

    cluster.wait(gossip_sees_node4, 20, "node2's gossip view to list node4 alive")


def test_beyond_the_voter_cap_a_node_joins_as_a_non_voting_replica(request, tmp_path, docker_host, docker_client,
                                                                   test_image):
    """With voter_cap 3 and three voters, a fourth node replicates without voting: it is
    not a Raft member, yet it reads the state, forwards writes and runs its tasks."""
    capped = Cluster(root=tmp_path, docker_host=docker_host, size=4, extra_env={"ORION_VOTER_CAP": "3"},
                     labels=[{}, {}, {}, {"tier": "edge"}])
    request.node.orion_cluster = capped
    first, fourth = capped.nodes[0], capped.nodes[3]
    try:
        capped.start_node(first, bootstrap=True)
        capped.wait(first.healthy, 60, "first node healthy")
        for node in capped.nodes[1:3]:
            capped.start_node(node, join=first)
        capped.wait(lambda: len(first.get("/raft").json()["members"]) == 3, 60, "three voters")
        capped.start_node(fourth, join=first)
        capped.wait(fourth.healthy, 60, "the fourth node healthy")
        raft = fourth.get("/raft").json()
        assert raft["voter"] is False
        assert fourth.raft_addr not in raft["members"] and len(raft["members"]) == 3
        resp = fourth.post("/tasks", json={"image": test_image, "memory": 16 * 1024 * 1024,
                                           "nodeSelectors": {"tier": "edge"}})
        assert resp.status_code == 201, resp.text
        running = _wait_state(capped, first, resp.json()["id"], "running")
        assert running["nodeId"] == fourth.id
    finally:
        capped.stop()
        for node in capped.nodes:
            for c in docker_client.containers.list(all=True, filters={"label": f"orion.node={node.id}"}):
                c.remove(force=True)


def test_no_fit_is_pending_with_a_reason(cluster, test_image):
    resp = cluster.nodes[1].post("/tasks", json={"image": test_image, "memory": 100 * 1024**4})
    assert resp.status_code == 201, resp.text
    task_id = resp.json()["id"]
    task = cluster.wait(lambda: (t := _task(cluster, cluster.nodes[1], task_id))["reason"] and t,
                        10, "a no-fit reason")
    assert task["state"] == "pending"
    assert "free memory" in task["reason"]


def test_sigkill_and_restart_keeps_state_and_adopts_containers(cluster, docker_client, test_image):
    leader = cluster.wait(cluster.leader, 20, "a leader")
    resp = leader.post("/tasks", json={"image": test_image, "memory": 32 * 1024 * 1024})
    assert resp.status_code == 201, resp.text
    task_id = resp.json()["id"]
    running = _wait_state(cluster, leader, task_id, "running")
    owner = next(n for n in cluster.nodes if n.id == running["nodeId"])
    (before,) = _containers(docker_client, task_id)

    cluster.kill(owner)
    time.sleep(1.0)
    cluster.restart(owner)
    # The restarted node still has the task in its own replica...
    after = _wait_state(cluster, owner, task_id, "running", catching_up=True)
    assert after["nodeId"] == owner.id
    # ...and adopted the running container instead of starting a second one.
    time.sleep(2.0)  # two reconcile periods: a duplicate would have been started by now
    containers = _containers(docker_client, task_id)
    assert [c.id for c in containers] == [before.id]
    assert containers[0].status == "running"


def test_loss_of_quorum_refuses_writes_with_503(cluster, test_image):
    survivor = cluster.nodes[0]
    for node in cluster.nodes[1:]:
        cluster.kill(node)
    cluster.wait(lambda: survivor.get("/health", timeout=2).status_code == 503, 20, "health to report no leader")
    resp = survivor.post("/tasks", json={"image": test_image, "memory": 32 * 1024 * 1024}, timeout=30)
    assert resp.status_code == 503, resp.text
    assert "quorum" in resp.json()["error"]
    # Nothing was half-written: once quorum returns, no task exists from that request.
    for node in cluster.nodes[1:]:
        cluster.restart(node)
    cluster.wait(lambda: survivor.get("/health").status_code == 200, 30, "quorum back")
    assert survivor.get("/tasks").json() == []
