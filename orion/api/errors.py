"""Every failure the API can answer, as JSON ``{"error": ..., "field": ...}``.

A client (our CLI, curl, a script) must never have to parse an HTML error page
or a traceback: each answer says what went wrong and what to do. Unexpected
exceptions are logged with a short id the answer repeats, so the operator can
find the traceback without the client ever seeing it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from orion.api.schema.problems import ValidationError
from orion.store.port import NoLeader, StoreError, WriteTimeout

log = logging.getLogger("orion.api")


class ApiError(Exception):
    """A refusal that is not about the request's syntax (unknown id, refused by the state machine)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def error_response(status: int, message: str, field: str | None = None, **extra: Any) -> Response:
    body: dict[str, Any] = {"error": message, **extra}
    if field:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
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
        return error_response(exc.status, exc.message, exc.field)

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
