"""A service's ``stack`` field and ``/stacks``: a stack is the services that carry its name.

Over a real StateMachine in a LocalStore (``ServiceWorld``): the field is
validated and named like every other, changes nothing a container holds, and the
routes group, show and delete exactly the services that carry the stack.
"""

from __future__ import annotations

import pytest
from service_world import WEB, ServiceWorld

from orion.api.schema.problems import ValidationError
from orion.api.schema.services import parse_service_request
from orion.api.service_views import spec_body
from orion.domain.service import ServiceSpec
from orion.domain.spec_diff import spec_diff


def member(stack: str, service: str, **fields) -> dict:
    return {**WEB, "name": f"{stack}_{service}", "stack": stack, **fields}


@pytest.fixture
def world() -> ServiceWorld:
    return ServiceWorld()


def test_the_stack_field_round_trips_through_the_put_body_and_the_log():
    spec = parse_service_request("app_web", member("app", "web"))
    assert spec.stack == "app" and spec_body(spec)["stack"] == "app"
    assert parse_service_request("app_web", spec_body(spec)) == spec
    assert ServiceSpec.from_dict(spec.to_dict()) == spec


def test_a_service_outside_any_stack_is_written_as_before_stacks_existed():
    spec = parse_service_request("web", WEB)
    assert spec.stack == "" and "stack" not in spec.to_dict() and "stack" not in spec_body(spec)


def test_a_stack_change_is_in_place_and_replaces_no_replica():
    old = parse_service_request("app_web", {**WEB, "name": "app_web"})
    new = parse_service_request("app_web", member("app", "web"))
    diff = spec_diff(old, new)
    assert (diff.changed, diff.replace, diff.scale) == (("stack",), False, False)


@pytest.mark.parametrize(("name", "stack", "says"), [
    ("web", "app", "named app_<service>"),
    ("other_web", "app", "named app_<service>"),
    ("App_web", "App", "not a stack name"),
    ("a_web", "-a", "not a stack name"),
    ("x_web", 3, "not a stack name"),
])
def test_a_bad_stack_is_refused_naming_the_field(name, stack, says):
    with pytest.raises(ValidationError) as exc:
        parse_service_request(name, {**WEB, "name": name, "stack": stack})
    assert exc.value.field == "stack" and says in exc.value.message


def test_stacks_group_the_services_that_carry_them(world):
    for name, body in (("app_web", member("app", "web")), ("app_db", member("app", "db", count=1)),
                       ("ops_mon", member("ops", "mon", count=1)), ("web", WEB)):
        assert world.http.put(f"/services/{name}", json=body).status_code == 201
    world.settle()
    assert world.http.get("/services/app_web").json["stack"] == "app"
    assert world.http.get("/services/web").json["stack"] is None
    stacks = world.http.get("/stacks").json
    assert stacks == [
        {"name": "app", "services": ["app_db", "app_web"], "count": 3, "healthy": 3, "tasks": {"running": 3}},
        {"name": "ops", "services": ["ops_mon"], "count": 1, "healthy": 1, "tasks": {"running": 1}},
    ]
    app = world.http.get("/stacks/app")
    assert app.status_code == 200 and "X-Orion-Index" in app.headers
    assert [d["name"] for d in app.json["details"]] == ["app_db", "app_web"]
    assert app.json["details"][1]["spec"]["stack"] == "app"
    assert {r["state"] for d in app.json["details"] for r in d["replicas"]} == {"running"}


def test_deleting_a_stack_deletes_exactly_its_services(world):
    for name, body in (("app_web", member("app", "web")), ("app_db", member("app", "db", count=1)),
                       ("web", WEB)):
        world.http.put(f"/services/{name}", json=body)
    world.settle()
    gone = world.http.delete("/stacks/app")
    assert gone.status_code == 200, gone.json
    assert gone.json["deleted"] == ["app_db", "app_web"] and len(gone.json["stopping"]) == 3
    assert [s["name"] for s in world.http.get("/services").json] == ["web"]
    assert world.http.get("/stacks").json == []
    missing = world.http.get("/stacks/app")
    assert (missing.status_code, missing.json["field"]) == (404, "name") and "no stack app" in missing.json["error"]
    assert world.http.delete("/stacks/app").status_code == 404


def test_a_service_leaves_its_stack_when_declared_without_it(world):
    world.http.put("/services/app_web", json=member("app", "web"))
    moved = world.http.put("/services/app_web", json={**WEB, "name": "app_web"})
    assert moved.status_code == 201 and moved.json["diff"] == {"changed": ["stack"], "replace": False,
                                                               "scale": False}
    assert world.http.get("/stacks").json == []
