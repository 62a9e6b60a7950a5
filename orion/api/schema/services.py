"""``PUT /services/<name>`` and ``POST /services`` bodies: a task template, a health check, an update policy.

The task part (image, memory, cpu, command, env, portBindings, nodeSelectors,
restartPolicy, pullPolicy, count, volumes) is :class:`~orion.api.schema.tasks.TaskFields`,
so a service and a task refuse the same mistakes with the same words. Added here:
``healthCheck`` and ``update``, with errors naming the nested field
(``update.maxParallel``, ``healthCheck.exec[1]``) and a "did you mean" for typos.

Durations are strings with a unit, Go style: ``"500ms"``, ``"2s"``, ``"1m30s"``.
A bare number is refused on purpose: Nomad's JSON takes nanoseconds where its
HCL takes seconds, and guessing the unit for someone is how a 10 s check
becomes a 10 ns one.

Static host ports with ``update.order: start-first`` are accepted, with a note
(:func:`service_notes`): the old replica holds the port on its node until it
stops, so a new one started first could only run on a node where the port is
free, and with every node holding one it would wait pending until the
deadline fails the rollout. The deployment planner therefore updates such a
service stop-first (``orion/control/deployment.py``, ``effective_order``).
"""

from __future__ import annotations

import re
from typing import Any

import pydantic
from pydantic import Field, model_validator

from orion.api.schema import fields as f
from orion.api.schema.network import EndpointMode, Publishes, to_publish
from orion.api.schema.problems import Body, Problem, ValidationError, kind_of, refusal
from orion.api.schema.tasks import TaskFields, to_volumes
from orion.defaults import SERVICE_DEFAULTS
from orion.domain.model import MAX_SCALE, RESTART_POLICIES
from orion.domain.service import CHECK_KINDS, ORDERS, HealthCheck, ServiceSpec, UpdatePolicy

# More checks than this in a row is a typo; a check is only as useful as it is prompt.
MAX_FAILURES = 100
# A check more often than every second loads the replica it watches for no gain.
MIN_INTERVAL = 1.0
# A stack's name: Compose's rule for a project name (lowercase letters, digits, '-', '_', starting
# with a letter or digit), short enough that "<stack>_<service>" still fits a service name.
STACK_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,30}$"
_STACK_RE = re.compile(STACK_PATTERN)


def parse_stack(value: Any) -> str:
    """A stack name, or "" (none)."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or not _STACK_RE.match(value):
        raise Problem(f"{value!r} is not a stack name; use lowercase letters, digits, '-' and '_', "
                      "starting with a letter or digit, at most 31 characters")
    return value


def _wire(seconds: float) -> Any:
    """A duration default as the document shows it ("10s"), read by the field's own parser."""
    return Field(f.duration_text(seconds), validate_default=True)


def _check_port(value: Any) -> str:
    """``"80/tcp"`` or ``"80"``: the container port the check dials."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise Problem(f"must be a container port like \"80/tcp\", not {kind_of(value)}", ".port")
    port, _, proto = text.partition("/")
    if f._port_number(port) is None:
        raise Problem(f"{value!r} must be a container port like \"80/tcp\"", ".port")
    if proto not in ("", "tcp"):
        raise Problem(f"{value!r}: http and tcp checks dial a tcp port", ".port")
    return f"{int(port)}/tcp"


class HealthCheckRequest(Body):
    """``{"http": "/healthz", "port": "80/tcp"}``, ``{"tcp": true, "port": ...}`` or ``{"exec": [...]}``."""

    EXAMPLE = '{"http": "/healthz", "port": "80/tcp"}'
    ALIASES = {"start_period": "startPeriod", "retries": "failures", "test": "exec", "command": "exec",
               "cmd": "exec"}

    http: Any = Field(None, json_schema_extra={"anyOf": [{"type": "string", "pattern": "^/"}, {"type": "null"}]})
    tcp: Any = Field(None, json_schema_extra={"anyOf": [{"const": True}, {"type": "null"}]})
    exec_: f.Command = Field(None, alias="exec")
    port: Any = Field(None, json_schema_extra={"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]})
    interval: f.Duration = _wire(SERVICE_DEFAULTS["check_interval"])
    timeout: f.Duration = _wire(SERVICE_DEFAULTS["check_timeout"])
    start_period: f.Duration = _wire(SERVICE_DEFAULTS["check_start_period"])
    failures: f.int_range(1, MAX_FAILURES) = SERVICE_DEFAULTS["check_failures"]

    def to_check(self) -> HealthCheck:
        given = {"http": self.http is not None, "tcp": self.tcp is not None, "exec": self.exec_ is not None}
        kinds = [k for k in CHECK_KINDS if given[k]]
        if len(kinds) != 1:
            raise Problem(f"needs exactly one of {', '.join(CHECK_KINDS)}; "
                          f"{'got ' + ' and '.join(kinds) if kinds else 'none given'}")
        kind = kinds[0]
        if kind == "http" and (not isinstance(self.http, str) or not self.http.startswith("/")):
            raise Problem(f"must be a URL path starting with '/', like \"/healthz\", not {self.http!r}", ".http")
        if kind == "tcp" and self.tcp is not True:
            raise Problem("must be true (the check connects to healthCheck.port)", ".tcp")
        port = ""
        if kind in ("http", "tcp"):
            if self.port is None:
                raise Problem(f"is required for a {kind} check, e.g. \"80/tcp\"", ".port")
            port = _check_port(self.port)
        elif self.port is not None:
            raise Problem("is only used by http and tcp checks; remove it", ".port")
        if self.interval < MIN_INTERVAL:
            raise Problem(f"{f.duration_text(self.interval)!r} is below 1s; check at most once a second", ".interval")
        if not 0 < self.timeout <= self.interval:
            raise Problem(f"{self.timeout:g}s must be above 0 and at most the interval ({self.interval:g}s): "
                          "a check finishes before the next is due", ".timeout")
        return HealthCheck(kind=kind, port=port, path=self.http if kind == "http" else "/", argv=self.exec_ or (),
                           interval=self.interval, timeout=self.timeout, start_period=self.start_period,
                           failures=self.failures)

    @model_validator(mode="after")
    def _coherent(self) -> HealthCheckRequest:
        self.to_check()  # the cross-field rules, refused while pydantic still knows where this object is
        return self


class UpdateRequest(Body):
    """``{"maxParallel": 1, "minHealthyTime": "10s", "healthyDeadline": "5m", ...}``."""

    EXAMPLE = '{"maxParallel": 1, "order": "start-first"}'
    ALIASES = {"max_parallel": "maxParallel", "parallelism": "maxParallel", "min_healthy_time": "minHealthyTime",
               "monitor": "minHealthyTime", "healthy_deadline": "healthyDeadline", "auto_revert": "autoRevert",
               "rollback": "autoRevert"}

    max_parallel: f.int_range(1, MAX_SCALE) = UpdatePolicy().max_parallel
    min_healthy_time: f.Duration = _wire(UpdatePolicy().min_healthy_time)
    healthy_deadline: f.Duration = _wire(UpdatePolicy().healthy_deadline)
    auto_revert: f.Flag = UpdatePolicy().auto_revert
    order: f.one_of(ORDERS) = UpdatePolicy().order

    @model_validator(mode="after")
    def _coherent(self) -> UpdateRequest:
        if self.healthy_deadline <= self.min_healthy_time:
            raise Problem(f"{self.healthy_deadline:g}s must be longer than minHealthyTime "
                          f"({self.min_healthy_time:g}s): a replica needs time to become healthy and stay so",
                          ".healthyDeadline")
        return self

    def to_policy(self) -> UpdatePolicy:
        return UpdatePolicy(self.max_parallel, self.min_healthy_time, self.healthy_deadline, self.auto_revert,
                            self.order)


class ServiceRequest(TaskFields):
    """A service's full spec; omitted fields take the service defaults (``SERVICE_DEFAULTS``):
    notably ``restartPolicy`` is ``always`` for a service, where a lone task's is ``never``."""

    ALIASES = {**TaskFields.ALIASES, "health_check": "healthCheck", "healthcheck": "healthCheck",
               "check": "healthCheck", "update_config": "update", "updateConfig": "update",
               "endpoint_mode": "endpointMode", "mode": "endpointMode", "ports_published": "publish",
               "published": "publish"}

    restart_policy: f.one_of(RESTART_POLICIES) = SERVICE_DEFAULTS["restart_policy"]
    health_check: HealthCheckRequest | None = None
    update: UpdateRequest | None = None
    # How it is reached (orion/api/schema/network.py): a VIP (default) or DNS round robin, and
    # ports opened on every host.
    endpoint_mode: EndpointMode = "vip"
    publish: Publishes = None
    # The stack that lists the service (docs/stacks.md); its name must then be "<stack>_...".
    stack: f.typed(str, parse_stack, {"anyOf": [{"type": "string", "pattern": STACK_PATTERN},
                                                {"const": ""}, {"type": "null"}]}) = ""


_SERVICE_ADAPTER = pydantic.TypeAdapter(ServiceRequest)


def parse_service_request(name: str, body: Any) -> ServiceSpec:
    """Validate a PUT /services/<name> body (camelCase JSON) into the ServiceSpec it declares.
    ``name`` comes from the URL; a ``name`` in the body must agree with it."""
    try:
        f.parse_name(name)
        request = _SERVICE_ADAPTER.validate_python(body)
    except Problem as exc:
        raise ValidationError("name", exc.message) from None
    except pydantic.ValidationError as exc:
        raise refusal(exc) from None
    if request.name not in ("", name):
        raise ValidationError("name", f"{request.name!r} differs from the service in the URL ({name!r}); "
                              "a service is renamed by declaring a new one")
    if request.stack and not name.startswith(request.stack + "_"):
        raise ValidationError("stack", f"a service of stack {request.stack!r} is named {request.stack}_<service> "
                              f"(as Swarm names them), not {name!r}")
    return ServiceSpec(
        name=name,
        task=request.model_copy(update={"volumes": None, "name": ""}).task_spec(),
        count=request.count,
        health_check=request.health_check.to_check() if request.health_check is not None else None,
        update=request.update.to_policy() if request.update is not None else UpdatePolicy(),
        volumes=to_volumes(request.volumes),
        endpoint_mode=request.endpoint_mode,
        publish=to_publish(request.publish, request.overlay),
        overlay=request.overlay,
        stack=request.stack,
    )


def service_notes(spec: ServiceSpec) -> tuple[str, ...]:
    """Accepted, but worth saying in the response: what the spec will do that it does not spell out."""
    notes = []
    if spec.update.order == "start-first" and spec.static_host_ports:
        ports = ", ".join(f"{p}/{proto}" for p, proto in sorted(spec.static_host_ports))
        notes.append(f"update.order start-first with static host ports ({ports}): updates run stop-first, "
                     "since a new replica cannot bind the port while the old one holds it")
    return tuple(notes)
