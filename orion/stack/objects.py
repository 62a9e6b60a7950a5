"""A compose file's secrets and configs as Orion's, as ``docker stack deploy`` maps them.

Pure, like the rest of the conversion: the loader has read the ``file:`` of each
top-level entry (relative to the compose file's folder) and hands the bytes in;
the variables carry the deploying shell's environment (over ``.env``).

Top level, ``secrets.NAME`` / ``configs.NAME``:

- ``file:`` (Compose's and Swarm's form), ``environment:`` (a variable's value)
  and, for a config, ``content:`` (inline) → a :class:`StackObject` with the
  bytes, named ``<stack>_NAME`` as Swarm names it (its ``name:`` when given),
  created or updated before the services that read it;
- ``external: true`` (the legacy ``external: {name: X}`` too) → an object that
  must exist in the cluster under ``NAME`` (or its ``name:``); the planner
  names a missing one before anything changes;
- ``driver``, ``driver_opts``, ``template_driver``, ``labels``: named as keys
  Orion cannot honour.

Service level: ``secrets: [db]`` → ``/run/secrets/db``; ``configs: [app.conf]``
→ ``/app.conf`` (Swarm's defaults: the file is named by the compose key, not the
prefixed name); the long form's ``target`` (a relative one under those folders,
as Swarm places it), ``uid``, ``gid`` (strings in Compose) and ``mode``. Each
reference is checked by the API's own :class:`FileRequest`, and each object's
bytes by the API's own body models, so a bad value is an Invalid at its key
path. A value is never in a finding, a note, or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from orion.api.schema.secrets import ConfigRequest, FileRequest, SecretRequest
from orion.domain.secrets import CONFIG, DEFAULT_DIRS, SECRET
from orion.stack.findings import Findings, key_path

PLURAL = {SECRET: "secrets", CONFIG: "configs"}
_BODY = {SECRET: SecretRequest, CONFIG: ConfigRequest}
_CANNOT = {
    "driver": "Orion keeps every secret itself, sealed in its replicated state: there is no secret driver",
    "driver_opts": "Orion keeps every secret itself, sealed in its replicated state: there is no secret driver",
    "template_driver": "Orion renders a config template with its own engine (orion config create --template)",
    "labels": "Orion's secrets and configs carry no labels",
}


@dataclass(frozen=True)
class StackObject:
    """A secret or config the stack reads: ``name`` in Orion, declared at ``origin``
    (``secrets.db``); ``data`` its bytes, None for an external one (never shown)."""

    kind: str
    key: str
    name: str
    origin: str
    data: bytes | None = field(default=None, repr=False, compare=False)
    digest: str = ""  # a config's, as the API shows it (sha256); none for a secret (an unkeyed hash would leak)

    @property
    def external(self) -> bool:
        return self.data is None


def _problem(exc: pydantic.ValidationError) -> tuple[str, str]:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error.get("loc", ()) if p != "__root__")
    return where, str(error.get("msg", "")).removeprefix("Value error, ")


def _source(kind: str, entry: Mapping[str, Any], origin: str, variables: Mapping[str, str],
            files: Mapping[str, bytes | None], findings: Findings) -> bytes | None:
    """The bytes of a non-external entry, or None (recorded) when there are none."""
    if entry.get("file") is not None:
        data = files.get(entry["file"])
        if data is None:
            findings.bad(key_path(origin, "file"), f"{entry['file']}: no such file beside the compose file")
        return data
    if entry.get("environment") is not None:
        value = variables.get(entry["environment"])
        if value is None:
            findings.bad(key_path(origin, "environment"), f"{entry['environment']} is not set in the environment "
                         "(nor in .env)")
        return None if value is None else value.encode()
    if kind == CONFIG and entry.get("content") is not None:
        return str(entry["content"]).encode()
    given = "file, environment or content" if kind == CONFIG else "file or environment"
    findings.bad(origin, f"says nowhere where its value is: give {given}, or external: true")
    return None


def declared(document: Mapping[str, Any], stack: str, variables: Mapping[str, str],
             files: Mapping[str, bytes | None], findings: Findings) -> dict[tuple[str, str], StackObject]:
    """The top-level secrets and configs by (kind, compose key); a wrong one is recorded, not returned."""
    out: dict[tuple[str, str], StackObject] = {}
    for kind, plural in PLURAL.items():
        for key, entry in (document.get(plural) or {}).items():
            origin, entry = key_path(plural, key), entry or {}
            for unsupported in sorted(set(entry) & set(_CANNOT)):
                findings.cannot(key_path(origin, unsupported), _CANNOT[unsupported])
            external = entry.get("external")
            legacy = external.get("name") if isinstance(external, dict) else None
            if external in (True, "true") or legacy:
                out[(kind, key)] = StackObject(kind, key, entry.get("name") or legacy or key, origin)
                continue
            name = entry.get("name") or f"{stack}_{key}"
            data = _source(kind, entry, origin, variables, files, findings)
            if data is None:
                continue
            try:  # the API's own checks: the name, and the bytes (empty, too large)
                _BODY[kind].model_validate({"name": name, "data": base64.b64encode(data).decode()})
            except pydantic.ValidationError as exc:
                where, message = _problem(exc)
                findings.bad(origin, f"{name}: {message}" if where == "name" else message)
                continue
            sha = "sha256:" + hashlib.sha256(data).hexdigest() if kind == CONFIG else ""
            out[(kind, key)] = StackObject(kind, key, name, origin, data, sha)
    return out


def _mode(value: Any) -> str | None:
    """A compose mode as the API's octal string, as compose-go reads it: an integer as go-yaml reads
    it (``0440`` and ``0o440`` octal, ``288`` decimal), a string as octal digits (``"0440"``)."""
    value = getattr(value, "octal", value)  # a LeadingZero of load.py, which imports this module
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0o777:
        return f"0{value:03o}"
    return value if value is None or isinstance(value, str) else str(value)


def _uid(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def file_requests(svc: Mapping[str, Any], prefix: str, objects: Mapping[tuple[str, str], StackObject],
                  findings: Findings) -> dict[str, list[dict[str, Any]]]:
    """A compose service's ``secrets`` and ``configs`` as the body's fields of the same names."""
    body: dict[str, list[dict[str, Any]]] = {}
    for kind, plural in PLURAL.items():
        for i, item in enumerate(svc.get(plural) or ()):
            path = key_path(prefix, plural, i)
            given = {"source": item} if isinstance(item, str) else dict(item)
            key = given.get("source")
            obj = objects.get((kind, key))
            if obj is None:
                top = key_path(plural, key) if key is not None else plural
                findings.bad(path, f"{kind} {key} is not declared (or not usable) at the top level ({top})")
                continue
            target = str(given.get("target") or key)
            request = {"source": obj.name, "target": posixpath.join(DEFAULT_DIRS[kind], target),
                       "uid": _uid(given.get("uid", 0)), "gid": _uid(given.get("gid", 0))}
            mode = _mode(given.get("mode"))
            if mode is not None:
                request["mode"] = mode
            try:
                FileRequest.model_validate(request)
            except pydantic.ValidationError as exc:
                where, message = _problem(exc)
                findings.bad(key_path(path, where) if where and where != "source" else path, message)
                continue
            body.setdefault(plural, []).append(request)
    return body
