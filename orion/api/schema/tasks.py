"""``POST /tasks`` and ``PATCH /tasks/<id>`` bodies, and the mounts a task or a service asks for.

What is *not* checked here, on purpose: whether any node can hold the task. A
task bigger than every node is a valid request; the placement planner keeps it pending
with a no-fit reason, so it runs once a big enough node joins.

Volumes never name a raw host path: a task may land on any node, and a path
that exists (with the right data and owner) on one node is absent or different
on the next. A ``type: host`` volume names a host volume that nodes declare in
their configuration (the placement planner places it only where it exists); a
``type: volume`` is a docker named volume the engine creates.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Any, ClassVar

import pydantic
from pydantic import BeforeValidator, Field, model_validator

from orion.api.schema import fields as f
from orion.api.schema import secrets as secret_schema
from orion.api.schema.container import ContainerFields
from orion.api.schema.problems import Body, Problem, ValidationError, kind_of, refusal
from orion.domain.constraints import Constraint, ConstraintError
from orion.domain.constraints import parse as parse_constraint
from orion.domain.model import MAX_SCALE, PULL_POLICIES, RESTART_POLICIES, TaskSpec
from orion.domain.resources import VOLUME_NAME_RE, VOLUME_TYPES, Volume


def _volume_name(value: Any) -> str:
    if isinstance(value, str) and (value.startswith(("/", ".", "~")) or "/" in value):
        raise Problem(f"{value!r} is a host path; mount a host volume the nodes declare by name "
                      "(type \"host\") or a docker volume (type \"volume\"), so every node means the same thing by it")
    if not isinstance(value, str) or not VOLUME_NAME_RE.match(value):
        raise Problem(f"{value!r} is not a volume name; use letters, digits, '_', '.', '-' "
                      "(start alphanumeric, at least two characters)")
    return value


def _container_path(value: Any) -> str:
    if (not isinstance(value, str) or not value.startswith("/") or value.strip("/") == ""
            or "\0" in value or ".." in value.split("/")):
        raise Problem(f"{value!r} must be an absolute path inside the container, not '/', without '..'")
    return posixpath.normpath(value)


def _no_default(schema: dict[str, Any]) -> None:
    """Absent means "see the other field", which no default value could say."""
    schema.pop("default", None)


VolumeName = f.typed(str, _volume_name, {"type": "string", "pattern": VOLUME_NAME_RE.pattern})


class VolumeRequest(Body):
    """``{"source": "data", "target": "/data", "readOnly": false, "type": "host"}``
    (``name`` is the same as ``source``, as Nomad's host_volume is addressed)."""

    EXAMPLE = '{"source": "data", "target": "/data"}'
    ALIASES = {"read_only": "readOnly", "readonly": "readOnly", "destination": "target", "src": "source",
               "dst": "target", "volume": "source"}

    source: VolumeName = Field(None, json_schema_extra=_no_default)
    name: VolumeName = Field(None, description="the same as source", json_schema_extra=_no_default)
    target: f.typed(str, _container_path, {"type": "string", "pattern": "^/"})
    read_only: f.Flag = False
    type: f.one_of(VOLUME_TYPES) = "host"

    @model_validator(mode="after")
    def _one_source(self) -> VolumeRequest:
        if self.source is not None and self.name is not None:
            raise Problem("names the volume like source; give one of them", ".name")
        if self.source is None and self.name is None:
            raise Problem("is required", ".source")
        return self

    def to_volume(self) -> Volume:
        return Volume(self.source or self.name or "", self.target, self.read_only, self.type)


def _mounts(value: Any) -> Any:
    if value is not None and not isinstance(value, list):
        raise Problem(f"must be a list of {{\"source\", \"target\"}} objects, not {kind_of(value)}")
    return value


Mounts = Annotated[tuple[VolumeRequest, ...] | None, BeforeValidator(_mounts),
                   Field(description="mounts by name: a host volume nodes declare, or a docker volume; "
                                     "never a host path")]


def to_volumes(mounts: tuple[VolumeRequest, ...] | None) -> tuple[Volume, ...]:
    """The mounts, no two on one target."""
    volumes = tuple(m.to_volume() for m in mounts or ())
    seen: dict[str, int] = {}
    for i, vol in enumerate(volumes):
        if vol.target in seen:
            raise ValidationError(f"volumes[{i}].target",
                                  f"{vol.target!r} is already mounted by volumes[{seen[vol.target]}]")
        seen[vol.target] = i
    return volumes


def _pull_policy(value: Any) -> str:
    """``missing`` (Compose's word) is ``if-not-present``."""
    if value == "missing":
        return "if-not-present"
    if value not in PULL_POLICIES:
        raise Problem(f"{value!r} is not one of {', '.join(PULL_POLICIES)} (or missing, the same as if-not-present)")
    return str(value)


PullPolicy = f.typed(str, _pull_policy, {"type": "string", "enum": [*PULL_POLICIES, "missing"]})
def parse_constraints(value: Any) -> tuple[Constraint, ...]:
    """``["node.labels.zone != a", "engine.version >= 20.10"]`` (orion/domain/constraints.py), sorted."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise Problem(f"must be a list of constraints like [\"node.labels.zone != a\"], not {kind_of(value)}")
    out = set()
    for i, text in enumerate(value):
        if not isinstance(text, str):
            raise Problem(f"must be a string like \"node.labels.zone != a\", not {kind_of(text)}", f"[{i}]")
        try:
            out.add(parse_constraint(text))
        except ConstraintError as exc:
            raise Problem(str(exc), f"[{i}]") from None
    return tuple(sorted(out))


Constraints = f.typed(tuple[Constraint, ...], parse_constraints, {
    "anyOf": [{"type": "array", "items": {"type": "string", "examples": ["node.labels.zone != a"]}},
              {"type": "null"}],
    "description": "every one must hold on the node: ATTRIBUTE OP VALUE, OP one of ==, !=, in, not in, exists, "
                   "not exists, >=, >, <=, <; ATTRIBUTE node.labels.KEY, node.hostname, node.id, "
                   "node.platform.os, node.platform.arch, engine.version"})


class TaskFields(ContainerFields):
    """What a task and a service template share, refused with the same words in both: the fields
    below and the container settings (``ContainerFields``: user, capAdd, devices, ...)."""

    EXAMPLE = '{"image": ..., "memory": ...}'
    ALIASES = {**ContainerFields.ALIASES,
               "ports": "portBindings", "port_bindings": "portBindings", "node_selectors": "nodeSelectors",
               "restart_policy": "restartPolicy", "pull_policy": "pullPolicy", "replicas": "count",
               "cpus": "cpu", "cpu_millis": "cpu", "mem": "memory", "cmd": "command", "environment": "env",
               "mounts": "volumes", "constraint": "constraints", "placement": "constraints"}

    image: f.Image
    memory: f.Memory
    cpu: f.Cpu = None
    name: f.OptionalName = ""
    command: f.Command = None
    env: secret_schema.Env = Field((), json_schema_extra=_no_default)  # null or absent: none
    port_bindings: f.PortBindings = Field((), json_schema_extra=_no_default)
    node_selectors: f.Labels = Field((), json_schema_extra=_no_default)
    restart_policy: f.one_of(RESTART_POLICIES)
    pull_policy: PullPolicy = "if-not-present"
    count: f.int_range(1, MAX_SCALE) = 1
    volumes: Mounts = None
    secrets: secret_schema.Files = None  # docs/secrets.md
    configs: secret_schema.Files = None
    # On the overlay network (an address of its node's subnet, reachable from every host); false:
    # only its port bindings reach it.
    overlay: f.Flag = True
    constraints: Constraints = Field((), json_schema_extra=_no_default)

    @classmethod
    def not_an_object(cls, value: Any) -> Problem:
        return Problem(f"body must be a JSON object like {cls.EXAMPLE}, not {kind_of(value)}")

    @model_validator(mode="after")
    def _one_mount_per_target(self) -> TaskFields:
        mounted = {v.target: i for i, v in enumerate(self.volumes or ())}
        for i, tmpfs in enumerate(self.tmpfs or ()):
            if tmpfs.target in mounted:
                raise Problem(f"{tmpfs.target} is already mounted by volumes[{mounted[tmpfs.target]}]", f".tmpfs[{i}]")
        return self

    def task_spec(self) -> TaskSpec:
        volumes = to_volumes(self.volumes)
        files = secret_schema.file_refs(self.secrets, self.configs, {v.target: i for i, v in enumerate(volumes)})
        env, secret_env = secret_schema.split_env(self.env)
        return TaskSpec(image=self.image, memory=self.memory, cpu_millis=self.cpu or 0, name=self.name,
                        command=self.command, env=env, ports=self.port_bindings,
                        node_selectors=self.node_selectors, restart_policy=self.restart_policy,
                        pull_policy=self.pull_policy, count=self.count, volumes=volumes, files=files,
                        secret_env=secret_env, overlay=self.overlay, container=self.container_settings(),
                        constraints=self.constraints)


class TaskRequest(TaskFields):
    """A ``POST /tasks`` body; ``count`` > 1 asks for that many replicas, each its own task."""

    restart_policy: f.one_of(RESTART_POLICIES) = "never"


class ScaleRequest(Body):
    """A ``PATCH /tasks/<id>`` body: only the size of the task's group can change."""

    EXAMPLE = '{"count": 3}'
    ALIASES: ClassVar = {"replicas": "count"}

    count: f.int_range(0, MAX_SCALE)


_TASK_ADAPTER = pydantic.TypeAdapter(TaskRequest)  # built once: pydantic compiles the validator here


def parse_task_request(body: Any) -> TaskSpec:
    """Validate a POST /tasks body (camelCase JSON) and build the TaskSpec it asks for."""
    try:
        request = _TASK_ADAPTER.validate_python(body)
    except pydantic.ValidationError as exc:
        raise refusal(exc) from None
    return request.task_spec()


def parse_scale_request(body: Any) -> int:
    try:
        return ScaleRequest.model_validate(body).count
    except pydantic.ValidationError as exc:
        raise refusal(exc) from None
