"""What a compose service runs and where: ``deploy.mode``, a job's block, ``deploy.placement``.

Pure like the rest of ``orion/stack``: each function reads one part of a service
(interpolated, valid against the schema) and returns the fields of Orion's body it
maps to, recording in ``findings`` what it cannot honour.

**Modes** (``docs/services.md``, "Modes"). ``replicated`` is a service, ``global`` a
global service (``deploy.replicas`` or ``scale`` beside it is refused, as ``docker
stack deploy`` refuses it). ``replicated-job`` is a job whose ``replicas`` are both
its completions and its parallelism — ``docker stack deploy``'s rule
(docker/cli ``convertDeployMode``: ``MaxConcurrent`` and ``TotalCompletions`` are
both ``replicas``; without it Swarm's defaults, 1 and 1, which are Orion's). A
job retries failed attempts itself, so the restart policy becomes its retries:
``condition: none`` (or ``restart: "no"``) none, ``max_attempts`` (or
``on-failure:N``) that many, ``delay`` the backoff (Orion doubles it per failure).
``global-job`` (one run on every node) has no Orion mode: listed, the service left
out.

**Top-level** ``jobs`` (the Compose Specification's run-to-completion containers,
experimental in Docker Compose): one ``triggers.schedule`` is Orion's cron
schedule — a crontab string, or ``cron`` with ``timezone`` (Orion's ``zone``;
UTC without one, where Compose takes the platform's local time: a note says so),
``concurrency: forbid`` (Orion's default overlap) and ``missed_fires: one`` (what
Orion does: of the slots missed while no leader decided, the latest runs once).
A job with only ``triggers.manual`` runs on demand (``docker compose run``); an
Orion job without a schedule runs once when declared, so such a job is listed and
left out.

**``x-orion-job``** (a service's or a job's extension key): Orion's job block as
the API takes it (``completions``, ``parallelism``, ``retries``, ``backoff``,
``deadline``, ``schedule``, ``zone``, ``overlap``), over what the Compose keys
give — for what Compose cannot say: completions apart from parallelism, a
deadline, a schedule on a ``replicated-job``, ``overlap: allow|replace``.

**Placement.** ``node.labels.KEY == VALUE`` is a ``nodeSelectors`` entry (as it was
before constraints existed, so a stack deployed then is unchanged); every other
constraint Orion reads (``!=``, ``node.hostname``, ``node.platform.os|arch``,
``node.id``, ``engine.version``) is a ``constraints`` entry in Swarm's syntax, which
Orion's own parser reads. ``node.role`` and ``engine.labels`` name what Orion's
nodes do not have: listed. ``preferences: [{spread: node.labels.X}]`` is
``spread`` (one label: further preferences are listed); ``max_replicas_per_node``
is ``maxPerNode`` (0, Swarm's "no limit", is none).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from orion.domain.constraints import ConstraintError
from orion.domain.constraints import parse as parse_constraint
from orion.domain.service import GLOBAL, JOB, REPLICATED
from orion.stack.deploy_block import RESTARTS, int_value, seconds
from orion.stack.findings import Findings, key_path

JOB_KEY = "x-orion-job"
MODES = {"replicated": REPLICATED, "global": GLOBAL, "replicated-job": JOB}
_LABEL_EQUALS = re.compile(r"^\s*node\.labels\.([A-Za-z0-9_.-]+)\s*==\s*(\S+)\s*$")
_NOT_ON_ORION = {"node.role": "Orion's nodes have no manager/worker role: every node runs tasks",
                 "engine.labels.": "Orion reads node labels (an agent's --label), not engine labels"}


def mode(svc: Mapping[str, Any], prefix: str, findings: Findings) -> str | None:
    """The Orion mode of ``deploy.mode``; None when the service cannot run as written (recorded)."""
    value = (svc.get("deploy") or {}).get("mode", "replicated")
    path = key_path(prefix, "deploy", "mode")
    if value == "global-job":
        findings.cannot(path, "global-job (one run to completion on every node): Orion's jobs place their "
                        "attempts by resources, not one per node", skips=True)
        return None
    if value not in MODES:
        findings.bad(path, f"{value!r} is not replicated, global, replicated-job or global-job")
        return None
    if MODES[value] == GLOBAL:
        given = [key_path(prefix, "deploy", "replicas")] if (svc.get("deploy") or {}).get("replicas") is not None \
            else []
        given += [key_path(prefix, "scale")] if svc.get("scale") is not None else []
        for at in given:
            findings.bad(at, "a global service runs one replica on every eligible node: remove it (docker stack "
                         "deploy refuses it too)")
    return MODES[value]


def _retries(svc: Mapping[str, Any], prefix: str, findings: Findings) -> dict[str, Any]:
    """A job's ``retries`` and ``backoff`` from its restart policy (``deploy.restart_policy``, else
    ``restart``); Orion's defaults for what it leaves out."""
    policy = (svc.get("deploy") or {}).get("restart_policy")
    out: dict[str, Any] = {}
    if policy is not None:
        path = key_path(prefix, "deploy", "restart_policy")
        condition = policy.get("condition", "any")
        if condition not in ("none", "on-failure", "any"):
            findings.bad(key_path(path, "condition"), f"{condition!r} is not none, on-failure or any")
        elif condition == "none":
            out["retries"] = 0
        elif "max_attempts" in policy:
            attempts = int_value(policy["max_attempts"], key_path(path, "max_attempts"), findings)
            if attempts == 0:
                findings.cannot(key_path(path, "max_attempts"), "0 (no limit): an Orion job fails after its "
                                "retries; write their number")
            elif attempts is not None:
                out["retries"] = attempts
        if "delay" in policy and seconds(policy["delay"], key_path(path, "delay"), findings) is not None:
            out["backoff"] = str(policy["delay"]).strip() if str(policy["delay"]).strip() != "0" else "0s"
        if "window" in policy:
            findings.cannot(key_path(path, "window"), "Orion counts an attempt by its exit code, however long "
                            "it ran")
        return out
    name, _, attempts_text = str(svc.get("restart", "")).partition(":")
    if name == "no":
        out["retries"] = 0
    elif name == "on-failure" and attempts_text:
        attempts = int_value(attempts_text, key_path(prefix, "restart"), findings)
        if attempts is not None:
            out["retries"] = attempts
    elif name and name not in RESTARTS:
        findings.bad(key_path(prefix, "restart"), f"{svc['restart']!r} is not no, always, on-failure[:N] or "
                     "unless-stopped")
    return out


def _schedule(triggers: Mapping[str, Any], prefix: str, findings: Findings) -> dict[str, Any] | None:
    """A top-level job's schedule fields, or None: it runs on demand only (listed, left out)."""
    path = key_path(prefix, "triggers")
    schedules = triggers.get("schedule") or []
    if not schedules:
        findings.cannot(path, "a job run only on demand (docker compose run): an Orion job without a schedule "
                        "runs once when declared; use a service with deploy.mode: replicated-job for that",
                        skips=True)
        return None
    for i in range(1, len(schedules)):
        findings.cannot(key_path(path, "schedule", i), "Orion runs one schedule per job: declare another job for it")
    first = schedules[0]
    at = key_path(path, "schedule", 0)
    entry = {"cron": first} if isinstance(first, str) else first
    out: dict[str, Any] = {"schedule": entry["cron"]}
    if entry.get("timezone"):
        out["zone"] = entry["timezone"]
    else:
        findings.note(at, "no timezone: Orion runs the schedule in UTC (Compose: the platform's local time)")
    if entry.get("concurrency", "forbid") != "forbid":
        findings.cannot(key_path(at, "concurrency"), f"{entry['concurrency']}: a slot due while the previous run "
                        "goes is skipped (forbid), or with x-orion-job's overlap run beside it (allow) or "
                        "instead of it (replace)")
    if entry.get("missed_fires", "one") != "one":
        findings.cannot(key_path(at, "missed_fires"), f"{entry['missed_fires']}: of the slots missed while no "
                        "leader decided, Orion runs the latest once (one)")
    return out


def job(svc: Mapping[str, Any], prefix: str, count: int | None, top_level: bool,
        findings: Findings) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """The ``job`` block of a job (a ``replicated-job`` service, or a top-level job: ``top_level``)
    and where each of its fields came from; None when the job cannot run as written (recorded)."""
    origin: dict[str, str] = {}
    fields: dict[str, Any] = {}
    if top_level:
        timing = _schedule(svc.get("triggers") or {}, prefix, findings)
        if timing is None:
            return None, origin
        fields.update(timing)
        at = key_path(prefix, "triggers", "schedule", 0)
        written = svc["triggers"]["schedule"][0]
        origin.update({"job.schedule": at if isinstance(written, str) else key_path(at, "cron"),
                       "job.zone": key_path(at, "timezone")})
    elif count is not None:
        fields.update(completions=count, parallelism=count)
        where = key_path(prefix, "deploy", "replicas") if "replicas" in (svc.get("deploy") or {}) \
            else key_path(prefix, "scale")
        origin.update({"job.completions": where, "job.parallelism": where})
    restarts = _retries(svc, prefix, findings)
    fields.update(restarts)
    origin.update({f"job.{k}": key_path(prefix, "deploy", "restart_policy") for k in restarts})
    extra = svc.get(JOB_KEY)
    if extra is not None:
        if not isinstance(extra, dict):
            findings.bad(key_path(prefix, JOB_KEY), "must be a mapping of Orion's job fields, like "
                         "{schedule: \"0 3 * * *\", deadline: 1h}")
            return None, origin
        fields.update(extra)
        origin.update({f"job.{k}": key_path(prefix, JOB_KEY, k) for k in extra})
    origin["job"] = key_path(prefix, JOB_KEY) if extra is not None else prefix
    return fields, origin


def placement(svc: Mapping[str, Any], prefix: str, findings: Findings) -> tuple[dict[str, Any], dict[str, str]]:
    """``nodeSelectors``, ``constraints``, ``spread`` and ``maxPerNode``, and where each came from."""
    block = (svc.get("deploy") or {}).get("placement") or {}
    path = key_path(prefix, "deploy", "placement")
    selectors: dict[str, str] = {}
    constraints: list[str] = []
    for i, text in enumerate(block.get("constraints") or ()):
        at = key_path(path, "constraints", i)
        match = _LABEL_EQUALS.match(text)
        unknown = next((why for name, why in _NOT_ON_ORION.items() if text.strip().startswith(name)), None)
        if unknown:
            findings.cannot(at, f"{text!r}: {unknown}")
        elif match and selectors.get(match.group(1), match.group(2)) != match.group(2):
            findings.bad(at, f"node.labels.{match.group(1)} cannot equal two values")
        elif match:
            selectors[match.group(1)] = match.group(2)
        else:
            try:
                constraints.append(str(parse_constraint(text)))
            except ConstraintError as exc:
                findings.bad(at, str(exc))
    out: dict[str, Any] = {}
    if selectors:
        out["nodeSelectors"] = selectors
    if constraints:
        out["constraints"] = constraints
    for i, preference in enumerate(block.get("preferences") or ()):
        at = key_path(path, "preferences", i)
        if i == 0 and "spread" in preference:
            out["spread"] = preference["spread"]
        elif "spread" in preference:
            findings.cannot(key_path(at, "spread"), "Orion spreads over one label: the first preference")
    if block.get("max_replicas_per_node") is not None:
        limit = int_value(block["max_replicas_per_node"], key_path(path, "max_replicas_per_node"), findings)
        if limit:  # 0 is Swarm's "no limit": Orion's default
            out["maxPerNode"] = limit
    origin = {"nodeSelectors": key_path(path, "constraints"), "constraints": key_path(path, "constraints"),
              "spread": key_path(path, "preferences", 0, "spread"),
              "maxPerNode": key_path(path, "max_replicas_per_node")}
    return out, origin
