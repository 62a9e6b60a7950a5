"""``/v1/operator/snapshot`` over an in-process store: a saved file restores the state it
holds, and a bad file (corrupted, another cluster's, a newer format, an upgrade under way)
is refused with its reason and changes nothing."""

from __future__ import annotations

import pytest
from api_kit import full_app, registered_store
from flask.testing import FlaskClient

from orion.domain.model import NodeInfo, Resources
from orion.state.canonical import state_digest
from orion.state.commands import NameCluster, RegisterNode
from orion.state.machine import SNAPSHOT_VERSION
from orion.store.local import LocalStore
from orion.store.snapshot_file import SnapshotMeta, read_snapshot, write_snapshot


@pytest.fixture
def store() -> LocalStore:
    s = registered_store()
    s.submit(NameCluster(cluster_id="c-1"), 1.0)
    return s


@pytest.fixture
def client(store: LocalStore) -> FlaskClient:
    return full_app(store).test_client()


def run(client: FlaskClient, n: int) -> list[str]:
    resp = client.post("/v1/tasks", json={"image": "app:1", "memory": "8M", "count": n})
    assert resp.status_code == 201, resp.json
    body = resp.json
    return [t["id"] for t in (body if isinstance(body, list) else [body])]


def state_of(store: LocalStore) -> str:
    return store.read(lambda m: state_digest(m.snapshot()))[0]


def test_a_saved_file_holds_the_state_at_its_index(client, store):
    run(client, 3)
    resp = client.get("/v1/operator/snapshot")
    assert resp.status_code == 200 and resp.mimetype == "application/octet-stream"
    snap = read_snapshot(resp.data)
    assert snap.meta.index == int(resp.headers["X-Orion-Index"]) == store.status().applied_index
    assert snap.meta.cluster_id == "c-1" and snap.meta.node == "node1"
    assert snap.counts() == {"nodes": 1, "tasks": 3, "services": 0}
    assert snap.digest == state_of(store)


def test_a_restore_brings_back_the_saved_state(client, store):
    run(client, 2)
    saved = client.get("/v1/operator/snapshot").data
    digest = read_snapshot(saved).digest
    later = run(client, 2)
    client.delete(f"/v1/tasks/{later[0]}")
    resp = client.put("/v1/operator/snapshot", data=saved, content_type="application/octet-stream")
    assert resp.status_code == 200, resp.json
    assert resp.json["digest"] == digest == state_of(store)
    assert resp.json["tasks"] == 2 and resp.json["clusterId"] == "c-1"
    assert int(resp.headers["X-Orion-Index"]) == resp.json["index"]
    assert client.get(f"/v1/tasks/{later[1]}").status_code == 404


def test_a_corrupted_file_is_refused_and_nothing_changes(client, store):
    run(client, 2)
    saved = bytearray(client.get("/v1/operator/snapshot").data)
    run(client, 1)
    before = state_of(store)
    saved[-20] ^= 0x40
    resp = client.put("/v1/operator/snapshot", data=bytes(saved))
    assert resp.status_code == 400
    assert resp.json["field"] == "snapshot" and "corrupted" in resp.json["error"]
    assert state_of(store) == before
    resp = client.put("/v1/operator/snapshot", data=b"hello")
    assert resp.status_code == 400 and "not an Orion snapshot file" in resp.json["error"]


def other_cluster_file(state_version: int = SNAPSHOT_VERSION) -> bytes:
    other = LocalStore()
    other.submit(NameCluster(cluster_id="c-other"), 1.0)
    other.submit(RegisterNode(node=NodeInfo("far", "x:1", "x:2", capacity=Resources(1 << 30, 1000))), 1.0)
    state, index = other.read(lambda m: m.snapshot())
    state["v"] = state_version
    return write_snapshot(state, SnapshotMeta("c-other", index, 1, 0.0, "far", "0"))


def test_another_clusters_file_needs_force_and_then_brings_its_id(client, store):
    run(client, 1)
    before = state_of(store)
    resp = client.put("/v1/operator/snapshot", data=other_cluster_file())
    assert resp.status_code == 409 and resp.json["field"] == "force"
    assert "cluster c-other, this is cluster c-1" in resp.json["error"]
    assert state_of(store) == before
    resp = client.put("/v1/operator/snapshot?force=1", data=other_cluster_file())
    assert resp.status_code == 200, resp.json
    assert resp.json["clusterId"] == "c-other" and resp.json["nodes"] == 1 and resp.json["tasks"] == 0


def test_a_newer_state_format_is_refused(client, store):
    before = state_of(store)
    resp = client.put("/v1/operator/snapshot?force=1", data=other_cluster_file(SNAPSHOT_VERSION + 1))
    assert resp.status_code == 409 and "newer than this cluster reads" in resp.json["error"]
    assert state_of(store) == before


def test_no_restore_while_a_node_reads_an_older_log(client, store):
    saved = client.get("/v1/operator/snapshot").data
    store.submit(RegisterNode(node=NodeInfo("old", "o:1", "o:2", capacity=Resources(1 << 30, 1000),
                                            log_version=1)), 1.0)
    before = state_of(store)
    resp = client.put("/v1/operator/snapshot", data=saved)
    assert resp.status_code == 409 and "finish the upgrade" in resp.json["error"]
    assert state_of(store) == before


def test_a_node_without_a_leader_saves_only_when_asked_for_stale(client, store):
    store.leader = False
    resp = client.get("/v1/operator/snapshot")
    assert resp.status_code == 503 and "?stale=1" in resp.json["error"]
    resp = client.get("/v1/operator/snapshot?stale=1")
    assert resp.status_code == 200 and read_snapshot(resp.data).meta.cluster_id == "c-1"
    assert client.get("/v1/operator/snapshot?stail=1").status_code == 400


def test_a_file_larger_than_the_api_body_limit_restores(client, store):
    """Other bodies stop at max_body_bytes (1 MiB); a snapshot may be far larger."""
    import secrets

    from orion.domain.model import TaskSpec
    from orion.state.commands import CreateTask

    for i in range(300):  # incompressible: ~8 KB of random env per task
        store.submit(CreateTask(request_id=f"big{i}", task_id=f"big{i}", spec=TaskSpec(
            "app:1", 1 << 20, env=(("NOISE", secrets.token_hex(4096)),))), 1.0)
    saved = client.get("/v1/operator/snapshot").data
    assert len(saved) > 2 << 20
    resp = client.put("/v1/operator/snapshot", data=saved)
    assert resp.status_code == 200, resp.json
    assert resp.json["tasks"] == 300
    assert client.post("/v1/tasks", data=b"x" * (2 << 20), content_type="application/json").status_code == 413
