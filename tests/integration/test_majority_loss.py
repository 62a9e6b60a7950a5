"""Recovery after losing a majority, on a real 3-node cluster over loopback and a real engine.

Two agents are SIGKILLed and their data dirs and containers deleted (hosts gone for good);
``orion operator raft recover`` turns the survivor's data dir into a one-voter cluster; two
fresh agents join it. Then: three voters, every service with its versions and every task still
there, the dead nodes' work running again, and the survivor's containers never stopped. Before
that, recover refuses while a quorum answers, and while the agent itself runs.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pytest
from harness import ORION, Cluster, Node, running
from service_kit import web_spec

pytestmark = [pytest.mark.docker, pytest.mark.cluster]


def recover(node: Node) -> subprocess.CompletedProcess:
    return subprocess.run([*ORION, "operator", "raft", "recover", "--data-dir", str(node.data_dir),
                           "--raft-addr", node.raft_addr], capture_output=True, text=True, timeout=60)


def containers(client, node: Node) -> dict[str, tuple[str, str]]:
    """Running containers labelled with ``node``: id -> (task, start time)."""
    out = {}
    for c in client.containers.list(filters={"label": f"orion.node={node.id}"}):
        out[c.id] = (c.labels["orion.task"], c.attrs["State"]["StartedAt"])
    return out


def all_running(node: Node, expected: set[str]) -> bool:
    tasks = {t["id"]: t for t in node.get("/v1/tasks").json()}
    return expected <= set(tasks) and all(tasks[i]["state"] == "running" for i in expected)


def test_a_survivor_becomes_a_cluster_again_with_everything_and_its_containers_untouched(
        request, tmp_path, docker_host, docker_client, test_image):
    cluster = Cluster(root=tmp_path, docker_host=docker_host, extra_env={"ORION_NODE_DEAD_AFTER": "2"})
    request.node.orion_cluster = cluster
    with running(cluster, docker_client):
        first = cluster.nodes[0]
        assert first.post("/v1/services", json=web_spec("1")).status_code == 201
        resp = first.put("/v1/services/web", json=web_spec("2"))
        assert resp.status_code == 201, resp.text
        lone = first.post("/v1/tasks", json={"image": test_image, "memory": "16M", "count": 3})
        assert lone.status_code == 201, lone.text
        cluster.wait(lambda: first.get("/v1/services/web").json()["deployment"]["state"] == "successful", 90,
                     "version 2 rolled out")
        wanted = {t["id"] for t in first.get("/v1/tasks").json() if t["desired"] == "run"}
        cluster.wait(lambda: all_running(first, wanted), 60, "every task running")
        services_before = first.get("/v1/services").json()
        versions_before = first.get("/v1/services/web/versions").json()

        # While a quorum answers, recover refuses: on a live agent, and on a stopped one.
        survivor, *lost = cluster.nodes
        refused = recover(survivor)
        assert refused.returncode == 1 and "the agent still runs" in refused.stderr
        cluster.kill(survivor, signal.SIGTERM)
        refused = recover(survivor)
        assert refused.returncode == 1 and "a quorum is reachable: 3 of 3 voters" in refused.stderr
        cluster.restart(survivor)

        # Two hosts gone for good: agents SIGKILLed, data and containers deleted.
        kept = cluster.wait(lambda: containers(docker_client, survivor) or None, 30, "the survivor's containers")
        for node in lost:
            cluster.kill(node)
            shutil.rmtree(node.data_dir)
            for c in docker_client.containers.list(all=True, filters={"label": f"orion.node={node.id}"}):
                c.remove(force=True)
        cluster.wait(lambda: survivor.get("/health", timeout=2).status_code == 503, 30, "no quorum left")

        cluster.kill(survivor, signal.SIGTERM)  # systemctl stop orion
        done = recover(survivor)
        assert done.returncode == 0, done.stderr
        assert "is now the only voter" in done.stdout
        cluster.restart(survivor)
        assert survivor.get("/v1/raft").json()["members"] == [survivor.raft_addr]
        assert {t["id"] for t in survivor.get("/v1/tasks").json()} >= wanted
        assert survivor.get("/v1/services/web/versions").json() == versions_before

        # Fresh hosts join the survivor, as site.yml's members would.
        (tmp_path / "new").mkdir()
        extra = Cluster(root=tmp_path / "new", docker_host=docker_host, size=2, secret=cluster.secret,
                        tag=cluster.tag)
        for i, node in enumerate(extra.nodes):
            node.id = f"node{4 + i}-{cluster.tag}"
            cluster.nodes.append(node)  # logs on failure; stopped and cleaned with the cluster
            cluster.start_node(node, join=survivor)
        cluster.wait(lambda: len(survivor.get("/v1/raft").json()["members"]) == 3, 90, "three voters again")

        def lost_are_dead() -> bool:
            statuses = {n["id"]: n["status"] for n in survivor.get("/v1/nodes").json()}
            return all(statuses[n.id] == "dead" for n in lost)

        cluster.wait(lost_are_dead, 30, "the lost nodes declared dead")
        cluster.wait(lambda: all_running(survivor, wanted), 90, "the dead nodes' tasks running again")
        tasks = survivor.get("/v1/tasks").json()
        assert not any(t["nodeId"] in {n.id for n in lost} and t["desired"] == "run" for t in tasks)
        assert [(s["name"], s["version"]) for s in survivor.get("/v1/services").json()] == \
            [(s["name"], s["version"]) for s in services_before]

        # The survivor's containers never stopped: the same ones, started when they were.
        now = containers(docker_client, survivor)
        assert {cid: now.get(cid) for cid in kept} == kept
        time.sleep(0.1)
