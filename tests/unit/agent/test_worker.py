"""The agent's worker: the gthread methods it extends still exist as it read them, identical
blocking reads share one answer only while it is true, and which requests stream.

The worker itself runs under real gunicorn in tests/integration/test_blocking_watchers.py."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from gunicorn.workers.gthread import PollableMethodQueue, ThreadWorker

from orion.agent.shared_answers import SHARE_FOR, SharedAnswers
from orion.agent.worker import HoldingWorker
from orion.api.holds import HOLD_KEY, HOLDABLE, INDEX, RELEASED_ONLY, SHAREABLE_KEY, Released
from orion.api.logs import is_followed_log

# gthread's methods HoldingWorker overrides or calls, with the parameters it passes them.
EXTENDED = {
    "handle": ["self", "conn"],
    "handle_request": ["self", "req", "conn"],
    "finish_request": ["self", "conn", "fs"],
    "enqueue_req": ["self", "conn"],
    "wait_for_and_dispatch_events": ["self", "timeout"],
    "handle_exit": ["self", "sig", "frame"],
    "load_wsgi": ["self"],
    "run": ["self"],
}


@pytest.mark.parametrize(("name", "params"), sorted(EXTENDED.items()))
def test_the_gthread_methods_the_worker_extends_are_there_as_it_read_them(name: str, params: list[str]) -> None:
    assert list(inspect.signature(getattr(ThreadWorker, name)).parameters) == params
    assert getattr(HoldingWorker, name) is not getattr(ThreadWorker, name)


def test_the_loop_wake_up_the_worker_uses_is_there() -> None:
    assert list(inspect.signature(PollableMethodQueue.defer).parameters) == ["self", "callback", "args"]


class App:
    """A WSGI app that answers ``index`` and says whether the answer may be shared."""

    def __init__(self) -> None:
        self.calls = 0
        self.index = 7
        self.shareable = True
        self.status = "200 OK"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls += 1
        environ[SHAREABLE_KEY] = self.shareable
        start_response(self.status, [("Content-Type", "application/json"), ("X-Orion-Index", str(self.index))])
        return [b'{"n": %d}' % self.calls]


def environ(query: str = "index=6&wait=60s", auth: str = "Bearer t", method: str = "GET") -> dict[str, Any]:
    return {"REQUEST_METHOD": method, "PATH_INFO": "/tasks", "QUERY_STRING": query, "HTTP_AUTHORIZATION": auth}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def serve(shared: SharedAnswers, app: App, env: dict[str, Any], current: int | None = 7) -> bytes:
    statuses: list[str] = []
    body = shared.serve(app, env, lambda status, headers, exc_info=None: statuses.append(status),
                        None if current is None else lambda: current)
    assert statuses, "start_response was not called"
    return b"".join(body)


def test_identical_blocking_reads_at_one_index_share_one_answer() -> None:
    app, shared = App(), SharedAnswers(Clock())
    assert [serve(shared, app, environ()) for _ in range(3)] == [b'{"n": 1}'] * 3
    assert app.calls == 1


def test_an_answer_is_shared_only_while_its_index_stands_and_briefly() -> None:
    app, clock = App(), Clock()
    shared = SharedAnswers(clock)
    serve(shared, app, environ())
    assert serve(shared, app, environ(), current=8) == b'{"n": 2}'  # the index moved on: asked again
    clock.now += SHARE_FOR + 0.01
    assert serve(shared, app, environ(), current=7) == b'{"n": 3}'  # too old (gossip's view may have moved)


@pytest.mark.parametrize("other", [environ(auth="Bearer other"), environ(query="index=5&wait=60s"),
                                   environ(query="index=6&wait=60s&state=running"), environ(method="HEAD")])
def test_a_request_that_differs_in_url_token_or_method_runs_the_app(other: dict[str, Any]) -> None:
    app, shared = App(), SharedAnswers(Clock())
    serve(shared, app, environ())
    serve(shared, app, other)
    assert app.calls == 2


def test_what_the_app_did_not_mark_shareable_is_never_shared() -> None:
    """An answer to a wait that ran out carries the asked index: an identical request must wait."""
    for change in ({"shareable": False}, {"status": "404 NOT FOUND"}):
        app, shared = App(), SharedAnswers(Clock())
        for key, value in change.items():
            setattr(app, key, value)
        serve(shared, app, environ())
        serve(shared, app, environ())
        assert app.calls == 2, change


def test_plain_reads_and_a_worker_without_watchers_share_nothing() -> None:
    app, shared = App(), SharedAnswers(Clock())
    for env, current in ((environ(query=""), 7), (environ(), None)):
        serve(shared, app, env, current)
        serve(shared, app, env, current)
    assert app.calls == 4


@pytest.mark.parametrize(("method", "path", "query", "streams"), [
    ("GET", "/tasks/abc/logs", "follow=1", True),
    ("GET", "/v1/tasks/abc/logs", "tail=5&follow=true", True),
    ("GET", "/tasks/abc/logs", "follow=0", False),
    ("GET", "/tasks/abc/logs", "", False),
    ("GET", "/tasks/abc", "follow=1", False),
    ("GET", "/tasks/abc/logs/x", "follow=1", False),
    ("POST", "/tasks/abc/logs", "follow=1", False),
])
def test_only_followed_logs_go_to_a_stream_thread(method: str, path: str, query: str, streams: bool) -> None:
    assert is_followed_log(method, path, query) is streams


def test_a_linearizable_answer_goes_only_to_held_reads_released_later() -> None:
    """A linearizable read made its read point before it was held: its answer (beyond that
    point) may go to another held read's second pass, never to a request just arriving, which
    has made none (issue #20)."""
    app, shared = App(), SharedAnswers(Clock())
    app.shareable = RELEASED_ONLY
    serve(shared, app, environ())
    serve(shared, app, {**environ(), HOLD_KEY: HOLDABLE})  # arriving: runs the app (its read point)
    assert app.calls == 2
    assert serve(shared, app, {**environ(), HOLD_KEY: Released(INDEX)}) == b'{"n": 2}'  # released: shared
    assert app.calls == 2
