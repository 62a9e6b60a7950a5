"""Turn a ``PUT /services/<name>`` body into a ServiceSpec, or say exactly what is wrong.

Pure code like ``orion/api/validation.py``, whose rules and refusals it reuses:
the task part of the body (image, memory, cpu, command, env, portBindings,
nodeSelectors, restartPolicy, pullPolicy, count) goes through
:func:`~orion.api.validation.parse_task_request` unchanged, so a service and a
task refuse the same mistakes with the same words (``volumes`` too: one parser,
:func:`~orion.api.validation.parse_volumes`). Added here: ``healthCheck`` and
``update``, with errors naming the nested field
(``update.maxParallel``, ``volumes[0].source``) and a "did you mean" for typos.

Durations are strings with a unit, Go style: ``"500ms"``, ``"2s"``, ``"1m30s"``.
A bare number is refused on purpose: Nomad's JSON takes nanoseconds where its
HCL takes seconds, and guessing the unit for someone is how a 10 s check
becomes a 10 ns one.

Volumes never name a raw host path: a replica may land on any node, and a path
that exists (with the right data and owner) on one node is absent or different
on the next. A ``type: host`` volume names a host volume that nodes declare in
their configuration (the scheduler will place the replica only where it
exists); a ``type: volume`` is a docker named volume the engine creates.

Static host ports with ``update.order: start-first`` are accepted, with a note
(:func:`service_notes`): the old replica holds the port on its node until it
stops, so a new one started first could only run on a node where the port is
free, and with every node holding one it would wait pending until the
deadline fails the rollout. The deployment planner therefore updates such a
service stop-first (``orion/control/deployment.py``, ``effective_order``).
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from typing import Any

from orion.api.durations import parse_duration
from orion.api.validation import FIELDS as TASK_FIELDS
from orion.api.validation import (
    ValidationError,
    kind_of,
    parse_command,
    parse_name,
    parse_task_request,
    parse_volumes,
)
from orion.defaults import SERVICE_DEFAULTS
from orion.model import MAX_SCALE
from orion.service import (
    CHECK_KINDS,
    ORDERS,
    HealthCheck,
    ServiceSpec,
    UpdatePolicy,
)

FIELDS = (*TASK_FIELDS, "healthCheck", "update")  # volumes: a task field, one parser for both
CHECK_FIELDS = ("http", "tcp", "exec", "port", "interval", "timeout", "startPeriod", "failures")
UPDATE_FIELDS = ("maxParallel", "minHealthyTime", "healthyDeadline", "autoRevert", "order")

# Spellings brought from Docker, Swarm, Nomad or our own snake_case model.
_ALIASES = {
    "ports": "portBindings", "port_bindings": "portBindings", "node_selectors": "nodeSelectors",
    "restart_policy": "restartPolicy", "pull_policy": "pullPolicy", "replicas": "count",
    "cpus": "cpu", "cpu_millis": "cpu", "mem": "memory", "cmd": "command", "environment": "env",
    "health_check": "healthCheck", "healthcheck": "healthCheck", "check": "healthCheck",
    "update_config": "update", "updateConfig": "update", "mounts": "volumes",
    "max_parallel": "maxParallel", "parallelism": "maxParallel",
    "min_healthy_time": "minHealthyTime", "monitor": "minHealthyTime",
    "healthy_deadline": "healthyDeadline", "auto_revert": "autoRevert", "rollback": "autoRevert",
    "start_period": "startPeriod", "retries": "failures", "test": "exec", "command": "exec",
    "read_only": "readOnly", "readonly": "readOnly", "destination": "target", "src": "source",
    "dst": "target",
}

# More checks than this in a row is a typo; a check is only as useful as it is prompt.
MAX_FAILURES = 100
# A check more often than every second loads the replica it watches for no gain.
MIN_INTERVAL = 1.0


def _unknown(prefix: str, key: Any, known: tuple[str, ...]) -> ValidationError:
    key = str(key)
    guess = _ALIASES.get(key) if _ALIASES.get(key) in known else None
    guess = guess or next(iter(difflib.get_close_matches(key, known, n=1)), None)
    hint = f"; did you mean {guess!r}?" if guess else f"; known fields: {', '.join(known)}"
    return ValidationError(f"{prefix}{key}", f"unknown field{hint}")


def _object(field_name: str, value: Any, known: tuple[str, ...], example: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(field_name, f"must be an object like {example}, not {kind_of(value)}")
    for key in value:
        if key not in known:
            raise _unknown(f"{field_name}.", key, known)
    return value


def _int(field_name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(field_name, f"{value!r} must be an integer from {low} to {high}")
    return value


def _bool(field_name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(field_name, f"must be true or false, not {kind_of(value)}")
    return value


def _choice(field_name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValidationError(field_name, f"{value!r} is not one of {', '.join(choices)}")
    return str(value)


def _check_port(value: Any) -> str:
    """``"80/tcp"`` or ``"80"``: the container port the check dials."""
    text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(text, str):
        raise ValidationError("healthCheck.port", f"must be a container port like \"80/tcp\", not {kind_of(value)}")
    port, _, proto = text.partition("/")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValidationError("healthCheck.port", f"{value!r} must be a container port like \"80/tcp\"")
    if proto not in ("", "tcp"):
        raise ValidationError("healthCheck.port", f"{value!r}: http and tcp checks dial a tcp port")
    return f"{int(port)}/tcp"


def parse_health_check(value: Any) -> HealthCheck:
    """``{"http": "/healthz", "port": "80/tcp"}``, ``{"tcp": true, "port": ...}`` or ``{"exec": [...]}``."""
    body = _object("healthCheck", value, CHECK_FIELDS, '{"http": "/healthz", "port": "80/tcp"}')
    kinds = [k for k in CHECK_KINDS if k in body]
    if len(kinds) != 1:
        raise ValidationError("healthCheck", f"needs exactly one of {', '.join(CHECK_KINDS)}; "
                              f"{'got ' + ' and '.join(kinds) if kinds else 'none given'}")
    kind = kinds[0]
    path, argv, port = "/", (), ""
    if kind == "http":
        path = body["http"]
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValidationError("healthCheck.http", f"must be a URL path starting with '/', like \"/healthz\", "
                                  f"not {path!r}")
    elif kind == "tcp" and body["tcp"] is not True:
        raise ValidationError("healthCheck.tcp", "must be true (the check connects to healthCheck.port)")
    elif kind == "exec":
        try:
            argv = parse_command(body["exec"]) or ()
        except ValidationError as err:
            raise ValidationError("healthCheck.exec" + (err.field or "")[len("command"):], err.message) from None
        if not argv:
            raise ValidationError("healthCheck.exec", "must be a command, e.g. [\"pg_isready\"]")
    if kind in ("http", "tcp"):
        if "port" not in body:
            raise ValidationError("healthCheck.port", f"is required for a {kind} check, e.g. \"80/tcp\"")
        port = _check_port(body["port"])
    elif "port" in body:
        raise ValidationError("healthCheck.port", "is only used by http and tcp checks; remove it")
    interval = _seconds(body, "healthCheck", "interval", SERVICE_DEFAULTS["check_interval"])
    if interval < MIN_INTERVAL:
        raise ValidationError("healthCheck.interval", f"{body['interval']!r} is below 1s; check at most once a second")
    timeout = _seconds(body, "healthCheck", "timeout", SERVICE_DEFAULTS["check_timeout"])
    if not 0 < timeout <= interval:
        raise ValidationError("healthCheck.timeout", f"{timeout:g}s must be above 0 and at most the interval "
                              f"({interval:g}s): a check finishes before the next is due")
    return HealthCheck(
        kind=kind, port=port, path=path, argv=argv, interval=interval, timeout=timeout,
        start_period=_seconds(body, "healthCheck", "startPeriod", SERVICE_DEFAULTS["check_start_period"]),
        failures=(_int("healthCheck.failures", body["failures"], 1, MAX_FAILURES)
                  if "failures" in body else SERVICE_DEFAULTS["check_failures"]),
    )


def _seconds(body: dict[str, Any], prefix: str, key: str, default: float) -> float:
    return parse_duration(f"{prefix}.{key}", body[key]) if key in body else default


def parse_update(value: Any) -> UpdatePolicy:
    """``{"maxParallel": 1, "minHealthyTime": "10s", "healthyDeadline": "5m", ...}``."""
    body = _object("update", value, UPDATE_FIELDS, '{"maxParallel": 1, "order": "start-first"}')
    base = UpdatePolicy()
    min_healthy = _seconds(body, "update", "minHealthyTime", base.min_healthy_time)
    deadline = _seconds(body, "update", "healthyDeadline", base.healthy_deadline)
    if deadline <= min_healthy:
        raise ValidationError("update.healthyDeadline", f"{deadline:g}s must be longer than minHealthyTime "
                              f"({min_healthy:g}s): a replica needs time to become healthy and stay so")
    return UpdatePolicy(
        max_parallel=(_int("update.maxParallel", body["maxParallel"], 1, MAX_SCALE)
                      if "maxParallel" in body else base.max_parallel),
        min_healthy_time=min_healthy,
        healthy_deadline=deadline,
        auto_revert=_bool("update.autoRevert", body["autoRevert"]) if "autoRevert" in body else base.auto_revert,
        order=_choice("update.order", body["order"], ORDERS) if "order" in body else base.order,
    )


def parse_service_request(name: str, body: Any) -> ServiceSpec:
    """Validate a PUT /services/<name> body (camelCase JSON) into the ServiceSpec it declares.

    ``name`` comes from the URL; a ``name`` in the body must agree with it.
    Omitted fields take the service defaults (``orion.defaults.SERVICE_DEFAULTS``):
    notably ``restartPolicy`` is ``always`` for a service, where a lone task's is ``never``.
    """
    parse_name(name)
    if not isinstance(body, dict):
        raise ValidationError(
            None, f"body must be a JSON object like {{\"image\": ..., \"memory\": ...}}, not {kind_of(body)}"
        )
    for key in body:
        if key not in FIELDS:
            raise _unknown("", key, FIELDS)
    if body.get("name") not in (None, "", name):
        raise ValidationError("name", f"{body['name']!r} differs from the service in the URL ({name!r}); "
                              "a service is renamed by declaring a new one")
    # The template carries no volumes: the service's own (sorted) list is the one compared.
    task = parse_task_request({k: v for k, v in body.items() if k in TASK_FIELDS and k not in ("name", "volumes")})
    if "restartPolicy" not in body:
        task = replace(task, restart_policy=SERVICE_DEFAULTS["restart_policy"])
    return ServiceSpec(
        name=name,
        task=task,
        count=task.count,
        health_check=parse_health_check(body["healthCheck"]) if body.get("healthCheck") is not None else None,
        update=parse_update(body["update"]) if body.get("update") is not None else UpdatePolicy(),
        volumes=parse_volumes(body["volumes"]) if body.get("volumes") is not None else (),
    )


def service_notes(spec: ServiceSpec) -> tuple[str, ...]:
    """Accepted, but worth saying in the response: what the spec will do that it does not spell out."""
    notes = []
    if spec.update.order == "start-first" and spec.static_host_ports:
        ports = ", ".join(f"{p}/{proto}" for p, proto in sorted(spec.static_host_ports))
        notes.append(f"update.order start-first with static host ports ({ports}): updates run stop-first, "
                     "since a new replica cannot bind the port while the old one holds it")
    return tuple(notes)
