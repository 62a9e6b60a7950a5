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
from dataclasses import replace
from typing import Any

import pydantic
from pydantic import Field, model_validator

from orion.api.schema import fields as f
from orion.api.schema.network import EndpointMode, Publishes, to_publish
from orion.api.schema.problems import Body, Problem, ValidationError, kind_of, refusal
from orion.api.schema.tasks import TaskFields, to_volumes
from orion.defaults import SERVICE_DEFAULTS
from orion.domain import cron
from orion.domain.constraints import LABEL_PREFIX, ConstraintError
from orion.domain.constraints import parse as parse_constraint
from orion.domain.job import OVERLAPS, JobPolicy
from orion.domain.model import MAX_SCALE, RESTART_POLICIES
from orion.domain.service import (
    CHECK_KINDS,
    GLOBAL,
    JOB,
    MODES,
    ORDERS,
    REPLICATED,
    HealthCheck,
    ServiceSpec,
    UpdatePolicy,
)

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
    rebalance: f.Flag = UpdatePolicy().rebalance

    @model_validator(mode="after")
    def _coherent(self) -> UpdateRequest:
        if self.healthy_deadline <= self.min_healthy_time:
            raise Problem(f"{self.healthy_deadline:g}s must be longer than minHealthyTime "
                          f"({self.min_healthy_time:g}s): a replica needs time to become healthy and stay so",
                          ".healthyDeadline")
        return self

    def to_policy(self) -> UpdatePolicy:
        return UpdatePolicy(self.max_parallel, self.min_healthy_time, self.healthy_deadline, self.auto_revert,
                            self.order, self.rebalance)


def _schedule(value: Any) -> str:
    if not isinstance(value, str):
        raise Problem(f"must be a cron schedule like \"0 3 * * *\", not {kind_of(value)}")
    try:
        return cron.parse(value).text
    except cron.CronError as exc:
        raise Problem(str(exc)) from None


def _zone(value: Any) -> str:
    if not isinstance(value, str):
        raise Problem(f"must be a time zone name like \"Europe/Paris\", not {kind_of(value)}")
    try:
        cron.zone(value)
    except cron.CronError as exc:
        raise Problem(str(exc)) from None
    return value


class JobRequest(Body):
    """``{"completions": 5, "parallelism": 2, "retries": 3, "backoff": "10s", "deadline": "1h",
    "schedule": "0 3 * * *", "zone": "Europe/Paris", "overlap": "forbid"}`` (all optional)."""

    EXAMPLE = '{"completions": 1, "schedule": "0 3 * * *"}'
    ALIASES = {"backoffLimit": "retries", "backoff_limit": "retries", "attempts": "retries",
               "activeDeadline": "deadline", "activeDeadlineSeconds": "deadline", "cron": "schedule",
               "timezone": "zone", "timeZone": "zone", "time_zone": "zone", "tz": "zone",
               "concurrencyPolicy": "overlap", "prohibitOverlap": "overlap", "maxConcurrent": "parallelism",
               "max_concurrent": "parallelism", "totalCompletions": "completions", "total_completions": "completions"}

    completions: f.int_range(1, MAX_SCALE) = JobPolicy().completions
    parallelism: f.int_range(1, MAX_SCALE) = JobPolicy().parallelism
    retries: f.int_range(0, MAX_FAILURES) = JobPolicy().retries
    backoff: f.Duration = _wire(JobPolicy().backoff)
    deadline: f.typed(float | None, lambda v: None if v is None else f.parse_duration(v),
                      {"anyOf": [f.DURATION_SCHEMA, {"type": "null"}], "description": "none: no deadline"}) = None
    schedule: f.typed(str, _schedule, {"type": "string", "examples": ["0 3 * * *"]}) = ""
    zone: f.typed(str, _zone, {"type": "string", "examples": ["UTC", "Europe/Paris"]}) = ""
    overlap: f.one_of(OVERLAPS) = JobPolicy().overlap

    @model_validator(mode="after")
    def _coherent(self) -> JobRequest:
        if self.deadline is not None and self.deadline <= 0:
            raise Problem("must be a positive duration (omit it for none)", ".deadline")
        if self.zone and not self.schedule:
            raise Problem("is the zone of the schedule; a job without a schedule has none", ".zone")
        return self

    def to_policy(self) -> JobPolicy:
        return JobPolicy(self.completions, self.parallelism, self.retries, self.backoff, self.deadline or 0.0,
                         self.schedule, self.zone, self.overlap)


def _max_per_node(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SCALE:
        raise Problem(f"{value!r} must be an integer from 1 to {MAX_SCALE} (omit it for no limit)")
    return value


def _spread(value: Any) -> str:
    """``"zone"`` or ``"node.labels.zone"`` (Swarm's placement preference): the label key."""
    if not isinstance(value, str):
        raise Problem(f"must be a node label like \"zone\", not {kind_of(value)}")
    key = value.strip().removeprefix("spread=").removeprefix(LABEL_PREFIX)
    try:  # the label-name rule constraints use
        parse_constraint(f"{LABEL_PREFIX}{key} exists")
    except ConstraintError:
        raise Problem(f"{value!r} is not a node label; spread over one like \"zone\" or \"node.labels.zone\"") \
            from None
    return key


class ServiceRequest(TaskFields):
    """A service's full spec; omitted fields take the service defaults (``SERVICE_DEFAULTS``):
    notably ``restartPolicy`` is ``always`` for a service, where a lone task's is ``never``."""

    ALIASES = {**TaskFields.ALIASES, "health_check": "healthCheck", "healthcheck": "healthCheck",
               "check": "healthCheck", "update_config": "update", "updateConfig": "update",
               "endpoint_mode": "endpointMode", "ports_published": "publish", "published": "publish",
               "max_per_node": "maxPerNode", "max_replicas_per_node": "maxPerNode", "replicasMaxPerNode": "maxPerNode",
               "replicas_max_per_node": "maxPerNode", "preferences": "spread", "schedule": "job",
               "completions": "job", "parallelism": "job"}

    restart_policy: f.one_of(RESTART_POLICIES) = SERVICE_DEFAULTS["restart_policy"]
    health_check: HealthCheckRequest | None = None
    update: UpdateRequest | None = None
    # How it is reached (orion/api/schema/network.py): a VIP (default) or DNS round robin, and
    # ports opened on every host.
    endpoint_mode: EndpointMode = "vip"
    publish: Publishes = None
    mode: f.one_of(MODES) = REPLICATED
    job: JobRequest | None = None
    spread: f.typed(str, _spread, {"type": "string", "examples": ["zone"]}) = ""
    max_per_node: f.typed(int | None, _max_per_node, {
        "anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_SCALE}, {"type": "null"}],
        "description": "at most this many replicas on one node; none: no limit"}) = None

    @model_validator(mode="after")
    def _fits_its_mode(self) -> ServiceRequest:
        """What each mode takes (docs/services.md, "Modes"), refused naming the field that does not fit."""
        given = self.model_fields_set
        if self.mode != REPLICATED and "count" in given:
            raise Problem(f"a {self.mode} service has no count: " + (
                "it runs one replica on every eligible node" if self.mode == GLOBAL else
                "set job.completions"), ".count")
        if self.job is not None and self.mode != JOB:
            raise Problem(f"is for \"mode\": \"job\"; this service is {self.mode}", ".job")
        if self.mode == GLOBAL and (self.spread or self.max_per_node):
            raise Problem("a global service runs one replica per eligible node already",
                          ".spread" if self.spread else ".maxPerNode")
        if self.mode == JOB:
            if self.health_check is not None:
                raise Problem("a job runs to completion: its attempts are judged by their exit code", ".healthCheck")
            if self.update is not None:
                raise Problem("a job's new version runs as a new run: there is no rolling update", ".update")
            if "restart_policy" in given and self.restart_policy != "never":
                raise Problem("a job retries failed attempts itself (job.retries); leave restartPolicy out",
                              ".restartPolicy")
        if self.update is not None and self.update.rebalance and self.mode != REPLICATED:
            raise Problem("only a replicated service rebalances", ".update.rebalance")
        return self
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
    task = request.model_copy(update={"volumes": None, "name": ""}).task_spec()
    if request.stack and not name.startswith(request.stack + "_"):
        raise ValidationError("stack", f"a service of stack {request.stack!r} is named {request.stack}_<service> "
                              f"(as Swarm names them), not {name!r}")
    return ServiceSpec(
        name=name,
        task=replace(task, spread=request.spread, max_per_node=request.max_per_node or 0),
        count=request.count,
        health_check=request.health_check.to_check() if request.health_check is not None else None,
        update=request.update.to_policy() if request.update is not None else UpdatePolicy(),
        volumes=to_volumes(request.volumes),
        endpoint_mode=request.endpoint_mode,
        publish=to_publish(request.publish, request.overlay),
        overlay=request.overlay,
        mode=request.mode,
        job=(request.job.to_policy() if request.job is not None else JobPolicy()) if request.mode == JOB else None,
        stack=request.stack,
    )


def service_notes(spec: ServiceSpec) -> tuple[str, ...]:
    """Accepted, but worth saying in the response: what the spec will do that it does not spell out."""
    notes = []
    if spec.task.max_per_node and spec.update.order == "start-first":
        notes.append(f"maxPerNode {spec.task.max_per_node}: updates run stop-first, since a new replica may "
                     "need the place its predecessor holds on a node")
    if spec.update.order == "start-first" and spec.static_host_ports:
        ports = ", ".join(f"{p}/{proto}" for p, proto in sorted(spec.static_host_ports))
        notes.append(f"update.order start-first with static host ports ({ports}): updates run stop-first, "
                     "since a new replica cannot bind the port while the old one holds it")
    return tuple(notes)
