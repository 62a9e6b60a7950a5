"""Secrets, configs and registry credentials over HTTP (docs/secrets.md): the bodies that create
them, the references a task or service makes to them, and the answers (metadata only: a secret's
value is never in an answer, in any form).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator
from typing_extensions import TypedDict

from orion.api.schema import fields as f
from orion.api.schema.problems import Body, Problem, ValidationError, kind_of
from orion.defaults import MAX_CONFIG_BYTES, MAX_SECRET_BYTES
from orion.domain.secrets import (
    CONFIG,
    DEFAULT_MODES,
    ENV_NAME_RE,
    SECRET,
    SERVER_RE,
    EnvSecret,
    FileRef,
    default_target,
    normalize_server,
    target_problem,
)

_MODE_RE = re.compile(r"^0?[0-7]{3}$|^0o[0-7]{3}$")


def _mode(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and _MODE_RE.match(value.strip()):
        return int(value.strip().removeprefix("0o"), 8)
    raise Problem(f"{value!r} is not a file mode; write it as a string of octal digits, like \"0400\" "
                  "(JSON has no octal numbers, and 400 read as decimal is another mode)")


def _id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise Problem(f"{value!r} must be a user or group id from 0 to {2**31 - 1}")
    return value


def _target(value: Any) -> str | None:
    if value is None:
        return None
    problem = target_problem(value) if isinstance(value, str) else f"must be a path, not {kind_of(value)}"
    if problem:
        raise Problem(problem)
    return value


Mode = f.typed(int | None, _mode, {"anyOf": [{"type": "string", "pattern": _MODE_RE.pattern}, {"type": "null"}],
                                   "description": "octal digits as a string; default 0400 (secret), 0444 (config)",
                                   "examples": ["0400"]})
Target = f.typed(str | None, _target, {"anyOf": [{"type": "string", "pattern": "^/"}, {"type": "null"}],
                                       "description": "default /run/secrets/<source> (secret), /<source> (config)"})
Id = f.typed(int, _id, {"type": "integer", "minimum": 0, "maximum": 2**31 - 1})


class FileRequest(Body):
    """``{"source": "db", "target": "/run/secrets/db", "mode": "0400", "uid": 0, "gid": 0}``"""

    EXAMPLE = '{"source": "db", "target": "/run/secrets/db", "mode": "0400"}'
    ALIASES = {"name": "source", "src": "source", "secret": "source", "config": "source", "destination": "target",
               "dst": "target", "file_mode": "mode", "fileMode": "mode", "user": "uid", "group": "gid"}

    source: f.Name
    target: Target = Field(None, json_schema_extra=lambda s: s.pop("default", None))
    mode: Mode = Field(None, json_schema_extra=lambda s: s.pop("default", None))
    uid: Id = 0
    gid: Id = 0

    def ref(self, kind: str) -> FileRef:
        mode = DEFAULT_MODES[kind] if self.mode is None else self.mode
        return FileRef(kind, self.source, self.target or default_target(kind, self.source), mode, self.uid, self.gid)


def _list(value: Any) -> Any:
    if value is not None and not isinstance(value, list):
        raise Problem(f"must be a list of {{\"source\", \"target\"}} objects, not {kind_of(value)}")
    return value


Files = Annotated[tuple[FileRequest, ...] | None, BeforeValidator(_list),
                  Field(description="files from secrets (or configs) by name, mounted read-only")]


def file_refs(secrets: tuple[FileRequest, ...] | None, configs: tuple[FileRequest, ...] | None,
              volume_targets: dict[str, int]) -> tuple[FileRef, ...]:
    """The task's files, no two on one path and none on a volume's target."""
    refs: list[FileRef] = []
    seen: dict[str, str] = {target: f"volumes[{i}]" for target, i in volume_targets.items()}
    for kind, requests in ((SECRET, secrets), (CONFIG, configs)):
        for i, request in enumerate(requests or ()):
            ref = request.ref(kind)
            where = f"{kind}s[{i}]"
            if ref.target in seen:
                raise ValidationError(f"{where}.target", f"{ref.target!r} is already used by {seen[ref.target]}")
            seen[ref.target] = where
            refs.append(ref)
    return tuple(sorted(refs))


# -- env: plain values, or {"secret": NAME} ------------------------------------------------------------


def _env(value: Any) -> tuple[tuple[str, str | EnvSecret], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise Problem(f"must be an object of NAME: value, not {kind_of(value)}")
    out: list[tuple[str, str | EnvSecret]] = []
    for key, item in value.items():
        if not key or "=" in key or "\0" in key:
            raise Problem("an environment variable name must be non-empty and contain no '=' or NUL", f".{key}")
        if isinstance(item, str):
            out.append((key, item))
        elif isinstance(item, dict) and set(item) == {"secret"} and isinstance(item["secret"], str):
            if not ENV_NAME_RE.match(key):
                raise Problem("a secret's variable name is letters, digits and '_', not starting with a digit",
                              f".{key}")
            f.parse_name(item["secret"])
            out.append((key, EnvSecret(key, item["secret"])))
        else:
            raise Problem(f"must be a string, or {{\"secret\": NAME}} for a secret's value (shown by docker "
                          f"inspect: prefer a file); not {kind_of(item)}", f".{key}")
    return tuple(sorted(out, key=lambda kv: kv[0]))


Env = f.typed(tuple, _env, {"anyOf": [{"type": "object", "additionalProperties": {"anyOf": [
    {"type": "string"}, {"type": "object", "properties": {"secret": {"type": "string"}}, "required": ["secret"],
                         "additionalProperties": False}]}}, {"type": "null"}],
    "description": "NAME: value, or NAME: {\"secret\": SECRET} (weaker than a file: docker inspect shows it)"})


def split_env(env: tuple[tuple[str, str | EnvSecret], ...]) -> tuple[tuple[tuple[str, str], ...],
                                                                       tuple[EnvSecret, ...]]:
    plain = tuple((k, v) for k, v in env if isinstance(v, str))
    secret = tuple(sorted(v for _, v in env if isinstance(v, EnvSecret)))
    return plain, secret


# -- bodies of /secrets, /configs, /registries -----------------------------------------------------


def _data(limit: int, what: str) -> Any:
    def parse(value: Any) -> bytes:
        if not isinstance(value, str):
            raise Problem(f"must be the {what}'s bytes as base64 text, not {kind_of(value)}")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise Problem(f"is not base64 (send the {what}'s bytes base64-encoded)") from None
        if not raw:
            raise Problem(f"is empty; a {what} holds at least one byte")
        if len(raw) > limit:
            raise Problem(f"holds {len(raw)} bytes; a {what} holds at most {limit}")
        return raw
    return f.typed(bytes, parse, {"type": "string", "contentEncoding": "base64",
                                  "description": f"the bytes, base64; at most {limit} bytes"})


SecretData = _data(MAX_SECRET_BYTES, SECRET)
ConfigData = _data(MAX_CONFIG_BYTES, CONFIG)


class SecretValue(Body):
    """``PUT /secrets/<name>``: the next value."""

    EXAMPLE = '{"data": "czNjcmV0"}'
    ALIASES = {"value": "data"}
    data: SecretData


class SecretRequest(SecretValue):
    """``POST /secrets``: a new secret."""

    EXAMPLE = '{"name": "db", "data": "czNjcmV0"}'
    name: f.Name


class ConfigValue(Body):
    """``PUT /configs/<name>``: the next content, rendered on the node when ``template`` is true."""

    EXAMPLE = '{"data": "bGlzdGVuIDgw", "template": false}'
    ALIASES = {"value": "data"}
    data: ConfigData
    template: f.Flag = False


class ConfigRequest(ConfigValue):
    """``POST /configs``: a new config."""

    EXAMPLE = '{"name": "app.conf", "data": "bGlzdGVuIDgw"}'
    name: f.Name


def _server(value: Any) -> str:
    server = normalize_server(value) if isinstance(value, str) else ""
    if not SERVER_RE.match(server):
        raise Problem(f"{value!r} is not a registry host[:port] (ghcr.io, registry.example.com:5000)")
    return server


class RegistryLogin(Body):
    """``POST /registries``: credentials for one registry; exactly one of password and token."""

    EXAMPLE = '{"server": "registry.example.com:5000", "username": "ci", "password": "..."}'
    ALIASES = {"registry": "server", "user": "username", "serveraddress": "server"}
    server: f.typed(str, _server, {"type": "string", "examples": ["registry.example.com:5000"]})
    username: f.typed(str, lambda v: _text(v, "username"), {"type": "string", "minLength": 1})
    password: f.typed(str | None, lambda v: None if v is None else _text(v, "password"),
                      {"anyOf": [{"type": "string", "minLength": 1}, {"type": "null"}]}) = None
    token: f.typed(str | None, lambda v: None if v is None else _text(v, "token"),
                   {"anyOf": [{"type": "string", "minLength": 1}, {"type": "null"}]}) = None

    @model_validator(mode="after")
    def _one_credential(self) -> RegistryLogin:
        if (self.password is None) == (self.token is None):
            raise Problem("give exactly one of password and token", ".password")
        return self

    @property
    def credential(self) -> str:
        return self.password if self.password is not None else str(self.token)


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 4096 or "\0" in value:
        raise Problem(f"the {what} must be a non-empty string of at most 4096 characters")
    return value


# -- answers -----------------------------------------------------------------------------------------


class ObjectVersionView(TypedDict):
    version: int
    created: float
    size: int
    digest: str


class SecretView(TypedDict):
    """A secret or config: metadata only for a secret (never its value); ``usedBy``: services reading it.
    A config's ``data`` (base64) on ``GET /configs/<name>``."""

    name: str
    version: int
    created: float
    size: int
    digest: str
    usedBy: list[str]
    keyId: Annotated[str, Field(description="secrets: the cluster key sealing the current version")] | None
    template: bool
    versions: list[ObjectVersionView]
    data: Annotated[str, Field(description="configs only, on GET /configs/<name>: the bytes, base64")] | None


class SecretWritten(SecretView):
    changed: bool
    rolled: Annotated[list[str], Field(description="services re-declared to roll to the new version")]


class ObjectDeleted(TypedDict):
    name: str
    deleted: bool


class RegistryView(TypedDict):
    """A registry's credentials: never the password or token."""

    server: str
    username: str
    created: float
    digest: str
    keyId: str


class RegistryDeleted(TypedDict):
    server: str
    deleted: bool


class Rotated(TypedDict):
    key: Annotated[str, Field(description="the primary key id everything is now sealed with")]
    resealed: int
    skipped: list[str]
    remaining: Annotated[dict[str, int], Field(description="values still under other keys (0 when done)")]
