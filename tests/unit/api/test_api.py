"""The HTTP API over a real StateMachine in a LocalStore (Raft itself is not under test).

A small "leader" thread stands in for the controller: it places pending tasks
on the one registered node, or records why it cannot, the way the real
scheduler answers asynchronously to a commit.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from api_kit import Placer, registered_store
from flask.testing import FlaskClient
from parts import api_deps

from orion.api.app import create_app
from orion.control.placement_loop import PlacementLoop
from orion.domain.model import ASSIGNED, PENDING
from orion.store.local import LocalStore
from orion.store.port import WriteTimeout
from orion.version import orion_version

SEED_BODY = {"image": "nginx", "memory": 100000000, "portBindings": {"80/tcp": "8080"}}
GiB = 1 << 30
def make_client(store: LocalStore, **overrides: Any) -> FlaskClient:
    ids = itertools.count(1)
    settings: dict[str, Any] = {"placement_wait": 30.0, "id_factory": lambda: f"t{next(ids)}"}
    settings.update(overrides)
    return create_app(api_deps(store, **settings)).test_client()


@pytest.fixture
def store() -> LocalStore:
    return registered_store()


@pytest.fixture
def placer(store: LocalStore) -> Iterator[Placer]:
    placer = Placer(store)
    yield placer
    placer.close()


@pytest.fixture
def client(store: LocalStore) -> FlaskClient:
    """No placer: tasks stay pending, so answers come back at once (placement_wait=0)."""
    return make_client(store, placement_wait=0.0)


def task_count(store: LocalStore) -> int:
    return store.read(lambda m: len(m.tasks()))[0]


# -- POST /tasks ---------------------------------------------------------------------------------
def test_seed_body_is_created_and_answered_once_placed(store: LocalStore, placer: Placer) -> None:
    resp = make_client(store).post("/tasks", json=SEED_BODY)
    assert resp.status_code == 201, resp.json
    task = resp.json
    assert task["id"] == "t1"
    assert (task["state"], task["nodeId"]) == (ASSIGNED, "node1")
    assert task["ports"] == {"80/tcp": 8080}
    assert (task["memory"], task["image"], task["desired"]) == (100000000, "nginx", "run")
    assert task["generation"] == 1
    assert resp.headers["Location"] == "/tasks/t1"
    assert int(resp.headers["X-Orion-Index"]) >= task["createdIndex"]


def test_with_the_agents_create_a_task_is_answered_placed_by_its_own_entry(store: LocalStore) -> None:
    """ApiDeps.create as the agent wires it (PlacementLoop.submit_create): no scheduler thread
    runs here, yet the answer carries the node, and the create took one log entry."""
    before = store.read(lambda m: None)[1]
    loop = PlacementLoop(store, interval=1, write_timeout=1)
    resp = make_client(store, create=loop.submit_create).post("/tasks", json=SEED_BODY)
    assert resp.status_code == 201, resp.json
    assert (resp.json["state"], resp.json["nodeId"], resp.json["generation"]) == (ASSIGNED, "node1", 1)
    assert int(resp.headers["X-Orion-Index"]) == before + 1


def test_a_task_that_fits_nowhere_is_pending_with_the_reason(store: LocalStore, placer: Placer) -> None:
    resp = make_client(store).post("/tasks", json={"image": "nginx", "memory": "100Ti"})
    assert resp.status_code == 201
    assert resp.json["state"] == PENDING
    assert "free memory" in resp.json["reason"]
    assert resp.json["reasonKind"] == "memory"


def test_without_a_placement_the_answer_is_the_pending_task(client: FlaskClient, store: LocalStore) -> None:
    resp = client.post("/tasks", json=SEED_BODY)
    assert resp.status_code == 201
    assert (resp.json["state"], resp.json["nodeId"], resp.json["reason"], resp.json["reasonKind"]) == (
        PENDING, None, "", None)
    assert task_count(store) == 1


def test_idempotency_key_returns_the_first_task(client: FlaskClient, store: LocalStore) -> None:
    headers = {"Idempotency-Key": "deploy-42"}
    first = client.post("/tasks", json=SEED_BODY, headers=headers)
    again = client.post("/tasks", json=SEED_BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json["id"] == first.json["id"]
    assert task_count(store) == 1


def test_an_unprintable_idempotency_key_is_refused(client: FlaskClient, store: LocalStore) -> None:
    resp = client.post("/tasks", json=SEED_BODY, headers={"Idempotency-Key": "a b"})
    assert (resp.status_code, resp.json["field"]) == (400, "Idempotency-Key")
    assert task_count(store) == 0


def test_count_creates_one_task_per_replica(client: FlaskClient, store: LocalStore) -> None:
    resp = client.post("/tasks", json={"image": "nginx", "memory": "64M", "count": 3},
                       headers={"Idempotency-Key": "k"})
    assert resp.status_code == 201
    assert [t["id"] for t in resp.json] == ["t1", "t2", "t3"]
    again = client.post("/tasks", json={"image": "nginx", "memory": "64M", "count": 3},
                        headers={"Idempotency-Key": "k"})
    assert again.status_code == 200
    assert task_count(store) == 3


@pytest.mark.parametrize(("kwargs", "status", "field"), [
    ({"json": {"image": "nginx"}}, 400, "memory"),
    ({"json": {"image": "nginx", "memory": 1000}}, 400, "memory"),
    ({"json": {**SEED_BODY, "env": {"PORT": 80}}}, 400, "env.PORT"),
    ({"json": {**SEED_BODY, "extra": 1}}, 400, "extra"),
    ({"json": {**SEED_BODY, "volumes": [{"source": "/etc", "target": "/host-etc"}]}}, 400, "volumes[0].source"),
    ({"json": ["nginx"]}, 400, None),
    ({"data": "{", "content_type": "application/json"}, 400, None),
    ({"data": "", "content_type": "application/json"}, 400, None),
    ({"data": '{"image": "a", "image": "b", "memory": "8M"}', "content_type": "application/json"}, 400,
     "image"),
    ({"data": '{"image": "a", "memory": NaN}', "content_type": "application/json"}, 400, None),
    ({"data": b"\xff\xfe", "content_type": "application/json"}, 400, None),
    ({"data": "image=nginx", "content_type": "application/x-www-form-urlencoded"}, 415, None),
])
def test_bad_requests_are_refused_and_nothing_is_written(
    client: FlaskClient, store: LocalStore, kwargs: dict[str, Any], status: int, field: str | None
) -> None:
    index_before = store.status().applied_index
    resp = client.post("/tasks", **kwargs)
    assert resp.status_code == status, resp.json
    assert resp.is_json and resp.json["error"]
    assert resp.json.get("field") == field
    assert task_count(store) == 0
    assert store.status().applied_index == index_before


def test_a_body_over_the_limit_is_413(store: LocalStore) -> None:
    client = make_client(store, max_body_bytes=1024, placement_wait=0.0)
    resp = client.post("/tasks", json={**SEED_BODY, "env": {"BIG": "x" * 2000}})
    assert resp.status_code == 413
    assert "1024 bytes" in resp.json["error"]
    assert task_count(store) == 0


# -- reads ---------------------------------------------------------------------------------------
def test_list_and_filter_tasks(client: FlaskClient) -> None:
    client.post("/tasks", json=SEED_BODY)
    client.post("/tasks", json={"image": "redis", "memory": "64M"})
    client.delete("/tasks/t2")
    resp = client.get("/tasks")
    assert resp.status_code == 200
    assert [(t["id"], t["state"]) for t in resp.json] == [("t1", "pending"), ("t2", "stopped")]
    assert [t["id"] for t in client.get("/tasks?state=stopped").json] == ["t2"]
    bad = client.get("/tasks?state=sleeping")
    assert (bad.status_code, bad.json["field"]) == (400, "state")


def test_get_one_task_and_404(client: FlaskClient) -> None:
    client.post("/tasks", json={**SEED_BODY, "env": {"A": "1"}, "command": ["nginx", "-g", "daemon off;"]})
    resp = client.get("/tasks/t1")
    assert resp.status_code == 200
    assert (resp.json["env"], resp.json["command"]) == ({"A": "1"}, ["nginx", "-g", "daemon off;"])
    missing = client.get("/tasks/nope")
    assert (missing.status_code, missing.json) == (404, {"error": "no task nope", "field": "id"})


def test_stop_a_placed_task_is_202_and_a_pending_one_200(store: LocalStore, placer: Placer) -> None:
    client = make_client(store)
    placed = client.post("/tasks", json=SEED_BODY).json
    resp = client.delete(f"/tasks/{placed['id']}")
    assert (resp.status_code, resp.json["state"], resp.json["desired"]) == (202, "stopping", "stop")
    nowhere = client.post("/tasks", json={"image": "nginx", "memory": "100Ti"}).json
    resp = client.delete(f"/tasks/{nowhere['id']}")
    assert (resp.status_code, resp.json["state"]) == (200, "stopped")
    assert client.delete("/tasks/nope").status_code == 404


def test_nodes_show_capacity_use_leader_and_extra_views(store: LocalStore, placer: Placer) -> None:
    extras = {"node1": {"gossip": "alive", "rttMs": 0.4}, "ghost": {"gossip": "dead"}}
    client = make_client(store, nodes_view=lambda: extras)
    client.post("/tasks", json={**SEED_BODY, "cpu": 0.5})
    (node,) = client.get("/nodes").json
    assert (node["id"], node["leader"], node["status"]) == ("node1", True, "alive")
    assert node["labels"] == {"zone": "a"}
    assert node["capacity"] == {"memory": 4 * GiB, "cpu": 2.0}
    assert node["used"] == {"memory": 100000000, "cpu": 0.5}
    assert node["free"] == {"memory": 4 * GiB - 100000000, "cpu": 1.5}
    assert node["portsInUse"] == ["8080/tcp"]
    assert (node["gossip"], node["rttMs"]) == ("alive", 0.4)


def test_raft_and_health(client: FlaskClient, store: LocalStore) -> None:
    raft = client.get("/raft")
    assert raft.json["leader"] == "local" and raft.json["is_leader"] is True
    health = client.get("/health")
    assert (health.status_code, health.json["status"], health.json["node"]) == (200, "ok", "node1")
    assert health.json["version"] == orion_version() != ""
    store.leader = False
    health = client.get("/health")
    assert (health.status_code, health.json["status"], health.json["leader"]) == (503, "no-leader", None)


# -- failures of the store and of the app ---------------------------------------------------------
def test_without_a_leader_writes_and_default_reads_are_503_and_stale_reads_still_answer(
    client: FlaskClient, store: LocalStore
) -> None:
    client.post("/tasks", json=SEED_BODY)
    store.leader = False
    resp = client.post("/tasks", json=SEED_BODY)
    assert resp.status_code == 503
    assert "quorum" in resp.json["error"]
    assert resp.headers["Retry-After"] == "1"
    assert client.delete("/tasks/t1").status_code == 503
    read = client.get("/tasks")
    assert read.status_code == 503 and "?stale" in read.json["error"]
    assert read.headers["X-Orion-Known-Leader"] == "false"
    for stale in ("/tasks?stale", "/v1/tasks?stale=1", "/tasks/t1?stale=true", "/nodes?stale"):
        assert client.get(stale).status_code == 200, stale
    assert [t["id"] for t in client.get("/tasks?stale").json] == ["t1"]
    assert client.get("/raft").status_code == 200  # this node's own view: never a read point
    assert task_count(store) == 1


def test_every_answer_says_whether_a_leader_is_known_and_since_when(client: FlaskClient) -> None:
    for path in ("/tasks", "/nodes", "/raft", "/health", "/nope"):
        resp = client.get(path)
        assert resp.headers["X-Orion-Known-Leader"] == "true", path
        assert resp.headers["X-Orion-Last-Contact"] == "0", path  # LocalStore leads


def test_a_bad_stale_value_is_a_400_naming_it(client: FlaskClient) -> None:
    resp = client.get("/tasks?stale=maybe")
    assert resp.status_code == 400 and resp.json["field"] == "stale"


def test_a_write_timeout_is_503(store: LocalStore) -> None:
    class SlowStore(LocalStore):
        def submit(self, command: Any, timeout: float) -> Any:
            raise WriteTimeout("create_task not committed within 5s")

    resp = make_client(SlowStore()).post("/tasks", json=SEED_BODY)
    assert (resp.status_code, resp.json["error"]) == (503, "create_task not committed within 5s")


def test_an_unexpected_error_is_a_500_without_a_traceback(store: LocalStore) -> None:
    class BrokenStore(LocalStore):
        def read(self, fn: Any) -> Any:
            raise RuntimeError("secret internals")

    resp = make_client(BrokenStore()).get("/tasks")
    assert resp.status_code == 500
    assert "internal error" in resp.json["error"]
    assert "secret" not in resp.get_data(as_text=True) and "Traceback" not in resp.get_data(as_text=True)


def test_unknown_route_and_wrong_method_answer_json(client: FlaskClient) -> None:
    resp = client.get("/containers")
    assert (resp.status_code, resp.is_json) == (404, True)
    resp = client.put("/tasks")
    assert resp.status_code == 405
    assert "allowed: GET, POST" in resp.json["error"]
    assert "POST" in resp.headers["Allow"]


# -- the token -----------------------------------------------------------------------------------
def fake_metrics(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"orion_up 1\n"]


def test_the_token_guards_everything_but_health(store: LocalStore) -> None:
    token = uuid.uuid4().hex
    client = make_client(store, api_token=token, placement_wait=0.0, metrics_wsgi=fake_metrics)
    for path in ("/tasks", "/nodes", "/raft", "/metrics", "/tasks/t1", "/openapi.json"):
        resp = client.get(path)
        assert (resp.status_code, resp.json["field"]) == (401, "Authorization"), path
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.post("/tasks", json=SEED_BODY, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert task_count(store) == 0
    assert client.get("/health").status_code == 200
    good = {"Authorization": f"Bearer {token}"}
    assert client.post("/tasks", json=SEED_BODY, headers=good).status_code == 201
    assert client.get("/metrics", headers=good).get_data() == b"orion_up 1\n"


def test_metrics_may_be_left_open_for_a_scraper(store: LocalStore) -> None:
    client = make_client(store, api_token="s3cret", metrics_requires_token=False, metrics_wsgi=fake_metrics)
    assert client.get("/metrics").status_code == 200
    assert client.get("/tasks").status_code == 401
