"""Blocking queries over a real StateMachine in a LocalStore: ``?index=N&wait=D``.

A writer thread commits while a blocking request waits; the request must answer
with the write in its body and an ``X-Orion-Index`` beyond N. The writer starts
only once the request has read the store (the store says so), so a request
that did not block would answer with the stale state and fail the test.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from parts import api_deps

from orion.api.app import applied_signal, create_app
from orion.api.holds import (
    CLIENT,
    CLOSING,
    FULL,
    HOLD_KEY,
    HOLDABLE,
    INDEX,
    RELEASED_ONLY,
    SHAREABLE_KEY,
    WAIT,
    HeldRead,
    Released,
)
from orion.api.schema.problems import ValidationError
from orion.api.schema.queries import MAX_WAIT, parse_blocking, parse_wait
from orion.api.services import services_blueprint
from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.domain.service import ServiceSpec
from orion.state.commands import CreateTask, PutService, RegisterNode
from orion.state.machine import StateMachine
from orion.store.local import LocalStore

GiB = 1 << 30
NODE = NodeInfo(id="node1", api_addr="127.0.0.1:8000", raft_addr="local",
                capacity=Resources(memory=4 * GiB, cpu_millis=2000))


class ObservedStore(LocalStore):
    """A LocalStore that says when a read has returned: the writer waits for it."""

    def __init__(self) -> None:
        super().__init__()
        self.was_read = threading.Event()

    def read(self, fn: Callable[[StateMachine], Any]) -> tuple[Any, int]:
        result = super().read(fn)
        self.was_read.set()
        return result


def create(store: LocalStore, task_id: str) -> None:
    spec = TaskSpec(image="busybox", memory=64 << 20)
    store.submit(CreateTask(request_id=task_id, task_id=task_id, spec=spec), 1.0)


@pytest.fixture
def store() -> ObservedStore:
    store = ObservedStore()
    store.submit(RegisterNode(node=NODE), 1.0)
    create(store, "t1")
    return store


@pytest.fixture
def client(store: ObservedStore) -> FlaskClient:
    app = create_app(api_deps(store))
    app.register_blueprint(services_blueprint(store, 1.0, applied_signal(app)))
    store.submit(PutService(request_id="web", spec=ServiceSpec(name="web", task=TaskSpec(image="busybox",
                                                                                        memory=64 << 20)), at=0.0), 1.0)
    return app.test_client()


READS = ["/tasks", "/tasks/t1", "/nodes", "/raft", "/services", "/services/web", "/services/web/versions"]


def index_of(response: Any) -> int:
    return int(response.headers["X-Orion-Index"])


def blocked_get(client: FlaskClient, store: ObservedStore, path: str, write: Callable[[], None]) -> Any:
    """GET ``path`` in a thread; once it has read the store, ``write``; return its answer."""
    answers: list[Any] = []
    store.was_read.clear()
    reader = threading.Thread(target=lambda: answers.append(client.get(path)))
    reader.start()
    assert store.was_read.wait(10)
    write()
    reader.join(30)
    assert answers, "the blocking request never answered"
    return answers[0]


@pytest.mark.parametrize("path", READS)
def test_a_blocking_read_answers_after_the_next_write(client: FlaskClient, store: ObservedStore,
                                                      path: str) -> None:
    before = index_of(client.get(path))
    answer = blocked_get(client, store, f"{path}?index={before}&wait=60s", lambda: create(store, "t2"))
    assert answer.status_code == 200
    assert index_of(answer) > before
    if path == "/tasks":
        assert {t["id"] for t in answer.get_json()} == {"t1", "t2"}
    if path == "/raft":
        assert answer.get_json()["applied_index"] > before


def test_an_index_already_passed_answers_at_once(client: FlaskClient, store: ObservedStore) -> None:
    current = index_of(client.get("/tasks"))
    answer = client.get(f"/tasks?index={current - 1}&wait=5m")  # would hang the test if it blocked
    assert answer.status_code == 200
    assert index_of(answer) == current


def test_a_wait_that_elapses_answers_the_same_index(client: FlaskClient) -> None:
    current = index_of(client.get("/nodes"))
    answer = client.get(f"/nodes?index={current}&wait=0s")
    assert answer.status_code == 200
    assert index_of(answer) == current
    assert [n["id"] for n in answer.get_json()] == ["node1"]


@pytest.mark.parametrize(("query", "field"), [
    ("index=-1", "index"), ("index=abc", "index"), ("index=1.5", "index"), ("index=", "index"),
    ("index=1&wait=soon", "wait"), ("index=1&wait=-3s", "wait"), ("index=1&wait=3d", "wait"),
    ("wait=forever", "wait"),
])
def test_bad_index_or_wait_is_a_400_naming_the_field(client: FlaskClient, query: str, field: str) -> None:
    for path in READS:
        answer = client.get(f"{path}?{query}")
        assert answer.status_code == 400, (path, query)
        body = answer.get_json()
        assert body["field"] == field
        assert field in body["error"]


def test_durations_and_the_cap() -> None:
    assert parse_wait("30s") == 30.0
    assert parse_wait("500ms") == 0.5
    assert parse_wait("2m") == 120.0
    assert parse_wait("1.5") == 1.5
    assert parse_wait("10h") == MAX_WAIT
    assert parse_blocking({"index": "7"}) == (7, MAX_WAIT)
    assert parse_blocking({"wait": "1s"}) is None
    with pytest.raises(ValidationError):
        parse_wait("1e3s")


def test_a_closing_agent_releases_held_reads(store: ObservedStore) -> None:
    closing = threading.Event()
    client = create_app(api_deps(store, closing=closing)).test_client()
    current = index_of(client.get("/tasks"))
    answer = blocked_get(client, store, f"/tasks?index={current}&wait=5m", closing.set)
    assert answer.status_code == 200
    assert index_of(answer) == current  # nothing was written: released, not woken


@pytest.mark.parametrize("wait", ["²", "1.²", "٣"])
def test_a_wait_in_non_ascii_digits_is_a_400_not_a_crash(wait: str) -> None:
    """str.isdigit() accepts '²' and Arabic-Indic digits; float() does not (found by the contract test)."""
    with pytest.raises(ValidationError) as info:
        parse_wait(wait)
    assert info.value.field == "wait"


# -- under a server that holds reads (the agent's worker, orion/agent/worker.py) -------------------


def held_get(client: FlaskClient, path: str, hold: object) -> tuple[Any, dict]:
    """GET ``path`` with the worker's mark; the answer and the request's environ."""
    app = client.application
    inner, seen = app.wsgi_app, []

    def recording(environ: dict, start_response: Any) -> Any:
        seen.append(environ)
        return inner(environ, start_response)

    app.wsgi_app = recording  # type: ignore[method-assign]
    try:
        answer = client.get(path, environ_base={HOLD_KEY: hold})
    finally:
        app.wsgi_app = inner  # type: ignore[method-assign]
    return answer, seen[0]


@pytest.mark.parametrize("path", READS)
def test_a_read_that_must_wait_is_handed_to_the_server_without_waiting(client: FlaskClient, path: str) -> None:
    current = index_of(client.get(path))
    with pytest.raises(HeldRead) as held:
        client.get(f"{path}?index={current}&wait=60s", environ_base={HOLD_KEY: HOLDABLE})
    assert held.value.index == current
    assert held.value.watch.current() == current


@pytest.mark.parametrize(("stale", "shareable"), [("&stale", True), ("", RELEASED_ONLY)])
def test_a_read_whose_index_passed_answers_at_once_and_may_be_shared(
        client: FlaskClient, stale: str, shareable: bool | str) -> None:
    """An answer given again to an identical request is no read point of that request's own:
    a ``?stale`` read's goes to anyone, a linearizable one's only to held reads' second passes."""
    current = index_of(client.get("/tasks"))
    answer, environ = held_get(client, f"/tasks?index={current - 1}{stale}", HOLDABLE)
    assert (answer.status_code, index_of(answer), environ[SHAREABLE_KEY]) == (200, current, shareable)


@pytest.mark.parametrize(("why", "shareable"), [(INDEX, True), (WAIT, False), (CLIENT, False), (CLOSING, False)])
def test_a_released_read_answers_now(client: FlaskClient, why: str, shareable: bool) -> None:
    """Only an answer released by its index passing may be given to an identical request: one whose
    wait ran out carries the asked index, and an identical request must still wait."""
    current = index_of(client.get("/services"))
    answer, environ = held_get(client, f"/services?index={current}&wait=60s&stale", Released(why))
    assert (answer.status_code, index_of(answer)) == (200, current)
    assert environ[SHAREABLE_KEY] is shareable
    linearizable, environ = held_get(client, f"/services?index={current}&wait=60s", Released(why))
    assert linearizable.status_code == 200 and environ[SHAREABLE_KEY] == (RELEASED_ONLY if shareable else False)


def test_a_node_holding_all_it_may_answers_429_naming_the_limit(client: FlaskClient) -> None:
    answer, _ = held_get(client, "/tasks?index=1", Released(FULL, limit=4096))
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "1"
    body = answer.get_json()
    assert body["field"] == "index" and "4096" in body["error"] and "max_blocking_queries" in body["error"]


def test_bad_blocking_queries_are_refused_before_any_hold(client: FlaskClient) -> None:
    answer, _ = held_get(client, "/services?index=abc", HOLDABLE)
    assert (answer.status_code, answer.get_json()["field"]) == (400, "index")


@pytest.mark.parametrize("path", ["/services/-bad", "/services/-bad/versions", "/services/-bad/runs"])
def test_a_name_that_cannot_exist_is_refused_before_any_hold(client: FlaskClient, path: str) -> None:
    """A watcher of a service that may yet be declared is held; one of a name no service can
    have would wait its whole ``wait`` for nothing (the fuzzer's negative cases did, 20 s)."""
    answer, _ = held_get(client, f"{path}?index=1000&wait=60s", HOLDABLE)
    assert (answer.status_code, answer.get_json()["field"]) == (400, "name")


def test_a_closing_agent_holds_nothing_new(store: ObservedStore) -> None:
    closing = threading.Event()
    closing.set()
    client = create_app(api_deps(store, closing=closing)).test_client()
    current = index_of(client.get("/tasks"))
    answer, _ = held_get(client, f"/tasks?index={current}&wait=60s", HOLDABLE)
    assert (answer.status_code, index_of(answer)) == (200, current)
