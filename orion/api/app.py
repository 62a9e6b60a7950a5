"""The HTTP API: a Flask application factory over the replicated store.

The app decides nothing. Writes become typed commands submitted through the
:class:`~orion.store.port.Store` (which forwards them to the Raft leader);
reads run on this node's copy of the state machine, linearizable unless they ask
for ``?stale`` (``http.py``, ``install_reads``), and say which applied index
they reflect (``X-Orion-Index``), so a client can tell how fresh an answer is.
Every route is served at ``/v1/...`` and at the seed's unversioned path (``Versioned``).

:func:`create_app` only composes: the shared guards and error answers
(``orion/api/http.py``) around the blueprints that need nothing but ``ApiDeps``:
``/tasks`` (``tasks.py``), this node's reads (``status.py``), snapshots (``operator.py``) and the overlay's
reads (``network.py``). The agent
registers the others with the parts they need: ``ops.py`` (scale, drain),
``services.py``, ``cluster.py`` (membership), ``logs.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from orion.api.audit_file import AuditLog
from orion.api.auth import Auth
from orion.api.http import AppliedSignal, Versioned, install_guards, install_reads, register_error_handlers
from orion.api.network import network_blueprint
from orion.api.operator import operator_blueprint
from orion.api.status import status_blueprint
from orion.api.tasks import new_task_id, tasks_blueprint
from orion.api.tokens import TokenSource
from orion.state.commands import CreateTask
from orion.store.port import Store

# Where the app keeps its AppliedSignal, for the blueprints the agent adds (applied_signal).
APPLIED = "orion.applied"
# Where the app keeps its Auth: the blueprints that forward requests vouch for their caller with it.
AUTH = "orion.auth"


@dataclass(frozen=True)
class ApiDeps:
    """What the agent hands the API. The limits and timeouts are the agent's settings
    (declared ``api.*``, with values and reasons, in ``orion/config/runtime.py``)."""

    store: Store
    node_id: str
    max_body_bytes: int
    write_timeout: float
    placement_wait: float
    # The admin token named "default" (the agents call each other with it); ``tokens`` (the
    # agent's api_tokens_file, orion/api/tokens.py) adds named tokens with scopes.
    api_token: str | None = None
    tokens: TokenSource | None = None
    # Signs (and checks) the caller a forwarded request carries: the Raft secret (auth.py).
    peer_secret: str = ""
    # Where every write is recorded (orion/api/audit_file.py); None: not recorded.
    audit: AuditLog | None = None
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


def create_app(deps: ApiDeps) -> Flask:
    """Build the Flask app for one node; every dependency comes in through ``deps``."""
    app = Flask("orion.api")
    app.wsgi_app = Versioned(app.wsgi_app)  # type: ignore[method-assign]
    app.config["MAX_CONTENT_LENGTH"] = deps.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep the documented field order
    register_error_handlers(app, deps.max_body_bytes)
    tokens = deps.tokens or TokenSource("", deps.api_token or "")
    auth = Auth(tokens, deps.node_id, deps.peer_secret, deps.audit, deps.open_paths,
                metrics_open=not deps.metrics_requires_token)
    auth.install(app)  # first: nothing reads a request whose caller is not allowed
    app.extensions[AUTH] = auth
    install_guards(app)
    install_reads(app, deps.store, deps.write_timeout)  # reads wait for their read point as long as writes
    applied = AppliedSignal(deps.store, deps.closing)  # one listener per app: a store cannot forget one
    app.extensions[APPLIED] = applied
    app.register_blueprint(tasks_blueprint(deps.store, applied, deps.write_timeout, deps.placement_wait,
                                           deps.id_factory, deps.create))
    app.register_blueprint(status_blueprint(deps.store, deps.node_id, applied, deps.nodes_view,
                                            deps.metrics_wsgi))
    app.register_blueprint(operator_blueprint(deps.store, deps.node_id, deps.write_timeout))
    app.register_blueprint(network_blueprint(deps.store, applied))  # the overlay's settings, leases, endpoints
    return app


def auth_of(app: Flask) -> Auth:
    """The app's Auth: how a blueprint added later vouches for the caller it forwards."""
    return app.extensions[AUTH]


def applied_signal(app: Flask) -> AppliedSignal:
    """The app's one AppliedSignal: what a blueprint added later holds its blocking reads on."""
    return app.extensions[APPLIED]
