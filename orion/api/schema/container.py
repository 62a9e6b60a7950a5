"""The container settings of a task or a service template (``orion/domain/container.py``): each
field with its parser (``container_fields.py``) and its JSON Schema, the body model both requests
inherit, and the writer that spells a settings value back as a body (the task view and a
service's spec show it that way, and ``PUT /services/<name>`` reads it back unchanged).

The spellings follow the Compose Specification (``capAdd`` for ``cap_add``, ``"1000:1000"`` for a
user, ``"/dev/fuse:/dev/fuse:rwm"`` for a device, ``{"nofile": {"soft": 1024, "hard": 4096}}``
for ulimits), so a compose file maps key by key; each refusal names the field and the item
(``capAdd[1]: NET_ADMINX is not a Linux capability``). Whether a node hands out a device or runs
privileged containers is not checked here: that is placement's question, like host volumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from pydantic import Field, model_validator

from orion.api.schema import container_fields as c
from orion.api.schema import fields as f
from orion.api.schema.problems import Body, Problem
from orion.domain.container import MAX_CPU_SHARES, MAX_SIGNAL, MIN_CPU_SHARES, ContainerSettings, Logging

_NULL = {"type": "null"}


def _nullable(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda value: None if value is None else parse(value)


def _typed(parse: Callable[[Any], Any], schema: dict[str, Any]) -> Any:
    """A field that null (or absence) leaves at the engine's default."""
    return f.typed(Any, _nullable(parse), {"anyOf": [schema, _NULL]})


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class LoggingRequest(Body):
    """``{"driver": "json-file", "options": {"max-size": "10m", "max-file": "3"}}``."""

    EXAMPLE = '{"driver": "json-file", "options": {"max-size": "10m"}}'
    ALIASES = {"opts": "options", "log_opt": "options", "log_driver": "driver"}

    driver: f.typed(str, c.parse_driver, {"type": "string", "pattern": c.DRIVER_RE.pattern})
    options: f.Env = Field((), json_schema_extra=_no_default)

    def to_logging(self) -> Logging:
        return Logging(self.driver, self.options)


_LIST = {"type": "array", "items": {"type": "string"}}
_PATH = {"type": "string", "pattern": "^/"}


class ContainerFields(Body):
    """The container settings, one field each (named as ``ContainerSettings`` names them, so the
    API name of each is its camelCase); null or absent leaves the engine's or the image's default."""

    ALIASES = {"working_dir": "workingDir", "workdir": "workingDir", "cap_add": "capAdd", "cap_drop": "capDrop",
               "stop_signal": "stopSignal", "stop_grace_period": "stopGracePeriod", "stopTimeout": "stopGracePeriod",
               "read_only": "readOnly", "readonlyRootfs": "readOnly", "extra_hosts": "extraHosts",
               "shm_size": "shmSize", "cpu_shares": "cpuShares", "log_driver": "logging", "logConfig": "logging"}

    user: _typed(c.parse_user, {"type": "string", "examples": ["1000:1000"]}) = None
    working_dir: _typed(c.parse_working_dir, _PATH) = None
    entrypoint: f.typed(Any, lambda v: None if v is None else c.parse_entrypoint(v), {
        "anyOf": [_LIST, {"type": "string", "description": "split like a shell would; \"\" clears it"}, _NULL]}) = None
    cap_add: _typed(c.parse_capabilities, _LIST) = None
    cap_drop: _typed(c.parse_capabilities, _LIST) = None
    privileged: _typed(f.parse_flag, {"type": "boolean"}) = None
    devices: _typed(c.parse_devices, {"type": "array", "items": {"anyOf": [
        {"type": "string", "pattern": "^/"},
        {"type": "object", "properties": {"source": _PATH, "target": _PATH, "permissions": {"type": "string"}},
         "required": ["source"], "additionalProperties": False}]}}) = None
    labels: _typed(f.string_map(c.label_key), {"type": "object", "additionalProperties": {"type": "string"}}) = None
    logging: LoggingRequest | None = None
    stop_signal: _typed(c.parse_signal, {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1,
                                                                       "maximum": MAX_SIGNAL}]}) = None
    stop_grace_period: _typed(c.parse_grace, f.DURATION_SCHEMA) = None
    init: _typed(f.parse_flag, {"type": "boolean"}) = None
    ulimits: _typed(c.parse_ulimits, {"type": "object", "additionalProperties": {"anyOf": [
        {"type": "integer", "minimum": -1},
        {"type": "object", "properties": {"soft": {"type": "integer", "minimum": -1},
                                          "hard": {"type": "integer", "minimum": -1}},
         "required": ["soft", "hard"], "additionalProperties": False}]}}) = None
    read_only: _typed(f.parse_flag, {"type": "boolean"}) = None
    tmpfs: _typed(c.parse_tmpfs, {"anyOf": [_PATH, {"type": "array", "items": {"anyOf": [
        _PATH, {"type": "object", "properties": {"target": _PATH, "size": {"type": ["string", "integer"]},
                                                 "mode": {"type": ["string", "integer"]}, "flags": _LIST},
                "required": ["target"], "additionalProperties": False}]}}]}) = None
    hostname: _typed(c.parse_hostname, {"type": "string", "maxLength": c.MAX_HOSTNAME}) = None
    extra_hosts: _typed(c.parse_extra_hosts, {"anyOf": [_LIST, {"type": "object",
                                                              "additionalProperties": {"type": "string"}}]}) = None
    shm_size: _typed(f.parse_size, {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}],
                                    "examples": ["64M"]}) = None
    sysctls: _typed(c.parse_sysctls, {"type": "object", "additionalProperties": {"type": ["string", "integer"]}}) = None
    cpu_shares: _typed(c.parse_cpu_shares, {"type": "integer", "minimum": MIN_CPU_SHARES,
                                          "maximum": MAX_CPU_SHARES}) = None

    @model_validator(mode="after")
    def _coherent(self) -> ContainerFields:
        both = set(self.cap_add or ()) & set(self.cap_drop or ()) - {"ALL"}
        if both:
            raise Problem(f"{', '.join(sorted(both))} is also in capDrop; add or drop a capability, not both",
                          ".capAdd")
        return self

    def container_settings(self) -> ContainerSettings:
        """The settings asked for: each field given, the rest at their defaults."""
        given = {d.name: getattr(self, d.name) for d in fields(ContainerSettings) if getattr(self, d.name) is not None}
        if self.logging is not None:
            given["logging"] = self.logging.to_logging()
        return ContainerSettings(**given)


def container_body(settings: ContainerSettings) -> dict[str, Any]:
    """``settings`` as the request spells them (only what is set): what ``ContainerFields`` reads back."""
    body: dict[str, Any] = {}
    s = settings
    for name, value in (("user", s.user), ("workingDir", s.working_dir), ("stopSignal", s.stop_signal),
                        ("hostname", s.hostname)):
        if value:
            body[name] = value
    if s.entrypoint is not None:
        body["entrypoint"] = list(s.entrypoint)
    for name, flag in (("privileged", s.privileged), ("readOnly", s.read_only)):
        if flag:
            body[name] = True
    if s.init is not None:
        body["init"] = s.init
    for name, items in (("capAdd", s.cap_add), ("capDrop", s.cap_drop)):
        if items:
            body[name] = list(items)
    if s.devices:
        body["devices"] = [f"{d.source}:{d.target}:{d.permissions}" for d in s.devices]
    if s.labels:
        body["labels"] = dict(s.labels)
    if s.logging is not None:
        body["logging"] = {"driver": s.logging.driver, "options": dict(s.logging.options)}
    if s.stop_grace_period is not None:
        body["stopGracePeriod"] = f.duration_text(s.stop_grace_period)
    if s.ulimits:
        body["ulimits"] = {u.name: u.soft if u.soft == u.hard else {"soft": u.soft, "hard": u.hard}
                           for u in s.ulimits}
    if s.tmpfs:
        body["tmpfs"] = [f"{t.target}:{t.options()}" if t.options() else t.target for t in s.tmpfs]
    if s.extra_hosts:
        body["extraHosts"] = [f"{host}:{ip}" for host, ip in s.extra_hosts]
    if s.shm_size:
        body["shmSize"] = s.shm_size
    if s.sysctls:
        body["sysctls"] = dict(s.sysctls)
    if s.cpu_shares:
        body["cpuShares"] = s.cpu_shares
    return body
