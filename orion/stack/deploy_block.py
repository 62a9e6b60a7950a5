"""A compose service's ``deploy`` block, ``restart``, resources and ``healthcheck`` as Orion's fields.

Each function reads one part of a service (already interpolated and valid
against the schema) and returns the fields of Orion's ``PUT /services`` body
it maps to, recording in ``findings`` what it cannot honour. A key the file
leaves out takes Orion's default (docs/services.md), not Swarm's or Docker's:
one rule, said once (the only exception is the restart condition, whose Swarm
default ``any`` is Orion's ``always`` anyway).

=================================  ===========================================
compose                            Orion
=================================  ===========================================
``deploy.replicas``, ``scale``     ``count`` (0 cannot be expressed: listed); a job's are ``workload.py``'s
``deploy.update_config``           ``update``: parallelism -> maxParallel (0: all), monitor -> minHealthyTime,
                                   order, failure_action rollback -> autoRevert
``deploy.rollback_config``         Orion reverts with the update rules: keys that differ are listed
``deploy.restart_policy``          condition none/on-failure/any -> restartPolicy never/on-failure/always
``restart``                        no/on-failure/always/unless-stopped, when deploy.restart_policy is absent
``deploy.resources``               limits (else reservations) memory and cpus -> memory, cpu; Orion reserves
                                   what it limits; ``mem_limit``/``cpus`` when there is no deploy.resources
``healthcheck``                    an exec check: CMD argv, or CMD-SHELL/a string through /bin/sh -c
=================================  ===========================================

``deploy.mode``, a job's restart rules and ``deploy.placement`` are in ``workload.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orion.api.schema.fields import parse_duration, parse_memory
from orion.api.schema.problems import Problem
from orion.defaults import SERVICE_DEFAULTS
from orion.domain.service import UpdatePolicy
from orion.stack.findings import Findings, key_path

_CONDITIONS = {"none": "never", "on-failure": "on-failure", "any": "always"}
RESTARTS = {"no": "never", "always": "always", "on-failure": "on-failure", "unless-stopped": "always"}


def int_value(value: Any, path: str, findings: Findings) -> int | None:
    text = str(value).strip()
    if isinstance(value, bool) or not text.lstrip("-").isdigit():
        findings.bad(path, f"{value!r} is not a whole number")
        return None
    return int(text)


def seconds(value: Any, path: str, findings: Findings) -> float | None:
    """A Compose duration ("1m30s", "0") in seconds; None (and recorded) if Orion cannot read it."""
    if str(value).strip() == "0":
        return 0.0
    try:
        return parse_duration(value)
    except Problem as exc:
        findings.bad(path, f"{value!r}: {exc.message} (Orion reads ms, s, m, h)")
        return None


def replicas(svc: Mapping[str, Any], prefix: str, findings: Findings) -> int | None:
    deploy = svc.get("deploy") or {}
    key = ("deploy", "replicas") if "replicas" in deploy else ("scale",)
    value = deploy["replicas"] if "replicas" in deploy else svc.get("scale")
    if value is None:
        return None
    path = key_path(prefix, *key)
    count = int_value(value, path, findings)
    if count == 0:
        findings.cannot(path, "0 replicas: an Orion service runs at least one; leave it out of the file (--prune "
                        "removes it)", skips=True)
        return None
    return count


# Keys of ``deploy`` read here; the others are listed.
HANDLED = frozenset({"mode", "replicas", "update_config", "rollback_config", "restart_policy", "resources",
                     "placement"})
_DEPLOY_REASONS = {"labels": "service labels: Orion does not label services yet",
                   "endpoint_mode": "Orion's services have no endpoint mode to choose yet"}


def deploy_keys(svc: Mapping[str, Any], prefix: str, findings: Findings) -> None:
    """The keys of ``deploy`` nothing reads (``mode`` and ``placement`` are ``workload.py``'s)."""
    for key in svc.get("deploy") or {}:
        if key not in HANDLED and not key.startswith("x-"):
            findings.cannot(key_path(prefix, "deploy", key), _DEPLOY_REASONS.get(key, "not an Orion setting"))


def _update_fields(block: Mapping[str, Any], path: str, count: int, findings: Findings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "parallelism" in block:
        n = int_value(block["parallelism"], key_path(path, "parallelism"), findings)
        if n is not None:
            out["maxParallel"] = n if n > 0 else count  # Swarm: 0 is all at once
    if "monitor" in block and seconds(block["monitor"], key_path(path, "monitor"), findings) is not None:
        out["minHealthyTime"] = str(block["monitor"]).strip() if str(block["monitor"]).strip() != "0" else "0s"
    if "order" in block:
        out["order"] = block["order"]
    action = block.get("failure_action", "pause")
    if action == "rollback":
        out["autoRevert"] = True
    elif action != "pause":
        findings.cannot(key_path(path, "failure_action"), f"{action}: a failed Orion rollout stops (pause) or, "
                        "with rollback, reverts")
    if "delay" in block and seconds(block["delay"], key_path(path, "delay"), findings):
        findings.cannot(key_path(path, "delay"), "a pause between batches: Orion starts the next batch once the "
                        "last counts healthy (monitor)")
    ratio = block.get("max_failure_ratio", 0)
    if str(ratio).strip() not in ("0", "0.0"):
        findings.cannot(key_path(path, "max_failure_ratio"), "a tolerated failure ratio: an Orion rollout fails "
                        "at the first failed replica")
    return out


def _effective(fields: Mapping[str, Any]) -> tuple[int, float, str]:
    """The (maxParallel, minHealthyTime seconds, order) Orion runs for an update body's fields."""
    base = UpdatePolicy()
    monitor = fields.get("minHealthyTime")
    return (fields.get("maxParallel", base.max_parallel),
            parse_duration(monitor) if monitor is not None else base.min_healthy_time,
            fields.get("order", base.order))


def update(svc: Mapping[str, Any], prefix: str, count: int, findings: Findings) -> dict[str, Any] | None:
    """The ``update`` body, or None for Orion's defaults. ``rollback_config`` is compared with it: Orion's
    revert is a new version rolled out with the update rules, so a rollback of other rules is listed."""
    deploy = svc.get("deploy") or {}
    block = deploy.get("update_config")
    fields = _update_fields(block, key_path(prefix, "deploy", "update_config"), count, findings) if block else {}
    rollback = deploy.get("rollback_config")
    if rollback:
        path = key_path(prefix, "deploy", "rollback_config")
        scratch = Findings()
        wanted = _update_fields({k: v for k, v in rollback.items() if k in ("parallelism", "monitor", "order")},
                                path, count, scratch)
        findings.invalid.extend(scratch.invalid)
        ours, theirs = _effective(fields), _effective(wanted)
        for i, key in enumerate(("parallelism", "monitor", "order")):
            if key in rollback and ours[i] != theirs[i]:
                findings.cannot(key_path(path, key), f"{rollback[key]!r}: Orion reverts with the update rules "
                                "(update_config), which say otherwise")
        if "delay" in rollback and seconds(rollback["delay"], key_path(path, "delay"), findings):
            findings.cannot(key_path(path, "delay"), "a pause between batches: Orion reverts with the update rules")
        if str(rollback.get("max_failure_ratio", 0)).strip() not in ("0", "0.0"):
            findings.cannot(key_path(path, "max_failure_ratio"), "a tolerated failure ratio: Orion reverts with "
                            "the update rules")
        if rollback.get("failure_action", "pause") != "pause":
            findings.cannot(key_path(path, "failure_action"), "a failed revert stops where it is (pause)")
    return fields or None


def restart_policy(svc: Mapping[str, Any], prefix: str, findings: Findings) -> str | None:
    policy = (svc.get("deploy") or {}).get("restart_policy")
    if policy is not None:
        path = key_path(prefix, "deploy", "restart_policy")
        for key in ("delay", "max_attempts", "window"):
            if key in policy:
                findings.cannot(key_path(path, key), "Orion restarts with its own backoff (docs/self-healing.md)")
        condition = policy.get("condition", "any")
        if condition not in _CONDITIONS:
            findings.bad(key_path(path, "condition"), f"{condition!r} is not none, on-failure or any")
            return None
        return _CONDITIONS[condition]
    value = svc.get("restart")
    if value is None:
        return None
    name, _, attempts = str(value).partition(":")
    if name not in RESTARTS:
        findings.bad(key_path(prefix, "restart"), f"{value!r} is not no, always, on-failure[:N] or unless-stopped")
        return None
    if attempts:
        findings.cannot(key_path(prefix, "restart"), f"at most {attempts} attempts: Orion restarts with its own "
                        "backoff, without a cap")
    return RESTARTS[name]


def _size(value: Any, path: str, findings: Findings) -> int | None:
    try:
        return parse_memory(value)
    except Problem as exc:
        findings.bad(path, exc.message)
        return None


def resources(svc: Mapping[str, Any], prefix: str, findings: Findings) -> tuple[Any, Any, str]:
    """(memory, cpu, the key path memory came from) — None where the file says nothing."""
    block = (svc.get("deploy") or {}).get("resources") or {}
    limits, reserved = block.get("limits") or {}, block.get("reservations") or {}
    path = key_path(prefix, "deploy", "resources")
    for key in ("pids",):
        if key in limits:
            findings.cannot(key_path(path, "limits", key), "Orion limits memory and cpu")
    for key in ("devices", "generic_resources"):
        if key in reserved:
            findings.cannot(key_path(path, "reservations", key), "Orion reserves memory and cpu")
    memory = cpu = None
    where = key_path(path, "limits", "memory")
    for source, key, at in ((limits, "memory", key_path(path, "limits", "memory")),
                            (reserved, "memory", key_path(path, "reservations", "memory")),
                            (svc, "mem_limit", key_path(prefix, "mem_limit")),
                            (svc, "mem_reservation", key_path(prefix, "mem_reservation"))):
        if memory is None and key in source:
            memory, where = source[key], at
    for source, key in ((limits, "cpus"), (reserved, "cpus"), (svc, "cpus")):
        if cpu is None and key in source:
            cpu = source[key]
    if limits.get("memory") is not None and reserved.get("memory") is not None:
        low, high = _size(reserved["memory"], where, Findings()), _size(limits["memory"], where, Findings())
        if low is not None and high is not None and low != high:
            findings.note(path, f"Orion reserves what it limits: {limits['memory']} of memory is reserved, "
                          f"not {reserved['memory']}")
    if memory is not None:
        _size(memory, where, findings)
    return memory, cpu, where


def healthcheck(svc: Mapping[str, Any], prefix: str, findings: Findings) -> dict[str, Any] | None:
    """An exec ``healthCheck``, or None: no check (none given, ``disable``, or ``test: [NONE]``)."""
    block = svc.get("healthcheck")
    if not block or block.get("disable") in (True, "true"):
        return None
    path = key_path(prefix, "healthcheck")
    test = block.get("test")
    if test is None:
        findings.cannot(key_path(path, "test"), "the image's own HEALTHCHECK: Orion runs the checks a service "
                        "declares; write the test here")
        return None
    if isinstance(test, str):
        argv = ["/bin/sh", "-c", test]
    elif test[:1] == ["NONE"]:
        return None
    elif test[:1] == ["CMD"] and len(test) > 1:
        argv = list(test[1:])
    elif test[:1] == ["CMD-SHELL"] and len(test) > 1:
        argv = ["/bin/sh", "-c", " ".join(test[1:])]
    else:
        findings.bad(key_path(path, "test"), "must be a string, or a list starting with CMD or CMD-SHELL (or NONE)")
        return None
    check: dict[str, Any] = {"exec": argv}
    for key, field in (("interval", "interval"), ("timeout", "timeout"), ("start_period", "startPeriod")):
        if key in block:
            check[field] = str(block[key]).strip()
    if "retries" in block:
        check["failures"] = int_value(block["retries"], key_path(path, "retries"), findings)
    if "start_interval" in block:
        findings.cannot(key_path(path, "start_interval"), "Orion checks every interval, also while starting")
    interval = seconds(check["interval"], key_path(path, "interval"), findings) if "interval" in check else None
    timeout = seconds(check["timeout"], key_path(path, "timeout"), findings) if "timeout" in check else None
    if interval is not None and timeout is not None and timeout > interval:
        findings.cannot(key_path(path, "timeout"), f"{check['timeout']} is above the interval: an Orion check "
                        "ends before the next is due, so it times out at the interval")
        check["timeout"] = check["interval"]
    elif interval is not None and timeout is None and interval < SERVICE_DEFAULTS["check_timeout"]:
        check["timeout"] = check["interval"]  # Orion's default timeout would exceed the interval
    return check
