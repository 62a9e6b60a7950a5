"""``/services`` over a real StateMachine in a LocalStore, with the real deployment loop.

The leader's part is played in the open: :class:`Cluster` runs the real
``DeploymentLoop`` pass by pass against a clock the test moves, places what it
created on the one node and reports the containers running and healthy, as the
scheduler and the node would. Raft itself is not under test.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from parts import api_deps
from test_api import NODE

from orion.api.app import create_app
from orion.api.ops import ops_blueprint
from orion.api.services import services_blueprint
from orion.control.deployment_loop import DeploymentLoop
from orion.model import PENDING
from orion.service import HEALTHY, UNHEALTHY
from orion.state.commands import Placement, PlaceTasks, RegisterNode, ReportTaskHealth, ReportTaskState
from orion.state.store import LocalStore

WEB = {"name": "web", "image": "app:1", "memory": "64M", "count": 2,
       "healthCheck": {"http": "/", "port": "80/tcp", "interval": "1s", "timeout": "1s", "failures": 1},
       "update": {"maxParallel": 1, "minHealthyTime": "2s", "healthyDeadline": "30s", "autoRevert": True}}


class Cluster:
    """The API app and the leader's deployment loop over one LocalStore, with a movable clock."""

    def __init__(self) -> None:
        self.store = LocalStore()
        self.store.submit(RegisterNode(node=NODE), 1.0)
        self.now = 1000.0
        app = create_app(api_deps(self.store))
        app.register_blueprint(services_blueprint(self.store, 5.0, 1 << 20, clock=lambda: self.now))
        app.register_blueprint(ops_blueprint(self.store, 5.0))
        self.http: FlaskClient = app.test_client()
        self.loop = DeploymentLoop(self.store, interval=0.5, write_timeout=5.0, clock=lambda: self.now)

    def submit(self, command: Any) -> dict:
        return self.store.submit(command, 1.0)

    def replicas(self) -> list[Any]:
        return self.store.read(lambda m: m.services.replicas("web"))[0]

    def step(self, seconds: float = 1.0, health: str = HEALTHY) -> str | None:
        """One leader pass; then what was created runs (and reports ``health``) and stopped ones stop."""
        said = self.loop.run_once().sentence
        for task in self.replicas():
            if task.state == PENDING and task.desired == "run":
                self.submit(PlaceTasks(placements=(Placement(task.id, NODE.id, task.generation),)))
                self.submit(ReportTaskState(task_id=task.id, node_id=NODE.id, generation=1, state="running",
                                            container_id=f"c-{task.id}"))
                self.submit(ReportTaskHealth(task_id=task.id, node_id=NODE.id, generation=1,
                                             status=health if task.version > 1 else HEALTHY, since=self.now,
                                             output="HTTP 200"))
            elif task.state == "stopping":
                self.submit(ReportTaskState(task_id=task.id, node_id=NODE.id, generation=task.generation,
                                            state="stopped"))
        self.now += seconds
        return said

    def settle(self, health: str = HEALTHY, passes: int = 30) -> None:
        for _ in range(passes):
            self.step(health=health)


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def test_post_creates_version_1_and_the_deployment_loop_starts_every_replica(cluster):
    resp = cluster.http.post("/services", json=WEB)
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert (body["name"], body["version"], body["changed"]) == ("web", 1, True)
    assert body["deployment"]["state"] == "running" and resp.headers["Location"] == "/services/web"
    assert body["spec"]["update"] == {"maxParallel": 1, "minHealthyTime": "2s", "healthyDeadline": "30s",
                                      "autoRevert": True, "order": "start-first"}
    cluster.settle()
    web = cluster.http.get("/services/web").json
    assert web["deployment"]["state"] == "successful" and web["stableVersion"] == 1
    assert (web["tasks"], web["healthy"]) == ({"running": 2}, 2)
    assert [p["phase"] for p in web["deployment"]["progress"]] == ["done", "done"]
    tasks = cluster.http.get("/tasks?service=web").json
    assert sorted(t["id"] for t in tasks) == ["web.0.d1", "web.1.d1"]
    assert {(t["service"], t["version"], t["health"], t["healthOutput"]) for t in tasks} == {
        ("web", 1, "healthy", "HTTP 200")}


def test_a_second_post_of_the_name_is_a_conflict_and_bad_bodies_name_their_field(cluster):
    assert cluster.http.post("/services", json=WEB).status_code == 201
    again = cluster.http.post("/services", json=WEB)
    assert again.status_code == 409 and "exists" in again.json["error"] and again.json["field"] == "name"
    nameless = cluster.http.post("/services", json={k: v for k, v in WEB.items() if k != "name"})
    assert (nameless.status_code, nameless.json["field"]) == (400, "name")
    bad = cluster.http.put("/services/web", json={**WEB, "update": {"maxParallel": 0}})
    assert (bad.status_code, bad.json["field"]) == (400, "update.maxParallel")
    typo = cluster.http.put("/services/web", json={**WEB, "replicas": 3})
    assert typo.status_code == 400 and "did you mean 'count'" in typo.json["error"]


def test_put_of_a_new_image_is_a_new_version_and_the_same_spec_again_changes_nothing(cluster):
    cluster.http.post("/services", json=WEB)
    cluster.settle()
    resp = cluster.http.put("/services/web", json={**WEB, "image": "app:2"})
    assert resp.status_code == 201
    assert (resp.json["version"], resp.json["diff"]) == (2, {"changed": ["image"], "replace": True, "scale": False})
    again = cluster.http.put("/services/web", json={**WEB, "image": "app:2"})
    assert again.status_code == 200 and again.json["changed"] is False and again.json["version"] == 2
    assert again.json["deployment"]["id"] == "web#2"
    cluster.settle()
    web = cluster.http.get("/services/web").json
    assert web["deployment"]["state"] == "successful" and web["healthy"] == 2
    assert {t["id"] for t in cluster.http.get("/tasks?service=web&state=running").json} == {"web.0.d2", "web.1.d2"}
    versions = cluster.http.get("/services/web/versions").json
    assert [(v["version"], v["image"], v["deployment"]["state"]) for v in versions] == [
        (1, "app:1", "successful"), (2, "app:2", "successful")]


def test_a_version_that_fails_its_check_is_reverted_and_the_history_says_so(cluster):
    cluster.http.post("/services", json=WEB)
    cluster.settle()
    cluster.http.put("/services/web", json={**WEB, "image": "app:2"})
    cluster.settle(health=UNHEALTHY)
    versions = cluster.http.get("/services/web/versions").json
    assert [(v["version"], v["image"], v["copyOf"], v["deployment"]["state"]) for v in versions] == [
        (1, "app:1", None, "successful"), (2, "app:2", None, "reverted"), (3, "app:1", 1, "successful")]
    assert versions[1]["deployment"]["reason"] == "replica web.0.d2 is unhealthy; reverting to version 1"
    running = cluster.http.get("/tasks?service=web&state=running").json
    assert {(t["id"], t["version"]) for t in running} == {("web.0.d1", 3), ("web.1.d1", 3)}


def test_rollback_declares_an_earlier_version_again(cluster):
    cluster.http.post("/services", json=WEB)
    cluster.settle()
    assert cluster.http.post("/services/web/rollback").status_code == 409  # nothing earlier
    cluster.http.put("/services/web", json={**WEB, "image": "app:2"})
    cluster.settle()
    bad = cluster.http.post("/services/web/rollback?version=x")
    assert (bad.status_code, bad.json["field"]) == (400, "version")
    resp = cluster.http.post("/services/web/rollback?version=1")
    assert resp.status_code == 201 and resp.json["version"] == 3 and resp.json["deployment"]["rollback"]
    assert resp.json["spec"]["image"] == "app:1"


def test_delete_stops_the_replicas_and_the_service_is_gone(cluster):
    cluster.http.post("/services", json=WEB)
    cluster.settle()
    resp = cluster.http.delete("/services/web")
    assert resp.status_code == 200 and sorted(resp.json["stopping"]) == ["web.0.d1", "web.1.d1"]
    missing = cluster.http.get("/services/web")
    assert (missing.status_code, missing.json["field"]) == (404, "name")
    assert cluster.http.get("/services").json == []
    assert {t.desired for t in cluster.replicas()} == {"stop"}


def test_a_replica_is_not_scaled_through_patch_and_lone_tasks_have_no_service(cluster):
    cluster.http.post("/services", json=WEB)
    cluster.settle()
    resp = cluster.http.patch("/tasks/web.0.d1", json={"count": 5})
    assert resp.status_code == 409 and "PUT /services/web" in resp.json["error"]
    lone = cluster.http.post("/tasks", json={"image": "app:1", "memory": "64M"}, headers={})
    assert lone.status_code == 201
    view = lone.json
    assert (view["service"], view["version"], view["health"]) == (None, None, None)
    listed = cluster.http.get("/services").json
    assert [(s["name"], s["version"], s["count"], s["healthy"]) for s in listed] == [("web", 1, 2, 2)]
