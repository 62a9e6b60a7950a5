"""The HTTP API: a Flask application factory over the replicated store.

The app decides nothing. Writes become typed commands submitted through the
:class:`~orion.store.port.Store` (which forwards them to the Raft leader);
reads run on this node's copy of the state machine and say which applied index
they reflect (``X-Orion-Index``), so a client can tell how fresh an answer is.
Every route is served at ``/v1/...`` and at the seed's unversioned path (:class:`Versioned`).

``POST /tasks`` commits the task placed when a node fits (``ApiDeps.create``:
the create and its placement share one entry), else waits briefly
(``placement_wait``) for the leader's scheduler to place it, so the common
case answers with the node and ports at once; if placement takes longer the
answer is the pending task, which is still correct: the task is committed
either way.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flask import Flask, Response, jsonify, request

from orion.api.blocking import block
from orion.api.errors import ApiError, error_response, register_error_handlers
from orion.api.schema.openapi import PREFIX as API_PREFIX
from orion.api.schema.openapi import openapi_document, query_names
from orion.api.schema.problems import ValidationError, unknown
from orion.api.schema.tasks import parse_task_request
from orion.api.views import node_view, task_view
from orion.domain.model import PENDING, TASK_STATES, TERMINAL_STATES, Resources, Task, TaskSpec
from orion.state.commands import CreateTask, StopTask
from orion.store.port import Store
from orion.version import orion_version

# Printable ASCII, bounded: the key is stored in the replicated state and shown in logs.
_MAX_IDEMPOTENCY_KEY = 200
# Each wait for the next apply is capped so a missed listener call costs at most this much.
_POLL_STEP = 0.25


def new_task_id() -> str:
    """12 hex chars: 48 random bits, short enough to type, collisions negligible per cluster."""
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class ApiDeps:
    """What the agent hands the API. The limits and timeouts are the agent's settings
    (values and reasons in ``orion/defaults.py``)."""

    store: Store
    node_id: str
    max_body_bytes: int
    write_timeout: float
    placement_wait: float
    api_token: str | None = None
    id_factory: Callable[[], str] = new_task_id
    # node id -> extra fields for GET /nodes (this node's gossip view: state, incarnation, health).
    nodes_view: Callable[[], Mapping[str, Mapping[str, Any]]] | None = None
    # Served at GET /metrics when given (e.g. prometheus_client.make_wsgi_app()).
    metrics_wsgi: Callable[..., Any] | None = None
    # Metrics name tasks and nodes: protected by the token unless the scraper cannot send one.
    metrics_requires_token: bool = True
    # Set when the agent starts to shut down: held blocking reads answer at once.
    closing: threading.Event | None = None
    # Paths answered without the token: load balancers and systemd probe /health.
    open_paths: frozenset[str] = field(default_factory=lambda: frozenset({"/health"}))
    # Commits a CreateTask and returns its result; the agent's places the task in the same
    # entry (PlacementLoop.submit_create). None: a plain submit, the leader's pass places it.
    create: Callable[[CreateTask], dict[str, Any]] | None = None


class AppliedSignal:
    """Wakes request threads when the store applies something (one listener per app,
    because a store cannot forget listeners)."""

    def __init__(self, store: Store) -> None:
        self._cond = threading.Condition()
        self._index = 0
        store.add_listener(self._on_apply)

    def _on_apply(self, index: int) -> None:
        with self._cond:
            self._index = max(self._index, index)
            self._cond.notify_all()

    def wait_beyond(self, index: int, timeout: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._index > index, timeout)


def _settled(task: Task | None) -> bool:
    """Placed (or otherwise moved on), or the scheduler said why it cannot place it."""
    return task is None or task.state != PENDING or bool(task.reason)


def _read_json_body(max_body: int) -> Any:
    mimetype = request.mimetype
    if mimetype and mimetype != "application/json" and not mimetype.endswith("+json"):
        raise ValidationError(
            None, f"the body is {mimetype}; send JSON with the header Content-Type: application/json", 415
        )
    data = request.get_data(cache=False)  # over MAX_CONTENT_LENGTH -> 413 before reading it all
    if not data.strip():
        raise ValidationError(None, "the body is empty; send a JSON object with at least image and memory")

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


def _idempotency_key() -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > _MAX_IDEMPOTENCY_KEY or not all(32 < ord(c) < 127 for c in key):
        raise ValidationError(
            "Idempotency-Key", f"must be at most {_MAX_IDEMPOTENCY_KEY} printable ASCII characters, no spaces"
        )
    return key


def _json(body: Any, status: int, index: int) -> Response:
    response = jsonify(body)
    response.status_code = status
    response.headers["X-Orion-Index"] = str(index)
    return response


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


def create_app(deps: ApiDeps) -> Flask:
    """Build the Flask app for one node; every dependency comes in through ``deps``."""
    app = Flask("orion.api")
    app.wsgi_app = Versioned(app.wsgi_app)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = deps.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order
    store = deps.store
    applied = AppliedSignal(store)
    register_error_handlers(app, deps.max_body_bytes)
    token = deps.api_token.encode() if deps.api_token else None

    @app.before_request
    def _authenticate() -> Response | None:
        if token is None or request.path in deps.open_paths:
            return None
        if request.path == "/metrics" and not deps.metrics_requires_token:
            return None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token):
            return None
        response = error_response(
            401, "missing or wrong API token; send the header Authorization: Bearer <token> "
                 "(orion --token or ORION_API_TOKEN)", "Authorization")
        response.headers["WWW-Authenticate"] = 'Bearer realm="orion"'
        return response

    documented_query = query_names()

    @app.before_request
    def _known_query_only() -> None:
        """A misspelt query parameter is a 400 naming it, never silently ignored."""
        rule = request.url_rule
        if rule is None or not request.args:
            return
        known = documented_query.get((request.method, rule.rule.replace("<path:", "<")))
        if known is None:
            return
        for name in request.args:
            if name not in known:
                raise ValidationError(name, unknown(name, known, {}, "query parameter"))

    def wait_for_placement(task_ids: list[str]) -> tuple[list[Task | None], int]:
        deadline = time.monotonic() + deps.placement_wait
        while True:
            tasks, index = store.read(lambda m: [m.task(t) for t in task_ids])
            remaining = deadline - time.monotonic()
            if all(_settled(t) for t in tasks) or remaining <= 0:
                return tasks, index
            applied.wait_beyond(index, min(remaining, _POLL_STEP))

    def block_read() -> None:
        """``?index=N&wait=D`` holds a read until this node applied beyond N (orion/api/blocking.py)."""
        block(request.args, lambda: store.read(lambda m: None)[1], applied.wait_beyond, deps.closing)

    def find_task(task_id: str) -> tuple[Task, int]:
        task, index = store.read(lambda m: m.task(task_id))
        if task is None:
            raise ApiError(404, f"no task {task_id}", "id")
        return task, index

    def submit_create(spec: TaskSpec, key: str) -> tuple[str, bool]:
        command = CreateTask(request_id=uuid.uuid4().hex, task_id=deps.id_factory(), spec=spec,
                             idempotency_key=key)
        result = deps.create(command) if deps.create is not None else store.submit(command, deps.write_timeout)
        if not result.get("ok", False):
            reason = result.get("error", "no reason given")
            raise ApiError(409, f"the cluster refused the task: {reason}")
        return str(result["task"]["id"]), bool(result.get("created", True))

    @app.post("/tasks")
    def create_task() -> Response:
        spec = parse_task_request(_read_json_body(deps.max_body_bytes))
        key = _idempotency_key()
        if spec.count == 1:
            created_ids = [submit_create(spec, key)]
        else:  # replicas: one task each, so each is placed, reported and stopped on its own;
            # a shared group id makes them one service (scaled by PATCH /tasks/<id>).
            spec = replace(spec, group=new_task_id())
            created_ids = [submit_create(spec, f"{key}/{i}" if key else "") for i in range(1, spec.count + 1)]
        ids = [task_id for task_id, _ in created_ids]
        created = any(new for _, new in created_ids)
        tasks, index = wait_for_placement(ids) if created else store.read(lambda m: [m.task(t) for t in ids])
        views = [task_view(t, detail=True) for t in tasks if t is not None]
        response = _json(views[0] if spec.count == 1 else views, 201 if created else 200, index)
        response.headers["Location"] = f"{request.script_root}/tasks/{ids[0]}"
        return response

    @app.get("/tasks")
    def list_tasks() -> Response:
        state = request.args.get("state")
        if state is not None and state not in TASK_STATES:
            raise ValidationError("state", f"{state!r} is not one of {', '.join(TASK_STATES)}")
        service = request.args.get("service")  # a service's replicas (docs/services.md)
        block_read()
        tasks, index = store.read(lambda m: m.tasks() if service is None else m.services.replicas(service))
        return _json([task_view(t) for t in tasks if state is None or t.state == state], 200, index)

    @app.get("/tasks/<task_id>")
    def get_task(task_id: str) -> Response:
        block_read()
        task, index = find_task(task_id)
        return _json(task_view(task, detail=True), 200, index)

    @app.delete("/tasks/<task_id>")
    def stop_task(task_id: str) -> Response:
        find_task(task_id)
        result = store.submit(StopTask(request_id=uuid.uuid4().hex, task_id=task_id), deps.write_timeout)
        if isinstance(result, dict) and result.get("ok") is False and "error" in result:
            raise ApiError(409, f"cannot stop {task_id}: {result['error']}", "id")
        task, index = find_task(task_id)
        return _json(task_view(task, detail=True), 200 if task.state in TERMINAL_STATES else 202, index)

    @app.get("/nodes")
    def list_nodes() -> Response:
        block_read()
        leader = store.status().leader
        extras = deps.nodes_view() if deps.nodes_view is not None else {}

        def snapshot(m: Any) -> list[tuple[Any, Resources, Any]]:
            out = []
            for node in m.nodes():
                usage = m.usage(node.id)
                out.append((node, usage.used, usage.ports))
            return out

        rows, index = store.read(snapshot)
        nodes = [node_view(n, used, ports, leader, extras.get(n.id)) for n, used, ports in rows]
        return _json(nodes, 200, index)

    @app.get("/raft")
    def raft_status() -> Response:
        block_read()
        status = store.status()
        digest, digest_index = store.digest()  # replicas at equal indexes must show equal digests
        return _json({**status.to_dict(), "digest": digest, "digestIndex": digest_index}, 200,
                     status.applied_index)

    @app.get("/health")
    def health() -> tuple[Response, int]:
        status = store.status()
        ok = store.ready()  # a leader with a quorum, and this replica caught up (Store.ready)
        body = {"status": "ok" if ok else "no-leader", "leader": status.leader, "node": deps.node_id,
                "appliedIndex": status.applied_index, "version": orion_version()}
        return jsonify(body), 200 if ok else 503

    @app.get("/openapi.json")
    def openapi() -> Response:
        return jsonify(openapi_document())

    if deps.metrics_wsgi is not None:
        metrics_app = deps.metrics_wsgi

        @app.get("/metrics")
        def metrics() -> Response:
            return Response.from_app(metrics_app, request.environ)

    return app
