"""The API described as OpenAPI 3.0, served at GET /openapi.json.

Kept next to the code it describes and checked by a unit test against the app's
routes, so it cannot silently drift; property-based API fuzzers (schemathesis)
can read it directly.
"""

from __future__ import annotations

from typing import Any

from orion.model import MAX_SCALE, PULL_POLICIES, RESTART_POLICIES, TASK_STATES

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _resp(description: str, schema: dict[str, Any] = _ERROR) -> dict[str, Any]:
    return {"description": description, **_json_content(schema)}


_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

_TASK_REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["image", "memory"],
    "properties": {
        "image": {"type": "string", "example": "nginx:1.25", "maxLength": 255},
        "memory": {
            "oneOf": [{"type": "integer", "minimum": 6 * 1024 * 1024},
                      {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?([kKmMgGtT][iI]?[bB]?|[bB])?$"}],
            "description": "bytes, or a size with K/M/G/T (binary, like docker) or Ki/Mi/Gi/Ti; at least 6M",
        },
        "cpu": {"type": "number", "exclusiveMinimum": 0, "description": "cores, e.g. 0.5"},
        "name": {"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$"},
        "command": {"oneOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
                              {"type": "string", "minLength": 1}]},
        "env": _STRING_MAP,
        "portBindings": {
            "type": "object",
            "description": "\"80/tcp\" -> host port (\"8080\" or 8080), or \"\" for a dynamic one",
            "additionalProperties": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
            "example": {"80/tcp": "8080"},
        },
        "nodeSelectors": _STRING_MAP,
        "restartPolicy": {"type": "string", "enum": list(RESTART_POLICIES)},
        "pullPolicy": {"type": "string", "enum": list(PULL_POLICIES)},
        "count": {"type": "integer", "minimum": 1, "maximum": MAX_SCALE},
        "volumes": {"type": "array", "description": "mounts by name: a host volume nodes declare, or a docker "
                    "volume; never a host path", "items": {
                        "type": "object", "required": ["target"], "additionalProperties": False,
                        "properties": {"source": {"type": "string", "pattern": r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$"},
                                       "name": {"type": "string", "description": "the same as source"},
                                       "target": {"type": "string", "pattern": "^/"},
                                       "readOnly": {"type": "boolean"},
                                       "type": {"type": "string", "enum": ["host", "volume"]}}}},
    },
}

_TASK = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "image": {"type": "string"},
        "state": {"type": "string", "enum": list(TASK_STATES)},
        "desired": {"type": "string"},
        "nodeId": {"type": "string", "nullable": True},
        "ports": {"type": "object", "additionalProperties": {"type": "integer", "nullable": True}},
        "reason": {"type": "string"},
        "memory": {"type": "integer"},
        "cpu": {"type": "number"},
        "generation": {"type": "integer"},
        "createdIndex": {"type": "integer"},
    },
}

_HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "no-leader"]},
        "leader": {"type": "string", "nullable": True, "description": "the leader's Raft address"},
        "node": {"type": "string"},
        "appliedIndex": {"type": "integer"},
        "version": {"type": "string", "description": "the Orion version this agent runs (orion version)"},
    },
}

_ID_PARAM = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
# Blocking queries (orion/api/blocking.py): hold the read until the applied index passes `index`.
_BLOCKING = [
    {"name": "index", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
     "description": "answer once this node has applied beyond this X-Orion-Index"},
    {"name": "wait", "in": "query", "required": False, "schema": {"type": "string", "example": "30s"},
     "description": "longest to hold the read (ms, s, m, h; at most 5m, the default)"},
]


def openapi_document() -> dict[str, Any]:
    """The whole document; a fresh dict each call so callers may modify it."""
    return {
        "openapi": "3.0.3",
        "info": {"title": "Orion", "version": "1",
                 "description": "Distributed container orchestrator. Errors are {error, field?}."},
        "components": {
            "schemas": {
                "Error": {"type": "object", "required": ["error"],
                          "properties": {"error": {"type": "string"}, "field": {"type": "string"}}},
                "TaskRequest": _TASK_REQUEST,
                "Task": _TASK,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/tasks": {
                "post": {
                    "summary": "Submit a task; waits briefly for its placement",
                    "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                                    "schema": {"type": "string", "maxLength": 200}}],
                    "requestBody": {"required": True,
                                    **_json_content({"$ref": "#/components/schemas/TaskRequest"})},
                    "responses": {
                        "201": _resp("created: the task, or a list of them when count > 1", {"oneOf": [
                            {"$ref": "#/components/schemas/Task"},
                            {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}]}),
                        "200": _resp("the task an earlier request with this Idempotency-Key created",
                                     {"$ref": "#/components/schemas/Task"}),
                        "400": _resp("invalid request"), "401": _resp("token missing or wrong"),
                        "413": _resp("body too large"), "415": _resp("body is not JSON"),
                        "503": _resp("no Raft leader / write timed out"),
                    },
                },
                "get": {
                    "summary": "List tasks",
                    "parameters": [{"name": "state", "in": "query", "required": False,
                                    "schema": {"type": "string", "enum": list(TASK_STATES)}},
                                   {"name": "service", "in": "query", "required": False,
                                    "schema": {"type": "string"}, "description": "only this service's replicas"},
                                   *_BLOCKING],
                    "responses": {
                        "200": _resp("tasks, oldest first",
                                     {"type": "array", "items": {"$ref": "#/components/schemas/Task"}}),
                        "400": _resp("unknown state")},
                },
            },
            "/tasks/{task_id}": {
                "parameters": [_ID_PARAM],
                "get": {"summary": "One task", "parameters": _BLOCKING, "responses": {
                    "200": _resp("the task", {"$ref": "#/components/schemas/Task"}),
                    "404": _resp("no such task")}},
                "delete": {"summary": "Stop a task", "responses": {
                    "202": _resp("stopping", {"$ref": "#/components/schemas/Task"}),
                    "200": _resp("already finished", {"$ref": "#/components/schemas/Task"}),
                    "404": _resp("no such task"), "503": _resp("no Raft leader")}},
            },
            "/nodes": {"get": {"summary": "Registered nodes with capacity, use and status",
                               "parameters": _BLOCKING,
                               "responses": {"200": _resp("nodes", {"type": "array",
                                                                    "items": {"type": "object"}})}}},
            "/raft": {"get": {"summary": "This node's Raft view", "parameters": _BLOCKING, "responses": {
                "200": _resp("status", {"type": "object"})}}},
            "/health": {"get": {"summary": "200 when a Raft leader is known, else 503 (no token needed)",
                                "security": [], "responses": {
                                    "200": _resp("healthy", _HEALTH),
                                    "503": _resp("no leader", _HEALTH)}}},
        },
    }
