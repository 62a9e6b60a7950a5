"""What every route shares: the answer and its index, the strict request readers, the
blocking wait, the ``/v1`` mount, and every failure as JSON (who may call is ``auth.py``'s).

One place each, so the blueprints (``tasks.py``, ``status.py``, ``ops.py``,
``services.py``, ``cluster.py``, ``logs.py``) cannot drift apart:

- :func:`answer` is the only way a read says which applied index it reflects
  (``X-Orion-Index``), so a client can tell how fresh an answer is; every answer
  also says whether this node reaches a leader and how long since it heard from
  it (``X-Orion-Known-Leader``, ``X-Orion-Last-Contact``: :func:`install_reads`).
- :func:`install_reads` makes every read of the replicated state linearizable
  before its route runs (``Store.barrier``: Raft's ReadIndex), unless it asks for
  ``?stale``: the operations whose query model is a ``ReadQuery`` (the OpenAPI
  table, ``schema/openapi.py``). A read that cannot be confirmed in time is a 503
  that says why and suggests ``?stale``.
- :func:`json_body` reads a body strictly (JSON only, no duplicate keys, no NaN)
  and hands it to the schema's parser (``orion/api/schema/``); query strings go
  through their models (``schema/queries.py``), whose names the app checks before
  any route runs (:func:`install_guards`).
- :class:`AppliedSignal` holds a blocking read (``?index=N&wait=D``, Consul/Nomad
  style) until this node applied beyond N: a watcher (``orion top``, a script) sees a
  change within one apply instead of polling. The index is this node's *applied
  Raft index*: only replicated state moves it, so a change in gossip's view of a
  node alone does not wake a waiter (``orion top`` bounds its wait). Under the
  agent's worker the wait holds no thread (``holds.py``: the route hands the request
  back to the worker's event loop); elsewhere :func:`wait_for_index` waits on the
  request's thread.
- A client (our CLI, curl, a script) never has to parse an HTML error page or a
  traceback: every failure is ``{"error": ..., "field": ...}``, and an unexpected
  exception is logged with a short id the answer repeats.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from orion.api.holds import FULL, HOLDABLE, INDEX, RELEASED_ONLY, SHAREABLE_KEY, HeldRead, Released, hold_state
from orion.api.schema.openapi import PREFIX as API_PREFIX
from orion.api.schema.openapi import query_models
from orion.api.schema.problems import ValidationError
from orion.api.schema.queries import BlockingQuery, ReadQuery
from orion.store.port import NoLeader, Store, StoreError, WriteTimeout

log = logging.getLogger("orion.api")

INDEX_HEADER = "X-Orion-Index"
# Consul's and Nomad's X-*-KnownLeader and X-*-LastContact: does this node reach a leader
# ("true"/"false"), and how many ms since it last heard from it (0 on the leader).
KNOWN_LEADER_HEADER = "X-Orion-Known-Leader"
LAST_CONTACT_HEADER = "X-Orion-Last-Contact"
# Printable ASCII, bounded: the key is stored in the replicated state and shown in logs.
MAX_IDEMPOTENCY_KEY = 200
# Each wait for the next apply is re-checked this often, so a missed listener call
# (or an index that moved before this request subscribed) costs at most this much.
RECHECK = 0.25
# What an empty body is told when the route does not say better: POST /tasks's minimum.
TASK_HINT = "a JSON object with at least image and memory"

T = TypeVar("T")


# -- answers ------------------------------------------------------------------------------


def answer(body: Any, status: int, index: int) -> Response:
    """A JSON answer saying which applied index it reflects."""
    response = jsonify(body)
    response.status_code = status
    response.headers[INDEX_HEADER] = str(index)
    return response


class ApiError(Exception):
    """A refusal that is not about the request's syntax (unknown id, refused by the state machine)."""

    def __init__(self, status: int, message: str, field: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.retry_after = retry_after


def error_response(status: int, message: str, field: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"error": message, **extra}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


# -- reading a request --------------------------------------------------------------------


def read_json_body(hint: str = TASK_HINT) -> Any:
    """The body as JSON, strictly: a JSON media type (or none), UTF-8, no key twice in one object,
    no NaN or Infinity. ``hint`` says what an empty body should have held."""
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ValidationError(
            None, f"the body is {mimetype}; send JSON with the header Content-Type: application/json", 415
        )
    data = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH -> 413 before reading it all
    if not data.strip():
        raise ValidationError(None, f"the body is empty; send {hint}")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ValidationError(key, "appears twice in the same object; give it once")
            seen[key] = value
        return seen

    def no_constants(name: str) -> Any:
        raise ValidationError(None, f"{name} is not valid JSON; send a finite number")

    try:
        return json.loads(data, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except UnicodeDecodeError:
        raise ValidationError(None, "the body is not UTF-8 text; send UTF-8 encoded JSON") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(
            None, f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None


def json_body(parse: Callable[[Any], T], hint: str = TASK_HINT) -> T:
    """The body read strictly and validated by ``parse`` (a schema parser): the route's value or a 4xx."""
    return parse(read_json_body(hint))


def idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY or not all(32 < ord(c) < 127 for c in key):
        raise ValidationError(
            "Idempotency-Key", f"must be at most {MAX_IDEMPOTENCY_KEY} printable ASCII characters, no spaces"
        )
    return key


# -- blocking reads -----------------------------------------------------------------------


class AppliedSignal:
    """Wakes waiters when the store applies something (one listener per app, because a
    store cannot forget listeners); ``closing`` (the agent shutting down) releases held
    reads. It is also the :class:`~orion.api.holds.AppliedWatch` the agent's worker holds
    reads on: ``subscribe`` adds a call made on every apply."""

    def __init__(self, store: Store, closing: threading.Event | None = None) -> None:
        self._cond = threading.Condition()
        self._index = 0
        self._store = store
        self._closing = closing
        self._subscribers: tuple[Callable[[int], None], ...] = ()
        store.add_listener(self._on_apply)

    def _on_apply(self, index: int) -> None:
        with self._cond:
            self._index = max(self._index, index)
            self._cond.notify_all()
        for fn in self._subscribers:
            fn(index)

    def current(self) -> int:
        """This node's applied index now."""
        return self._store.read(lambda m: None)[1]

    def subscribe(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(index)`` after every apply, on the Raft thread (it must not block)."""
        self._subscribers = (*self._subscribers, fn)  # a new tuple: the Raft thread iterates the old one

    def wait_beyond(self, index: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._index > index, timeout)

    def block(self, query: BlockingQuery) -> None:
        """Hold a blocking read on this node's applied index: handed to the agent's worker
        when it can hold it (``holds.py``), else on this thread (:func:`wait_for_index`)."""
        asked = query.asked
        if asked is None:
            return
        environ = request.environ
        state = hold_state(environ)
        # An answer given again to identical requests (shared_answers.py) is no read point of
        # theirs: this node's own view (/raft) and ?stale reads go to anyone, a linearizable one
        # only to held reads released later (their read point was made before they were held).
        shareable: bool | str = True if not isinstance(query, ReadQuery) or query.stale else RELEASED_ONLY
        if isinstance(state, Released):
            if state.why == FULL:
                raise ApiError(429, f"this node already holds {state.limit} blocking queries, its limit "
                                    "(max_blocking_queries); retry shortly, or read without index", "index",
                               retry_after=1)
            environ[SHAREABLE_KEY] = shareable if state.why == INDEX else False
            return
        if state == HOLDABLE:
            index, wait = asked
            if self.current() > index:
                environ[SHAREABLE_KEY] = shareable
                return
            if wait <= 0 or (self._closing is not None and self._closing.is_set()):
                return
            raise HeldRead(index, time.monotonic() + wait, self)
        wait_for_index(query, self.current, self.wait_beyond, self._closing)


def wait_for_index(
    query: BlockingQuery,
    current_index: Callable[[], int],
    wait_beyond: Callable[[int, float], None],
    closing: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Hold the calling request until ``current_index()`` passes the asked index or the wait
    ends; return at once for a plain read. ``wait_beyond(index, timeout)`` sleeps until the
    store applies beyond ``index`` (or the timeout). Once ``closing`` is set (the agent is
    shutting down) held reads answer within RECHECK: gunicorn would otherwise wait its whole
    graceful timeout for them before stopping the node."""
    asked = query.asked
    if asked is None:
        return
    index, wait = asked
    deadline = clock() + wait
    while True:
        remaining = deadline - clock()
        if current_index() > index or remaining <= 0 or (closing is not None and closing.is_set()):
            return
        wait_beyond(index, min(remaining, RECHECK))


# -- the app around the routes ------------------------------------------------------------


class Versioned:
    """Every route under ``/v1`` as well as at the seed's unversioned path, identical by construction:
    a request for ``/v1/tasks`` is mounted like a WSGI sub-application (``SCRIPT_NAME`` ``/v1``,
    ``PATH_INFO`` ``/tasks``), so one URL map, one handler and one set of checks serve both."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith(API_PREFIX + "/"):
            environ = {**environ, "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + API_PREFIX,
                       "PATH_INFO": path[len(API_PREFIX):]}
        return self.app(environ, start_response)


def install_guards(app: Flask) -> None:
    """Before any route (and after the credentials, ``auth.py``): the query's names."""
    queries = query_models()

    @app.before_request
    def _known_query_only() -> None:
        """A misspelt query parameter is a 400 naming it, never silently ignored: the operation's
        query model refuses any name it lacks before the route runs."""
        rule = request.url_rule
        if rule is None or not request.args:
            return
        model = queries.get((request.method, rule.rule.replace("<path:", "<")))
        if model is not None:
            model.check_names(request.args)


def install_reads(app: Flask, store: Store, timeout: float) -> None:
    """Before a read's route: its read point (linearizable unless ``?stale``), waited for at
    most ``timeout`` (the agent's write_timeout: an election ends well within it). After any
    route: the leader headers. Blocking queries wait in their route, so after the read point:
    what they answer is at least as new as the cluster was when they arrived (a held one is
    answered in a second pass, which needs no read point of its own: ``holds.py``)."""
    reads = {key for key, model in query_models().items() if issubclass(model, ReadQuery)}

    @app.before_request
    def _read_point() -> None:
        rule = request.url_rule
        if rule is None or (request.method, rule.rule.replace("<path:", "<")) not in reads:
            return
        if isinstance(hold_state(request.environ), Released):
            return  # a held read's second pass: its first made the read point, before the hold
        if not ReadQuery.stale_of(request.args):
            store.barrier(timeout)

    @app.after_request
    def _leader_headers(response: Response) -> Response:
        contact = store.leader_contact()
        response.headers[KNOWN_LEADER_HEADER] = "true" if contact.known_leader else "false"
        response.headers[LAST_CONTACT_HEADER] = str(contact.last_contact_ms)
        return response


def store_error_message(exc: StoreError) -> str:
    """The store's own words when it has some, else a sentence an operator can act on."""
    text = str(exc)
    if text:
        return text
    if isinstance(exc, NoLeader):
        return "no Raft leader: the cluster has lost quorum or is electing; retry, and check `orion status`"
    if isinstance(exc, WriteTimeout):
        return "the write was not committed in time; it may still apply: retry with the same Idempotency-Key"
    return "the replicated store refused the write; retry shortly"


def _http_message(exc: HTTPException, max_body: int) -> str:
    code = exc.code or 500
    if code == 404:
        return f"no route {request.method} {request.script_root}{request.path}; see GET /v1/openapi.json for the API"
    if code == 405:
        allowed = ", ".join(sorted(m for m in (exc.valid_methods or []) if m not in ("HEAD", "OPTIONS")))
        return f"{request.method} is not allowed on {request.script_root}{request.path}; allowed: {allowed}"
    if code == 413:
        return f"the body is larger than {max_body} bytes; a task spec is a few KB at most"
    return exc.description or exc.name


def register_error_handlers(app: Flask, max_body: int) -> None:
    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return error_response(exc.status, str(exc), exc.field)

    @app.errorhandler(ApiError)
    def _api(exc: ApiError) -> Response:
        response = error_response(exc.status, exc.message, exc.field)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    @app.errorhandler(StoreError)
    def _store(exc: StoreError) -> Response:
        log.warning("%s %s: %s", request.method, request.path, exc)
        response = error_response(exc.http_status, store_error_message(exc))
        response.headers["Retry-After"] = "1"
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        response = error_response(exc.code or 500, _http_message(exc, max_body))
        if exc.code == 405 and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        if isinstance(exc, HTTPException):  # pragma: no cover - routed above
            return _http(exc)
        incident = uuid.uuid4().hex[:8]
        log.exception("unhandled error %s on %s %s", incident, request.method, request.path)
        return error_response(500, f"internal error {incident}; the agent's log has the details")
