"""The OpenAPI document is the API: every served route and method is in it (and nothing else),
it is valid OpenAPI 3.1, the /v1 paths and the seed's paths answer alike, and what the views
build matches the answer schemas it states."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
from api_kit import Placer, full_app, registered_store
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from service_world import WEB

from orion.api.schema.openapi import PREFIX, openapi_document
from orion.store.local import LocalStore

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def store() -> LocalStore:
    return registered_store()


@pytest.fixture
def client(store: LocalStore) -> FlaskClient:
    return full_app(store).test_client()


def openapi_path(rule: str) -> str:
    """``/tasks/<task_id>`` -> ``/v1/tasks/{task_id}`` (``<path:addr>`` -> ``{addr}``)."""
    parts = [f"{{{p[1:-1].split(':')[-1]}}}" if p.startswith("<") else p for p in rule.split("/")]
    return PREFIX + "/".join(parts)


def test_every_served_route_and_method_is_documented_and_nothing_else(client: FlaskClient) -> None:
    served = {(method.lower(), openapi_path(rule.rule))
              for rule in client.application.url_map.iter_rules() if rule.endpoint != "static"
              for method in (rule.methods or set()) & METHODS}
    documented = {(method, path) for path, item in openapi_document()["paths"].items() for method in item}
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"


def test_the_drift_check_can_fail(client: FlaskClient) -> None:
    """A route added without a document entry is what the check above exists to catch."""
    client.application.add_url_rule("/tasks/<task_id>/restart", "restart", lambda task_id: "", methods=["POST"])
    served = {openapi_path(r.rule) for r in client.application.url_map.iter_rules()}
    assert PREFIX + "/tasks/{task_id}/restart" in served - set(openapi_document()["paths"])


def test_the_served_document_is_valid_openapi_3_1_at_both_paths(client: FlaskClient) -> None:
    served = client.get("/v1/openapi.json").json
    assert served["openapi"] == "3.1.0"
    validate(served)
    assert client.get("/openapi.json").json == served
    assert served["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert served["paths"]["/v1/health"]["get"]["security"] == []
    error = served["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and set(error["properties"]) >= {"error", "field"}


def test_v1_and_the_seed_paths_answer_alike(client: FlaskClient) -> None:
    body = {"image": "nginx", "memory": "64M"}
    created = client.post("/v1/tasks", json=body)
    assert created.status_code == 201 and created.headers["Location"] == "/v1/tasks/t1"
    assert client.post("/tasks", json=body).headers["Location"] == "/tasks/t2"
    assert client.get("/v1/tasks/t1").json == client.get("/tasks/t1").json
    assert client.get("/v1/nodes").json == client.get("/nodes").json
    refused = client.post("/v1/tasks", json={"image": "nginx", "memroy": "64M"})
    assert refused.status_code == 400 and refused.json["field"] == "memroy"
    assert client.get("/v1/nope").json["error"].startswith("no route GET /v1/nope")
    assert client.get("/v2/tasks").status_code == 404


def schema_of(document: dict[str, Any], path: str, method: str, status: str) -> dict[str, Any]:
    answer = document["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    return {**answer, "components": document["components"]}


def conforms(document: dict[str, Any], path: str, method: str, status: str, body: Any) -> None:
    jsonschema.Draft202012Validator(schema_of(document, path, method, status)).validate(body)


def test_the_views_build_what_the_document_says(store: LocalStore) -> None:
    placer = Placer(store)
    try:
        client = full_app(store).test_client()
        doc = client.get("/v1/openapi.json").json
        task = client.post("/v1/tasks", json={"image": "nginx", "memory": "64M", "portBindings": {"80": ""},
                                              "volumes": [{"source": "data", "target": "/d"}], "count": 2})
        assert task.status_code == 201
        conforms(doc, "/v1/tasks", "post", "201", task.json)
        conforms(doc, "/v1/tasks", "get", "200", client.get("/v1/tasks").json)
        conforms(doc, "/v1/tasks/{task_id}", "get", "200", client.get("/v1/tasks/t1").json)
        conforms(doc, "/v1/tasks/{task_id}", "patch", "200", client.patch("/v1/tasks/t1", json={"count": 3}).json)
        conforms(doc, "/v1/nodes", "get", "200", client.get("/v1/nodes").json)
        conforms(doc, "/v1/raft", "get", "200", client.get("/v1/raft").json)
        conforms(doc, "/v1/health", "get", "200", client.get("/v1/health").json)
        conforms(doc, "/v1/cluster/members", "get", "200", client.get("/v1/cluster/members").json)
        service = client.post("/v1/services", json={**WEB, "volumes": [{"source": "data", "target": "/d"}]})
        assert service.status_code == 201, service.json
        conforms(doc, "/v1/services", "post", "201", service.json)
        conforms(doc, "/v1/services", "get", "200", client.get("/v1/services").json)
        conforms(doc, "/v1/services/{name}", "get", "200", client.get("/v1/services/web").json)
        conforms(doc, "/v1/services/{name}/versions", "get", "200", client.get("/v1/services/web/versions").json)
        conforms(doc, "/v1/tasks", "post", "400", client.post("/v1/tasks", json={"image": 1}).json)
        conforms(doc, "/v1/services/{name}", "delete", "200", client.delete("/v1/services/web").json)
        conforms(doc, "/v1/tasks/{task_id}", "delete", "202", client.delete("/v1/tasks/t1").json)
        conforms(doc, "/v1/nodes/{node_id}/drain", "post", "202", client.post("/v1/nodes/node1/drain").json)
    finally:
        placer.close()


def test_a_view_that_drifts_from_the_document_fails_the_check(client: FlaskClient) -> None:
    doc = client.get("/v1/openapi.json").json
    health = client.get("/v1/health").json
    with pytest.raises(jsonschema.ValidationError):
        conforms(doc, "/v1/health", "get", "200", {**health, "appliedIndex": "7"})


def test_a_query_parameter_the_document_does_not_list_is_refused_naming_it(client: FlaskClient) -> None:
    """?stat=running used to answer every task; the document's parameters are the only ones taken."""
    refused = client.get("/v1/tasks?stat=running")
    assert (refused.status_code, refused.json["field"]) == (400, "stat")
    assert "did you mean 'state'" in refused.json["error"]
    assert client.get("/tasks/t1/logs?tial=3").json["field"] == "tial"
    assert client.get("/v1/health?verbose=1").status_code == 400
    assert client.get("/v1/tasks?state=running&index=0&wait=1s").status_code == 200
    assert client.get("/v1/metrics?name[]=orion_up").status_code == 200
