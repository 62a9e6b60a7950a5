"""Every body and every query string goes through the strict readers (orion/api/http.py and the
models of orion/api/schema/): the routes that once read ``request.get_json(silent=True)`` or
``request.args`` by hand refuse what the others refuse, with the field named, and state stays intact."""

from __future__ import annotations

import pytest
from api_kit import full_app, registered_store
from flask.testing import FlaskClient

from orion.api.schema.problems import ValidationError
from orion.api.schema.queries import LogsQuery, RollbackQuery, parse_query


@pytest.fixture
def client() -> FlaskClient:
    return full_app(registered_store()).test_client()


def test_a_scale_body_with_a_key_twice_is_refused_and_nothing_changes(client: FlaskClient) -> None:
    task = client.post("/tasks", json={"image": "orion/busybox:latest", "memory": "64M"}).json
    resp = client.patch(f"/tasks/{task['id']}", data='{"count": 3, "count": 0}', content_type="application/json")
    assert (resp.status_code, resp.json["field"]) == (400, "count")
    assert "appears twice" in resp.json["error"]
    assert len(client.get("/tasks").json) == 1


def test_a_scale_body_that_is_not_json_is_415_and_an_empty_one_says_what_to_send(client: FlaskClient) -> None:
    task = client.post("/tasks", json={"image": "orion/busybox:latest", "memory": "64M"}).json
    resp = client.patch(f"/tasks/{task['id']}", data="count=3", content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 415 and "Content-Type: application/json" in resp.json["error"]
    resp = client.patch(f"/tasks/{task['id']}", data="", content_type="application/json")
    assert resp.status_code == 400 and '{"count": 3}' in resp.json["error"]


def test_an_admission_body_with_nan_or_a_key_twice_is_refused(client: FlaskClient) -> None:
    resp = client.post("/cluster/members", data='{"raftAddr": "a:1", "raftAddr": "b:1", "proof": "p"}',
                       content_type="application/json")
    assert (resp.status_code, resp.json["field"]) == (400, "raftAddr")
    resp = client.post("/cluster/members", data='{"raftAddr": NaN, "proof": "p"}', content_type="application/json")
    assert resp.status_code == 400 and "finite number" in resp.json["error"]


@pytest.mark.parametrize(("query", "field"), [("version=x", "version"), ("version=%C2%B2", "version"),
                                              ("version=0", "version"), ("versoin=1", "versoin")])
def test_a_rollback_query_is_parsed_by_its_model(client: FlaskClient, query: str, field: str) -> None:
    client.put("/services/web", json={"image": "orion/busybox:latest", "memory": "64M"})
    resp = client.post(f"/services/web/rollback?{query}")
    assert (resp.status_code, resp.json["field"]) == (400, field), resp.json
    assert "GET /services/web/versions" in resp.json["error"] or "did you mean 'version'" in resp.json["error"]


def test_query_models_refuse_unknown_names_in_their_own_words() -> None:
    with pytest.raises(ValidationError) as info:
        parse_query(LogsQuery, {"folow": "1"}, now=0.0)
    assert info.value.field == "folow" and "unknown query parameter; did you mean 'follow'?" in str(info.value)
    assert parse_query(RollbackQuery, {}, name="web").version == 0

