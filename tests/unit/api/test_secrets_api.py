"""``/secrets``, ``/configs``, ``/registries`` in process (orion/api/secrets.py): metadata only, the
value in no answer, refusals that name the fix, a key rotation; and a secret update rolling a service
with its maxParallel (the leader's real deployment loop, service_world.py)."""

from __future__ import annotations

import base64
import json

import pytest
from api_kit import KEYRING, NODE, full_app, registered_store
from parts import api_deps
from service_world import WEB, ServiceWorld

from orion.api.app import applied_signal, create_app
from orion.api.secrets import secrets_blueprint
from orion.domain.sealing import open_sealed, parse_keyring, sealed_key_id
from orion.state.commands import RegisterNode

VALUE = "p@ss-w0rd-1234"
B64 = base64.b64encode(VALUE.encode()).decode()


@pytest.fixture
def client():
    return full_app(registered_store()).test_client()


def no_value_in(*answers) -> None:
    for answer in answers:
        text = answer.get_data(as_text=True)
        assert VALUE not in text and B64 not in text, text


def test_a_secret_s_answers_are_metadata_only(client):
    created = client.post("/secrets", json={"name": "db", "data": B64})
    assert created.status_code == 201 and created.headers["Location"] == "/secrets/db"
    body = created.json
    assert {k: body[k] for k in ("name", "version", "size", "changed", "usedBy", "data")} == \
        {"name": "db", "version": 1, "size": len(VALUE), "changed": True, "usedBy": [], "data": None}
    assert body["digest"].startswith("hmac-sha256:") and body["keyId"] == KEYRING.primary_id
    listed, one = client.get("/secrets"), client.get("/v1/secrets/db")
    assert [s["name"] for s in listed.json] == ["db"] and one.json["versions"][0]["version"] == 1
    no_value_in(created, listed, one)
    assert "orion-sealed" not in listed.get_data(as_text=True) + one.get_data(as_text=True)


def test_the_state_holds_the_value_sealed_and_this_node_s_key_opens_it():
    store = registered_store()
    full_app(store).test_client().post("/secrets", json={"name": "db", "data": B64})
    stored = store.read(lambda m: m.secrets.get("secret", "db"))[0].current
    assert VALUE not in json.dumps(stored.to_dict())
    assert open_sealed(KEYRING, stored.data, "secret", "db") == VALUE.encode()


def test_updating_makes_the_next_version_and_the_same_value_changes_nothing(client):
    client.post("/secrets", json={"name": "db", "data": B64})
    same = client.put("/secrets/db", json={"data": B64})
    assert same.status_code == 200 and same.json["version"] == 1 and same.json["changed"] is False
    new = client.put("/secrets/db", json={"data": base64.b64encode(b"other").decode()})
    assert new.status_code == 201 and new.json["version"] == 2
    again = client.post("/secrets", json={"name": "db", "data": B64})
    assert again.status_code == 409 and "update it with PUT /secrets/db" in again.json["error"]


@pytest.mark.parametrize("body,field,words", [
    ({"name": "db", "data": "not base64!"}, "data", "is not base64"),
    ({"name": "db", "data": ""}, "data", "is empty; a secret holds at least one byte"),
    ({"name": "db", "data": base64.b64encode(bytes(70_000)).decode()}, "data", "at most 65536"),
    ({"name": "../etc", "data": B64}, "name", "not a valid name"),
    ({"name": "db", "value": B64}, "value", "did you mean 'data'"),
])
def test_a_bad_body_is_a_400_naming_the_field(client, body, field, words):
    answer = client.post("/secrets", json=body)
    assert answer.status_code == 400 and answer.json["field"] == field and words in answer.json["error"]


def test_no_secret_is_sealed_while_a_node_lacks_the_key_or_without_one():
    store = registered_store()
    client = full_app(store).test_client()
    store.submit(RegisterNode(node=NODE.__class__(**{**NODE.__dict__, "id": "node2", "key_ids": ()})), 1.0)
    lacking = client.post("/secrets", json={"name": "db", "data": B64})
    assert lacking.status_code == 409 and lacking.json["error"].startswith(
        f"node(s) node2 do not hold cluster key {KEYRING.primary_id}")
    keyless = _app_without_key()
    answer = keyless.post("/secrets", json={"name": "db", "data": B64})
    assert answer.status_code == 409 and "this node has no cluster key (cluster_key_file)" in answer.json["error"]


def _app_without_key():
    store = registered_store()
    app = create_app(api_deps(store))
    app.register_blueprint(secrets_blueprint(store, 1.0, applied_signal(app), None))
    return app.test_client()


def test_a_secret_a_service_reads_cannot_be_deleted_and_the_409_names_it(client):
    client.post("/secrets", json={"name": "db", "data": B64})
    assert client.put("/services/web", json={**WEB, "secrets": [{"source": "db"}]}).status_code == 201
    assert client.get("/secrets/db").json["usedBy"] == ["web"]
    refused = client.delete("/secrets/db")
    assert refused.status_code == 409 and "in use by service(s) web" in refused.json["error"]
    assert client.delete("/services/web").status_code == 200
    assert client.delete("/secrets/db").status_code == 200 and client.get("/secrets/db").status_code == 404


def test_a_task_shows_which_secret_a_file_or_variable_reads_never_its_value(client):
    client.post("/secrets", json={"name": "db", "data": B64})
    created = client.post("/tasks", json={"image": "app:1", "memory": "64M", "secrets": [
        {"source": "db", "target": "/run/secrets/db", "mode": "0440", "uid": 70}], "env": {"PW": {"secret": "db"}}})
    assert created.status_code == 201, created.json
    task = client.get(f"/tasks/{created.json['id']}")
    assert task.json["secrets"] == [{"source": "db", "target": "/run/secrets/db", "mode": "0440", "uid": 70,
                                     "gid": 0, "version": 1}]
    assert task.json["env"] == {"PW": {"secret": "db"}}
    no_value_in(created, task, client.get("/tasks"))
    missing = client.post("/tasks", json={"image": "app:1", "memory": "64M", "secrets": [{"source": "nope"}]})
    assert missing.status_code == 409 and "no secret nope" in missing.json["error"]


def test_a_config_reads_back_and_a_template_is_checked_when_created(client):
    text = base64.b64encode(b"listen ${service}:80\n").decode()
    made = client.post("/configs", json={"name": "app.conf", "data": text, "template": True})
    assert made.status_code == 201 and made.json["template"] is True
    assert client.get("/configs/app.conf").json["data"] == text
    bad = client.post("/configs", json={"name": "x.conf", "template": True,
                                        "data": base64.b64encode(b"${servce}").decode()})
    assert bad.status_code == 400 and bad.json["field"] == "data" and "unknown variable ${servce}" in bad.json["error"]


def test_registry_credentials_are_stored_sealed_and_never_shown(client):
    answer = client.post("/registries", json={"server": "https://Registry.Local:5000/", "username": "ci",
                                              "password": VALUE})
    assert answer.status_code == 201 and answer.json["server"] == "registry.local:5000"
    listed = client.get("/registries")
    assert [r["username"] for r in listed.json] == ["ci"]
    no_value_in(answer, listed)
    both = client.post("/registries", json={"server": "r:5000", "username": "u", "password": "a", "token": "b"})
    assert both.status_code == 400 and "exactly one of password and token" in both.json["error"]
    assert client.delete("/registries/registry.local:5000").status_code == 200
    assert client.delete("/registries/registry.local:5000").status_code == 404


def test_a_rotation_reseals_everything_under_the_new_primary_and_rolls_nothing():
    store = registered_store()
    client = full_app(store).test_client()
    client.post("/secrets", json={"name": "db", "data": B64})
    client.post("/registries", json={"server": "r.local:5000", "username": "ci", "token": "tok"})
    client.put("/services/web", json={**WEB, "secrets": [{"source": "db"}]})
    new = parse_keyring(base64.b64encode(bytes(range(100, 132))).decode() + "\n" +
                        base64.b64encode(bytes(range(32))).decode())
    app = create_app(api_deps(store))
    app.register_blueprint(secrets_blueprint(store, 1.0, applied_signal(app), new))
    rotating = app.test_client()
    refused = rotating.post("/secrets/rotate")  # node1 announced only the old key
    assert refused.status_code == 409 and "do not hold cluster key" in refused.json["error"]
    store.submit(RegisterNode(node=NODE.__class__(**{**NODE.__dict__, "key_ids": new.ids})), 1.0)
    done = rotating.post("/secrets/rotate")
    assert done.status_code == 200 and done.json == {"key": new.primary_id, "resealed": 2, "skipped": [],
                                                     "remaining": {}}
    stored = store.read(lambda m: m.secrets.get("secret", "db"))[0].current
    assert sealed_key_id(stored.data) == new.primary_id and open_sealed(new, stored.data, "secret", "db") == \
        VALUE.encode()
    assert store.read(lambda m: m.services.get("web").current.version)[0] == 1
    assert rotating.post("/secrets/rotate").json["resealed"] == 0


def test_a_secret_update_rolls_the_service_with_its_max_parallel():
    world = ServiceWorld()
    app = world.http.application
    app.register_blueprint(secrets_blueprint(world.store, 5.0, applied_signal(app), KEYRING))
    world.http.post("/secrets", json={"name": "db", "data": B64})
    spec = {**WEB, "count": 5, "secrets": [{"source": "db"}],
            "update": {**WEB["update"], "maxParallel": 2, "autoRevert": False}}
    assert world.http.put("/services/web", json=spec).status_code == 201
    world.settle()
    rolled = world.http.put("/secrets/db", json={"data": base64.b64encode(b"next").decode()})
    assert rolled.json["rolled"] == ["web"]
    most = 0
    for _ in range(60):
        world.step()
        replicas = [t for t in world.replicas() if t.desired == "run" and t.state in ("assigned", "running")]
        new = [t for t in replicas if t.version == 2]
        old = [t for t in replicas if t.version == 1]
        most = max(most, len(new) + len(old) - 5)  # replicas beyond count: those in flight
        if len(new) == 5 and not old:
            break
    assert len(new) == 5 and not old and all(t.spec.files[0].version == 2 for t in new)
    assert 1 <= most <= 2


def test_declaring_the_same_service_again_shows_no_change_in_its_secrets(client):
    client.post("/secrets", json={"name": "db", "data": B64})
    spec = {**WEB, "secrets": [{"source": "db"}]}
    assert client.put("/services/web", json=spec).status_code == 201
    again = client.put("/services/web", json=spec)
    assert again.status_code == 200 and again.json["diff"]["changed"] == []


def test_nothing_secret_is_written_while_a_node_reads_an_older_log_format(client):
    """A rolling upgrade from a release without secrets: an older node would refuse the commands and
    read a spec without its files, so none is written until every node reads log format 5."""
    store = registered_store()
    client = full_app(store).test_client()
    assert client.post("/secrets", json={"name": "db", "data": B64}).status_code == 201
    store.submit(RegisterNode(node=NODE.__class__(**{**NODE.__dict__, "id": "old", "log_version": 4})), 1.0)
    refused = [client.post("/secrets", json={"name": "db2", "data": B64}),
               client.put("/secrets/db", json={"data": base64.b64encode(b"other").decode()}),
               client.post("/configs", json={"name": "app.conf", "data": B64}),
               client.put("/services/web", json={**WEB, "secrets": [{"source": "db"}]}),
               client.post("/tasks", json={"image": "app:1", "memory": "64M", "env": {"PW": {"secret": "db"}}})]
    for answer in refused:
        assert answer.status_code == 409 and "log format 5" in answer.json["error"], answer.json
    assert client.get("/secrets/db").json["version"] == 1 and client.get("/secrets/db2").status_code == 404
    assert client.get("/services/web").status_code == 404 and client.get("/tasks").json == []
    assert client.put("/services/web", json=WEB).status_code == 201  # a plain service still is
