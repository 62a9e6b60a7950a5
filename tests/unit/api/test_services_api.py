"""``/services`` over a real StateMachine in a LocalStore, with the real deployment loop.

The leader's part is played by ``ServiceWorld`` (tests/service_world.py): the
real ``DeploymentLoop`` pass by pass against a clock the test moves, with the
scheduler's and the node's parts done by hand. Raft itself is not under test.
"""

from __future__ import annotations

import pytest
from service_world import WEB, ServiceWorld

from orion.domain.service import UNHEALTHY


@pytest.fixture
def cluster() -> ServiceWorld:
    return ServiceWorld()


def test_post_creates_version_1_and_the_deployment_loop_starts_every_replica(cluster):
    resp = cluster.http.post("/services", json=WEB)
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert (body["name"], body["version"], body["changed"]) == ("web", 1, True)
    assert body["deployment"]["state"] == "running" and resp.headers["Location"] == "/services/web"
    assert body["spec"]["update"] == {"maxParallel": 1, "minHealthyTime": "2s", "healthyDeadline": "30s",
                                      "autoRevert": True, "order": "start-first", "rebalance": False}
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
