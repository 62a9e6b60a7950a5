"""The API described as OpenAPI 3.1, served at ``GET /v1/openapi.json`` (and ``/openapi.json``).

Generated, not written: request bodies are the pydantic models that validate
them (``tasks.py``, ``services.py``, ``cluster.py``), answers are the
``TypedDict`` s the views build (``responses.py``), and the operations are the
table below. ``tests/unit/api/test_openapi.py`` walks the app's URL map and
fails when a route or method is served but not listed here (or listed but not
served), and validates the document with openapi-spec-validator; the contract
test fuzzes a live cluster against it.

Every route is served under ``/v1`` and, unchanged, at the seed's unversioned
path (``/tasks`` is ``/v1/tasks``): the document lists the ``/v1`` paths only.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, WithJsonSchema

from orion.api.schema import network_responses as nr
from orion.api.schema import responses as r
from orion.api.schema import secrets as sec
from orion.api.schema.cluster import AdmitRequest
from orion.api.schema.exec import ExecRequest
from orion.api.schema.fields import NAME_PATTERN
from orion.api.schema.queries import (
    BlockingQuery,
    BlockingReadQuery,
    LogsQuery,
    MetricsQuery,
    Query,
    RestoreQuery,
    RollbackQuery,
    SnapshotQuery,
    TaskListQuery,
)
from orion.api.schema.services import ServiceRequest
from orion.api.schema.tasks import ScaleRequest, TaskRequest
from orion.api.scopes import needed

PREFIX = "/v1"
_REF = "#/components/schemas/{model}"


@dataclass(frozen=True)
class Op:
    """One operation: ``answers`` maps a status to (description, answer type or None for the error body);
    ``query`` is the model that parses its query string (``queries.py``), ``params`` its headers."""

    method: str
    path: str
    summary: str
    answers: dict[str, tuple[str, Any]]
    body: Any = None
    params: tuple[dict[str, Any], ...] = ()
    query: type[Query] = Query
    open: bool = False  # answered without the token
    content: str = "application/json"
    raw_body: str = ""  # the body's media type when it is not JSON (a file, sent as it is)


_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
                "schema": {"type": "string", "maxLength": 200, "pattern": "^[!-~]*$"},
                "description": "a retry with the same key answers the task the first created (200)"}
_UPGRADE = {"name": "Upgrade", "in": "header", "required": True,
            "schema": {"type": "string", "enum": ["orion-exec.v1"]},
            "description": "with Connection: Upgrade: the session's protocol (frames: docs/api.md, \"Exec\")"}
_WRITE = {"400": ("invalid request", None), "409": ("refused by the cluster", None),
          "503": ("no Raft leader, or the write timed out: retry", None)}
# A linearizable read (the default) that could not be confirmed in time (docs/api.md, "Consistency").
_READ = {"503": ("no leader reachable, or this replica not caught up in time: retry, or read with ?stale", None)}
_TASK = {"404": ("no such task", None)}
_SERVICE = {"404": ("no such service", None)}
_STACK = {"404": ("no service carries this stack", None)}
# Any read that takes ?index=N: a node holds at most max_blocking_queries of them at once.
_HELD = {"429": ("a blocking query, while this node holds as many as it may: retry", None)}

OPERATIONS: tuple[Op, ...] = (
    Op("post", "/tasks", "Submit a task (or count replicas); waits briefly for its placement",
       {"201": ("created: the task, or a list of them when count > 1", r.Task | list[r.Task]),
        "200": ("what an earlier request with this Idempotency-Key created", r.Task | list[r.Task]),
        "413": ("body too large", None), "415": ("body is not JSON", None), **_WRITE},
       body=TaskRequest, params=(_IDEMPOTENCY,)),
    Op("get", "/tasks", "List tasks, oldest first",
       {"200": ("tasks", list[r.Task]), "400": ("bad query", None), **_HELD, **_READ}, query=TaskListQuery),
    Op("get", "/tasks/{task_id}", "One task", {"200": ("the task", r.Task), **_TASK, **_HELD, **_READ},
       query=BlockingReadQuery),
    Op("delete", "/tasks/{task_id}", "Stop a task",
       {"202": ("stopping", r.Task), "200": ("already finished", r.Task), **_TASK, **_WRITE}),
    Op("patch", "/tasks/{task_id}", "Scale the group the task belongs to",
       {"200": ("the group at its new size", r.Scaled), **_TASK, **_WRITE}, body=ScaleRequest),
    Op("get", "/tasks/{task_id}/logs", "The task's output, from the node that runs it (streamed)",
       {"200": ("the log, as it is read", None), **_TASK, "409": ("no container (yet, or any more)", None),
        "429": ("too many followed logs on a node", None), **_READ}, query=LogsQuery, content="text/plain"),
    Op("post", "/tasks/{task_id}/exec", "Run a process in the task's container: an upgraded connection streams "
       "its stdin, stdout, stderr, terminal size and exit code (docs/api.md, \"Exec\")",
       {"101": ("switching to orion-exec.v1: frames both ways until the exit status", None),
        "400": ("bad body, or no Upgrade: orion-exec.v1", None), **_TASK,
        "409": ("no container (yet, or any more), or the engine refused the exec", None),
        "429": ("too many exec sessions on a node", None), "501": ("a server that cannot hand the connection "
                                                                    "over (not the agent's)", None),
        "502": ("the task's node did not answer", None), "503": ("the task's engine did not answer", None)},
       body=ExecRequest, params=(_UPGRADE,)),
    Op("get", "/nodes", "Registered nodes with capacity, use and status",
       {"200": ("nodes", list[r.Node]), **_HELD, **_READ}, query=BlockingReadQuery),
    Op("post", "/nodes/{node_id}/drain", "Drain a node: its tasks move elsewhere, each replacement first",
       {"202": ("draining", r.DrainedNode), "404": ("no such node", None), **_WRITE}),
    Op("get", "/raft", "This node's Raft view", {"200": ("status", r.Raft), **_HELD}, query=BlockingQuery),
    Op("get", "/health", "200 once this node reaches a leader with a quorum and caught up, else 503 (no token)",
       {"200": ("healthy", r.Health), "503": ("no leader", r.Health)}, open=True),
    Op("get", "/openapi.json", "This document", {"200": ("OpenAPI 3.1", dict[str, Any])}),
    Op("get", "/metrics", "Prometheus metrics (the token is needed unless the agent leaves them open)",
       {"200": ("text exposition format", None)}, content="text/plain", query=MetricsQuery),
    Op("get", "/cluster/members", "Raft voters, and gossip addresses to join through",
       {"200": ("members", r.Members)}),
    Op("post", "/cluster/members", "Admit me: the leader decides voter or non-voting replica",
       {"200": ("admitted", r.Admitted), "403": ("wrong join proof", None), **_WRITE}, body=AdmitRequest),
    Op("delete", "/cluster/members/{addr}", "Remove a voter (graceful leave); needs X-Orion-Join-Proof",
       {"200": ("the voters left", r.MembersLeft), "403": ("wrong join proof", None), **_WRITE},
       params=({"name": "X-Orion-Join-Proof", "in": "header", "required": False, "schema": {"type": "string"},
                "description": "HMAC-SHA256 of the address under the Raft secret"},)),
    Op("get", "/services", "List services", {"200": ("services", list[r.Service]), **_HELD, **_READ},
       query=BlockingReadQuery),
    Op("post", "/services", "Create a service (its name in the body); 409 if it exists",
       {"201": ("created, version 1", r.ServiceDeclared), "200": ("unchanged", r.ServiceDeclared), **_WRITE},
       body=ServiceRequest),
    Op("get", "/services/{name}", "One service with its spec, replicas and rollout",
       {"200": ("the service", r.Service), **_SERVICE, **_HELD, **_READ}, query=BlockingReadQuery),
    Op("put", "/services/{name}", "Declare a service's full spec: a new version and a rollout, or nothing",
       {"201": ("a new version", r.ServiceDeclared), "200": ("the same spec: nothing to do", r.ServiceDeclared),
        **_WRITE}, body=ServiceRequest),
    Op("delete", "/services/{name}", "Delete a service and stop its replicas",
       {"200": ("deleted", r.ServiceDeleted), **_SERVICE, **_WRITE}),
    Op("get", "/services/{name}/versions", "The versions kept, oldest first",
       {"200": ("versions", list[r.ServiceVersion]), **_SERVICE, **_HELD, **_READ}, query=BlockingReadQuery),
    Op("get", "/services/{name}/endpoints", "Where the service's replicas answer, and which receive traffic",
       {"200": ("the endpoints", nr.Endpoints), **_SERVICE, **_HELD, **_READ}, query=BlockingReadQuery),
    Op("get", "/cluster/network", "The overlay: settings fixed at bootstrap, each host's subnet lease, VIPs",
       {"200": ("the network", nr.Network), **_HELD, **_READ}, query=BlockingReadQuery),
    Op("post", "/services/{name}/rollback", "Roll back to the last stable version (or ?version=N)",
       {"201": ("rolling back", r.ServiceDeclared), "200": ("already there", r.ServiceDeclared), **_SERVICE,
        **_WRITE}, query=RollbackQuery),
    Op("post", "/services/{name}/redeploy", "Replace every replica with the update rules, same spec "
       "(a job: run it again now)", {"201": ("a redeploy version (a job: a new run)", r.ServiceDeclared),
                                      **_SERVICE, **_WRITE}),
    Op("post", "/services/{name}/rebalance", "Move replicas onto nodes with fewer, with the update rules",
       {"201": ("moving replicas", r.Rebalanced), "200": ("already even: nothing moves", r.Rebalanced),
        **_SERVICE, **_WRITE}),
    Op("get", "/services/{name}/runs", "A job's runs, oldest first (the running ones and the last finished)",
       {"200": ("runs", list[r.JobRun]), "400": ("not a job", None), **_SERVICE, **_HELD}, query=BlockingQuery),
    Op("get", "/stacks", "List stacks: the services grouped by the stack they carry",
       {"200": ("stacks", list[r.Stack])}),
    Op("get", "/stacks/{name}", "One stack with each of its services (spec, replicas, rollout)",
       {"200": ("the stack", r.StackDetail), **_STACK}),
    Op("delete", "/stacks/{name}", "Delete every service of a stack; their replicas stop",
       {"200": ("deleted", r.StackDeleted), **_STACK, **_WRITE}),
    Op("get", "/operator/snapshot", "Save the whole replicated state: a snapshot file (docs/operations.md)",
       {"200": ("the snapshot file", None), "400": ("bad query", None),
        "503": ("no leader, or this node has not caught up (?stale=1 saves it anyway)", None)},
       query=SnapshotQuery, content="application/octet-stream"),
    Op("put", "/operator/snapshot", "Restore a snapshot file: every replica's state becomes the saved one",
       {"200": ("restored", r.Restored), "400": ("not a snapshot file, or corrupted", None),
        "409": ("refused: another cluster's snapshot (?force=1), a newer format, or an upgrade under way", None),
        "413": ("file too large", None), "503": ("no Raft leader, or the restore timed out: retry", None)},
       query=RestoreQuery, raw_body="application/octet-stream"),
    *(op for kind, new, value in (("secret", sec.SecretRequest, sec.SecretValue),
                                  ("config", sec.ConfigRequest, sec.ConfigValue)) for op in (
        Op("get", f"/{kind}s", f"List {kind}s (metadata: never a secret's value)",
           {"200": (f"{kind}s", list[sec.SecretView]), **_HELD}, query=BlockingQuery),
        Op("post", f"/{kind}s", f"Create a {kind} (version 1); 409 if it exists",
           {"201": ("created", sec.SecretWritten), **_WRITE}, body=new),
        Op("get", f"/{kind}s/{{name}}", f"One {kind}'s metadata" + (" and data" if kind == "config" else ""),
           {"200": (kind, sec.SecretView), "404": (f"no such {kind}", None), **_HELD}, query=BlockingQuery),
        Op("put", f"/{kind}s/{{name}}", f"The {kind}'s next version (services that read it roll to it)",
           {"201": ("a new version", sec.SecretWritten), "200": ("the same value: nothing to do", sec.SecretWritten),
            **_WRITE}, body=value),
        Op("delete", f"/{kind}s/{{name}}", f"Delete a {kind}; 409 while a service or task reads it",
           {"200": ("deleted", sec.ObjectDeleted), "404": (f"no such {kind}", None), **_WRITE}))),
    Op("post", "/secrets/rotate", "Seal every secret and registry credential with this node's primary cluster key",
       {"200": ("what was sealed again, and what is left under other keys", sec.Rotated), **_WRITE}),
    Op("get", "/registries", "Registries with credentials (never the password or token)",
       {"200": ("registries", list[sec.RegistryView]), **_HELD}, query=BlockingQuery),
    Op("post", "/registries", "Store credentials for a registry (sealed); every node pulls with them",
       {"201": ("stored", sec.RegistryView), "200": ("the same credentials", sec.RegistryView), **_WRITE},
       body=sec.RegistryLogin),
    Op("delete", "/registries/{server}", "Forget a registry's credentials",
       {"200": ("forgotten", sec.RegistryDeleted), "404": ("no credentials for it", None), **_WRITE}),
)

_PATH_PARAMS = {"task_id": {"type": "string"}, "node_id": {"type": "string"}, "addr": {"type": "string"},
                "server": {"type": "string"},
                "name": {"type": "string", "pattern": NAME_PATTERN}}


def query_models() -> dict[tuple[str, str], type[Query]]:
    """(METHOD, Flask rule) -> the model of the operation's query string; the app refuses names
    it lacks, so ``?stat=running`` is a 400 naming ``state`` rather than every task."""
    rules = {}
    for op in OPERATIONS:
        rule = "/".join(f"<{p[1:-1]}>" if p.startswith("{") else p for p in op.path.split("/"))
        rules[(op.method.upper(), rule)] = op.query
    return rules


def query_params(model: type[Query]) -> list[dict[str, Any]]:
    """The query parameters as OpenAPI lists them: each field's wire name, description and the
    schema its type declares (``fields.typed``); ``json_schema_extra`` adds parameter keys."""
    params = []
    for name, info in model.model_fields.items():
        schema = next(m.json_schema for m in info.metadata if isinstance(m, WithJsonSchema))
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        params.append({"name": info.alias or name, "in": "query", "required": False, **extra, "schema": schema,
                       "description": info.description})
    return params


def _schemas() -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, Any]]:
    """Every body and answer type as JSON Schema (2020-12, which OpenAPI 3.1 uses), by (path key, role)."""
    inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = [("Error", "serialization", TypeAdapter(r.Error))]
    for op in OPERATIONS:
        key = f"{op.method} {op.path}"
        if op.body is not None:
            inputs.append(((key, "body"), "validation", TypeAdapter(op.body)))
        for status, (_, kind) in op.answers.items():
            if kind is not None:
                inputs.append(((key, status), "serialization", TypeAdapter(kind)))
    found, defs = TypeAdapter.json_schemas(inputs, ref_template=_REF)
    return {k: v for (k, _), v in found.items()}, defs.get("$defs", {})


def _operation(op: Op, schemas: dict[Any, dict[str, Any]]) -> dict[str, Any]:
    key = f"{op.method} {op.path}"
    error = {"$ref": _REF.format(model="Error")}
    answers: dict[str, Any] = {}
    for status, (description, kind) in op.answers.items():
        if status.startswith("1"):  # an upgrade: what follows is the new protocol's, not a body
            answers[status] = {"description": description}
        elif kind is None and op.content != "application/json" and status.startswith("2"):
            answers[status] = {"description": description, "content": {op.content: {"schema": {"type": "string"}}}}
        else:
            schema = schemas[(key, status)] if kind is not None else error
            answers[status] = {"description": description, "content": {"application/json": {"schema": schema}}}
    scope = needed(op.method, op.path)
    if not op.open:
        answers["401"] = {"description": "token missing or wrong (when the agent has one)",
                          "content": {"application/json": {"schema": error}}}
        below = f"the caller's scope is below {scope.label}"
        if "403" in answers:
            answers["403"]["description"] += f", or {below}"
        else:
            answers["403"] = {"description": below, "content": {"application/json": {"schema": error}}}
    answers["default"] = {"description": "any other refusal or failure: {error, field?}",
                          "content": {"application/json": {"schema": error}}}
    out: dict[str, Any] = {"operationId": f"{op.method}{op.path.replace('/', '_').replace('{', '').replace('}', '')}",
                           "summary": op.summary, "responses": answers}
    if not op.open:
        out["x-orion-scope"] = scope.label  # orion/api/scopes.py: the one table
    names = [part[1:-1] for part in op.path.split("/") if part.startswith("{")]
    params = [{"name": n, "in": "path", "required": True, "schema": _PATH_PARAMS[n]} for n in names]
    params += query_params(op.query)
    if params or op.params:
        out["parameters"] = [*params, *op.params]
    if op.body is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": schemas[(key, "body")]}}}
    if op.raw_body:
        out["requestBody"] = {"required": True, "content": {op.raw_body: {"schema": {"type": "string",
                                                                                     "format": "binary"}}}}
    if op.open:
        out["security"] = []
    return out


@functools.cache
def _document() -> dict[str, Any]:
    schemas, defs = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(PREFIX + op.path, {})[op.method] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Orion", "version": "1", "description": (
            "Distributed container orchestrator. Every refusal is JSON {error, field?}; field names what to "
            "fix, with a dotted/indexed path for nested ones (volumes[0].target). Every path is also served "
            "without the /v1 prefix (the seed's paths), behaving identically. Authentication: when the agent "
            "is configured with an API token (api_token, ORION_API_TOKEN) or named tokens (api_tokens_file) "
            "every operation but /health needs the header Authorization: Bearer <token> (or a client "
            "certificate the tokens file names); without one, no token is needed. Each operation's "
            "x-orion-scope is the scope it needs: read < write < admin (403 below it).")},
        "servers": [{"url": "/"}],
        "components": {"schemas": defs,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "the agent's api_token, when it has one"}}},
        "security": [{"bearer": []}],
        "paths": paths,
    }


def openapi_document() -> dict[str, Any]:
    """The whole document; a fresh copy each call so callers may modify it (built once)."""
    return copy.deepcopy(_document())
