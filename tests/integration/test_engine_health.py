"""Engine health is node health: real agents, one real Docker engine per node.

The engine of one node is SIGKILLed while its agent keeps running (and keeps
gossiping alive): after ``engine_down_grace`` the node reports itself not ready,
the leader moves its tasks, and when the engine comes back the node is ready
again and the stale copies are fenced: exactly one container per task runs
across every engine.
"""

from __future__ import annotations

import time

import pytest
from selfheal_kit import HealCluster

pytestmark = [pytest.mark.docker, pytest.mark.cluster]
# Each node's engine publishes on its own address (tests/integration/conftest.py, engines).
PUBLISH_ON_NODE_IPS = True

MiB = 1024 * 1024


def node_row(hc: HealCluster, node_id: str) -> dict:
    return next(n for n in hc.api().get("/nodes").json() if n["id"] == node_id)


def test_a_node_whose_engine_dies_loses_its_tasks_and_fences_them_when_the_engine_returns(heal):
    node2 = heal.nodes[1]
    api = heal.api()
    assert api.post("/tasks", json={"image": "orion/busybox:latest", "memory": 8 * MiB,
                                    "nodeSelectors": {"name": node2.id}}).status_code == 201
    ids = []
    for _ in range(2):
        resp = api.post("/tasks", json={"image": "orion/busybox:latest", "memory": 16 * MiB})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    for tid in ids:
        t = heal.cluster.wait(lambda tid=tid: (t := heal.task(tid))["state"] == "running" and t, 30, "task running")
        assert t["nodeId"] == node2.id
    assert node_row(heal, node2.id)["ready"] is True

    killed = time.monotonic()  # before: kill() waits 0.2 s or more after its SIGKILL
    heal.engine_of(node2).kill()  # the agent lives on and keeps gossiping alive
    heal.cluster.wait(lambda: all((t := heal.task(tid))["state"] == "running" and t["nodeId"] != node2.id
                                  for tid in ids), 30, "the tasks running on other nodes")
    moved_after = time.monotonic() - killed
    row = node_row(heal, node2.id)
    assert (row["status"], row["ready"]) == ("alive", False), row
    assert "docker engine has not answered" in row["readyReason"]
    # Not before the grace (engine_down_grace, 8 s), which counts from the engine's last answer:
    # up to one probe period (engine_probe_interval, 1 s) before the kill.
    assert moved_after > 8.0 - 1.0

    heal.engine_of(node2).start()
    heal.cluster.wait(lambda: node_row(heal, node2.id)["ready"], 30, "node2 ready again")

    def one_each() -> bool:
        return all(len(heal.running(tid)) == 1 for tid in ids)

    heal.cluster.wait(one_each, 30, "exactly one running container per task")
    time.sleep(3)  # a few reconcile passes later, still exactly one (no stale copy restarted)
    assert one_each()
    for tid in ids:
        assert [i for i, _ in heal.running(tid)] != [1]
    print(f"tasks moved {moved_after:.1f}s after the engine died")
