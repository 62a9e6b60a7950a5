"""A write the state machine refuses: one table maps its kind to the status, the body names the
route's attempt and the machine's reason (``orion/api/refusals.py``: ``REFUSAL_STATUS``)."""

from __future__ import annotations

from api_kit import registered_store
from parts import api_deps

from orion.api.app import create_app
from orion.api.refusals import REFUSAL_STATUS
from orion.state.results import RefusalKind


def test_every_kind_of_refusal_has_its_status():
    assert set(REFUSAL_STATUS) == set(RefusalKind)
    assert all(400 <= status < 500 for status in REFUSAL_STATUS.values())


def test_a_create_the_machine_refuses_is_409_with_its_reason():
    """Two tasks given the same id (the id factory is the writer's): the second is refused as existing."""
    app = create_app(api_deps(registered_store(), placement_wait=0.0, id_factory=lambda: "fixed"))
    client = app.test_client()
    assert client.post("/tasks", json={"image": "img", "memory": "64M"}).status_code == 201
    again = client.post("/tasks", json={"image": "img", "memory": "64M"})
    assert (again.status_code, again.get_json()) == (
        409, {"error": "the cluster refused the task: task fixed already exists"})
