"""Task history stays bounded on a real 3-node cluster (orion/state/history.py).

* A crash-looping task restarted 20 times is one record (restarts reuse the task, a
  new generation each), and its failure list keeps the last 20.
* A service scaled up and down again and again keeps at most 5 finished replicas
  (FINISHED_TASKS_PER_GROUP), and still answers to its first task's id.

The restart policy runs with a short backoff here (restart_delay 50 ms) so twenty
crashes take seconds, not the minutes the shipped backoff would.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from harness import Cluster, running

from orion.defaults import FINISHED_TASKS_PER_GROUP

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

MEMORY = 16 * 1024 * 1024
TERMINAL = ("failed", "completed", "stopped", "lost")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, docker_host, docker_client) -> Iterator[Cluster]:
    c = Cluster(root=tmp_path_factory.mktemp("cluster"), docker_host=docker_host,
                extra_env={"ORION_RESTART_DELAY": "0.05", "ORION_RESTART_MAX_DELAY": "0.1",
                           "ORION_RESTART_LIMIT": "1000", "ORION_RESTART_LOCAL_ATTEMPTS": "1000"})
    with running(c, docker_client):
        yield c


@pytest.fixture(autouse=True)
def agent_logs_on_failure(request, cluster):
    request.node.orion_cluster = cluster


def test_twenty_restarts_of_a_crashing_task_keep_one_record(cluster):
    api = cluster.nodes[0]
    resp = api.post("/tasks", json={"image": "orion/busybox:latest", "memory": MEMORY,
                                    "command": ["sh", "-c", "exit 3"], "restartPolicy": "always"})
    assert resp.status_code == 201, resp.text
    task_id = resp.json()["id"]
    crashed = cluster.wait(lambda: (t := api.get(f"/tasks/{task_id}").json())["restarts"] >= 20 and t, 120,
                           "20 restarts")
    assert [t["id"] for t in api.get("/tasks").json()] == [task_id]  # one record, however many crashes
    assert crashed["generation"] >= 20
    api.delete(f"/tasks/{task_id}")


def test_a_service_scaled_up_and_down_keeps_its_last_finished_replicas(cluster):
    api = cluster.nodes[1]
    resp = api.post("/tasks", json={"image": "orion/busybox:latest", "memory": MEMORY, "name": "hist",
                                    "command": ["sleep", "600"]})
    first = resp.json()["id"]

    def replicas() -> list[dict]:
        return [t for t in api.get("/tasks").json() if t["name"] == "hist"]

    for count in (4, 0, 3, 0, 4, 1):
        answer = requests.patch(f"{api.url}/tasks/{first}", json={"count": count}, timeout=10)
        assert answer.status_code == 200, answer.text
        cluster.wait(lambda n=count: sum(t["state"] == "running" for t in replicas()) == n
                     and not any(t["state"] in ("stopping", "assigned", "pending") for t in replicas()),
                     60, f"{count} running replicas")
    tasks = replicas()
    finished = [t for t in tasks if t["state"] in TERMINAL]
    assert 0 < len(finished) <= FINISHED_TASKS_PER_GROUP
    assert len(tasks) == 1 + len(finished)  # 1 running: everything else ended and was trimmed
    assert api.get(f"/tasks/{first}").status_code == 200  # the id `orion run` printed still works
