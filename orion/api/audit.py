"""What the audit log records of a request: one JSON object per write, never a secret.

Pure: a request's facts in, a record (a plain dict, one JSON line) out. The file
and its rotation are ``audit_file.py``; the Flask hooks that call these are in
``auth.py``; an exec session's records are written by ``exec.py``.

A record says who (the caller's name, how it was identified, its client
certificate's subject, the node that forwarded it), what (method, path, the
route's resource, the query and a summary of the body), when (UTC, RFC 3339 with
milliseconds) and the result (the status). The body is summarised, never copied:

- under a path that holds credentials (:data:`SECRET_PATHS`: ``/secrets``,
  ``/registries``) no value at all, only the body's top-level keys;
- elsewhere every value whose key looks like a credential (:data:`SENSITIVE`:
  ``value``, ``password``, ``token``, ``secret``, ``key``, ...) is replaced by
  :data:`REDACTED`, and so is every value of ``env`` (environment variables are
  where credentials were put before secrets existed), keeping their names;
- long strings and lists are cut (:data:`MAX_TEXT`, :data:`MAX_ITEMS`), and a body
  that is not JSON is only measured: its bytes are never logged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from orion.api.scopes import Identity

REDACTED = "<redacted>"
# Paths whose bodies are credentials whatever their keys are called.
SECRET_PATHS = ("/secrets", "/registries")
# A key whose value is a credential: matched anywhere in the key, any case (DB_PASSWORD, apiKey).
SENSITIVE = re.compile(r"value|pass(word|wd|phrase)?|secret|token|key|credential|auth|cookie|private|cert",
                       re.IGNORECASE)
# Keys whose values are all redacted, their names kept.
VALUES_HIDDEN = frozenset({"env"})
MAX_TEXT = 200
MAX_ITEMS = 50
MAX_DEPTH = 6


def under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def summarize(body: bytes, path: str) -> Any:
    """The body as the audit log shows it (``path`` without ``/v1``)."""
    if not body.strip():
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {"notJson": len(body)}
    if under(path, SECRET_PATHS):
        return {key: REDACTED for key in data} if isinstance(data, dict) else REDACTED
    return redact(data)


def redact(value: Any, depth: int = 0) -> Any:
    """``value`` with every credential-like field replaced and long things cut."""
    if depth >= MAX_DEPTH:
        return "..."
    if isinstance(value, Mapping):
        out = {}
        for key, item in list(value.items())[:MAX_ITEMS]:
            name = str(key)
            if SENSITIVE.search(name):
                out[name] = REDACTED
            elif name in VALUES_HIDDEN and isinstance(item, Mapping):
                out[name] = {str(k): REDACTED for k in list(item)[:MAX_ITEMS]}
            else:
                out[name] = redact(item, depth + 1)
        return out
    if isinstance(value, list):
        cut = [redact(item, depth + 1) for item in value[:MAX_ITEMS]]
        return cut + ([f"... {len(value) - MAX_ITEMS} more"] if len(value) > MAX_ITEMS else [])
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT] + f"... ({len(value)} characters)"
    return value


def redact_query(args: Mapping[str, str]) -> dict[str, str]:
    return {k: (REDACTED if SENSITIVE.search(k) else redact(v)) for k, v in args.items()}


def timestamp(now: float) -> str:
    """RFC 3339, UTC, milliseconds: sorts as text, and every log tool reads it."""
    return datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def caller(identity: Identity | None) -> dict[str, Any]:
    """The ``who`` part of a record; None: the request was refused before anyone was identified."""
    if identity is None:
        return {"who": None, "auth": "unauthenticated"}
    out: dict[str, Any] = {"who": identity.name, "scope": identity.scope.label, "auth": identity.how}
    if identity.certificate:
        out["certificate"] = identity.certificate
    if identity.via:
        out["via"] = identity.via
    return out


def request_record(*, now: float, node: str, identity: Identity | None, remote: str, method: str, path: str,
                   resource: Mapping[str, str], query: Mapping[str, str], body: Any,
                   status: int, created: Sequence[str] = ()) -> dict[str, Any]:
    """One write to the API. ``path`` as asked (``/v1`` kept); ``resource``: the route's path
    parameters (``{"task_id": "t1"}``); ``created``: the ids a 2xx answer named."""
    record: dict[str, Any] = {"time": timestamp(now), "node": node, **caller(identity), "remote": remote,
                              "method": method, "path": path}
    if resource:
        record["resource"] = dict(resource)
    if query:
        record["query"] = redact_query(query)
    if body is not None:
        record["body"] = body
    record["status"] = status
    if created:
        record["created"] = list(created)
    return record


def exec_record(*, now: float, node: str, identity: Identity | None, remote: str, task: str,
                command: Sequence[str], tty: bool, phase: str, exit_code: int | None = None,
                error: str = "", ran_on: str = "", seconds: float | None = None) -> dict[str, Any]:
    """An exec session: ``phase`` ``start`` when its stream opens, ``end`` with its exit code
    (None with ``error`` when it ended without one). The command is recorded as given:
    a shell's later input is not (it is the session's content, like a terminal's)."""
    record: dict[str, Any] = {"time": timestamp(now), "node": node, **caller(identity), "remote": remote,
                              "action": "exec", "phase": phase, "task": task,
                              "command": [redact(part) for part in command], "tty": tty}
    if ran_on:
        record["ranOn"] = ran_on
    if phase == "end":
        record["exitCode"] = exit_code
        if error:
            record["error"] = error
        if seconds is not None:
            record["seconds"] = round(seconds, 3)
    return record


def created_ids(answer: bytes, mimetype: str) -> list[str]:
    """The ids (or names) a write's JSON answer names: what a POST created."""
    if mimetype != "application/json" or not answer:
        return []
    try:
        data = json.loads(answer)
    except ValueError:
        return []
    items = data if isinstance(data, list) else [data]
    out = []
    for item in items[:MAX_ITEMS]:
        if isinstance(item, dict):
            ident = item.get("id") or item.get("name")
            if isinstance(ident, str):
                out.append(ident)
    return out
