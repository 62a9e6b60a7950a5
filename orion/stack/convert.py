"""A compose file (interpolated, valid against the schema) as the services of one Orion stack.

:func:`convert` is pure: values in (the document, the stack's name, the
variables, the ``env_file`` contents the loader read), a :class:`Conversion`
out — each service's ``PUT /services`` body and the spec Orion's own parser
makes of it, and every finding at its key path. A service ``web`` of stack
``app`` is the service ``app_web`` carrying ``stack: app`` (Swarm's naming).

What maps is in ``deploy_block.py`` (deploy, restart, resources, healthcheck),
``workload.py`` (the mode, a job's block, placement), ``container.py`` (the
container settings) and ``mounts.py`` (ports, volumes); here the rest: ``image``, ``command``,
``environment`` (list and map forms, a bare key from the variables as Compose
does), ``env_file``, ``pull_policy``, ``profiles`` (a service with profiles is
left out unless one is asked for, as Compose does), ``networks`` (the default
one only: Orion runs one network), ``expose`` (nothing to do: every port is
reachable on Orion's network); ``secrets`` and ``configs``, top level and service
level, in ``objects.py``. Every other key of a service, and every top-level
network, model or include, is listed with the reason. A top-level
job (``jobs``) is converted like a service, as an Orion job (``workload.py``).

Orion's parser has the last word: a value it refuses (a 500ms check interval,
an image reference Docker would not pull) is an :class:`Invalid` at the key
it came from, in Orion's words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orion.api.schema.problems import ValidationError
from orion.api.schema.services import parse_service_request
from orion.domain.model import MAX_SCALE
from orion.domain.service import JOB, REPLICATED, ServiceSpec
from orion.stack import deploy_block as d
from orion.stack import workload as w
from orion.stack.container import FIELDS, container_fields
from orion.stack.findings import Findings, Invalid, Unsupported, key_path
from orion.stack.mounts import check_declarations, mounts, port_bindings
from orion.stack.objects import StackObject, declared, file_requests

# Keys of a service (or a top-level job) read by this module or the ones beside it.
HANDLED = frozenset({"image", "command", "environment", "env_file", "ports", "volumes", "healthcheck", "deploy",
                     "restart", "mem_limit", "mem_reservation", "cpus", "pull_policy", "networks", "scale",
                     "profiles", "expose", "build", "triggers", "secrets", "configs", *FIELDS})
_CONTAINER_SETTING = "a container setting Orion does not pass to the engine"
REASONS = {
    "depends_on": "Orion starts every service at once; each waits for what it needs itself (as in Swarm)",
    "container_name": "Orion names each replica's container itself",
    "links": "Orion runs one network: services reach each other by name (<stack>_<service>.service.orion)",
    "external_links": "Orion runs one network: services reach each other by name",
    "extends": "Orion reads one file as it is: write the service out",
    "network_mode": "Orion's replicas join its network",
    "stdin_open": "Orion runs services detached", "tty": "Orion runs services detached",
    "develop": "a development setting of docker compose", "attach": "a setting of docker compose's output",
    "gpus": "Orion places memory and cpu only",
    "security_opt": "Orion runs containers with the engine's default seccomp and AppArmor profiles",
    "platform": "Orion pulls the image for each node's own platform (constraints on node.platform.arch place it)",
}
_PULL = {"always": "always", "never": "never", "missing": "if-not-present", "if_not_present": "if-not-present"}
_TOP_LEVEL = {
    "networks": "Orion runs one network for the cluster (every service reaches every other); it is not created",
    "models": "Orion runs no models",
    "include": "Orion reads one file: merge the included ones into it",
}
_JOB_ONLY = {"healthcheck": "a job's attempts are judged by their exit code: there is no health check",
             "update_config": "a job's new version runs as a new run: there is no rolling update",
             "rollback_config": "a job's new version runs as a new run: there is no rolling update"}


@dataclass(frozen=True)
class Conversion:
    """What a compose file declares for stack ``stack``: bodies and specs by Orion service name, in
    the file's order (services with invalid values or left out have neither)."""

    stack: str
    bodies: dict[str, dict[str, Any]] = field(default_factory=dict)
    specs: dict[str, ServiceSpec] = field(default_factory=dict)
    invalid: tuple[Invalid, ...] = ()
    unsupported: tuple[Unsupported, ...] = ()
    notes: tuple[str, ...] = ()
    left_out: tuple[str, ...] = ()  # compose service names not deployed (skipping keys, profiles)
    objects: tuple[StackObject, ...] = ()  # the secrets and configs it declares, created before the services


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e16 else str(value)
    return str(value)


def environment(svc: Mapping[str, Any], prefix: str, variables: Mapping[str, str],
                env_files: Mapping[str, Mapping[str, str] | None], findings: Findings) -> dict[str, str]:
    """``env_file`` contents, then ``environment`` over them (Compose's precedence)."""
    env: dict[str, str] = {}
    files = svc.get("env_file")
    for i, item in enumerate([files] if isinstance(files, str) else files or ()):
        path, required = (item, True) if isinstance(item, str) else (item.get("path"), item.get("required", True))
        content = env_files.get(path)
        if content is None:
            if required not in (False, "false"):
                findings.bad(key_path(prefix, "env_file", i) if not isinstance(files, str)
                             else key_path(prefix, "env_file"), f"{path}: no such file beside the compose file")
            continue
        env.update(content)
    given = svc.get("environment") or {}
    pairs = (given.items() if isinstance(given, dict)
             else ((k, v if sep else None) for k, sep, v in (str(e).partition("=") for e in given)))
    for key, value in pairs:
        if value is not None:
            env[key] = _env_value(value)
        elif key in variables:  # a bare key takes the value Compose would: from the variables
            env[key] = variables[key]
    return env


def _networks(svc: Mapping[str, Any], prefix: str, findings: Findings) -> None:
    nets = svc.get("networks")
    names = list(nets) if nets else []
    attached = [n for n in names if n != "default" or (isinstance(nets, dict) and nets[n])]
    if attached:
        findings.cannot(key_path(prefix, "networks"), f"{', '.join(attached)}: Orion runs one network for the "
                        "cluster; every service reaches every other by <stack>_<service>.service.orion")


def _listed(svc: Mapping[str, Any], prefix: str, findings: Findings) -> None:
    for key in svc:
        if key.startswith("x-") or key in HANDLED:
            continue
        findings.cannot(key_path(prefix, key), REASONS.get(key, _CONTAINER_SETTING))
    if "build" in svc:
        reason = "Orion runs images: build and push it first (docker compose build)"
        findings.cannot(key_path(prefix, "build"), reason + ("" if svc.get("image") else "; there is no image"),
                        skips=not svc.get("image"))
    policy = svc.get("pull_policy")
    if policy is not None and policy not in _PULL:
        findings.cannot(key_path(prefix, "pull_policy"), f"{policy}: Orion pulls always, never, or if missing")


def _job_only(svc: Mapping[str, Any], prefix: str, findings: Findings) -> None:
    """What a job (a replicated-job service) has no use for, listed."""
    for key, reason in _JOB_ONLY.items():
        block = svc if key == "healthcheck" else svc.get("deploy") or {}
        if block.get(key):
            findings.cannot(key_path(prefix, key) if key == "healthcheck" else key_path(prefix, "deploy", key),
                            reason)


def service_body(prefix: str, svc: Mapping[str, Any], stack: str, document: Mapping[str, Any],
                 variables: Mapping[str, str], env_files: Mapping[str, Mapping[str, str] | None],
                 default_memory: str | None, findings: Findings,
                 objects: Mapping[tuple[str, str], StackObject] | None = None,
                 ) -> tuple[dict[str, Any], dict[str, str]] | None:
    """Orion's body for the compose service (or top-level job) at ``prefix`` (``services.web``,
    ``jobs.backup``), and where each of its fields came from (key paths); None when it cannot run
    as written (recorded)."""
    top_level_job = prefix.startswith("jobs.")
    name = prefix.split(".", 1)[1]
    _listed(svc, prefix, findings)
    _networks(svc, prefix, findings)
    d.deploy_keys(svc, prefix, findings)
    mode = JOB if top_level_job else w.mode(svc, prefix, findings)
    count = d.replicas(svc, prefix, findings)
    if mode is None:
        return None
    origin = {"name": prefix, "image": key_path(prefix, "image"), "command": key_path(prefix, "command"),
              "env": key_path(prefix, "environment"), "portBindings": key_path(prefix, "ports"),
              "volumes": key_path(prefix, "volumes"), "healthCheck": key_path(prefix, "healthcheck"),
              "update": key_path(prefix, "deploy", "update_config"), "count": key_path(prefix, "deploy", "replicas"),
              "cpu": key_path(prefix, "deploy", "resources"), "restartPolicy": key_path(prefix, "deploy"),
              "pullPolicy": key_path(prefix, "pull_policy"), "mode": key_path(prefix, "deploy", "mode"),
              "secrets": key_path(prefix, "secrets"), "configs": key_path(prefix, "configs")}
    body: dict[str, Any] = {"name": f"{stack}_{name}", "stack": stack, "image": svc.get("image")}
    if mode != REPLICATED:
        body["mode"] = mode
    memory, cpu, origin["memory"] = d.resources(svc, prefix, findings)
    if memory is None and default_memory is not None:
        memory = default_memory
        findings.note(prefix, f"no memory limit in the file: --default-memory {default_memory}")
    elif memory is None:
        origin["memory"] = key_path(prefix, "mem_limit") if top_level_job else origin["memory"]
        findings.bad(origin["memory"], "Orion reserves and limits each replica's memory: set it here (or mem_limit), "
                     "or pass --default-memory SIZE")
    body["memory"] = memory
    if cpu is not None:
        body["cpu"] = cpu
    if svc.get("command") is not None:
        body["command"] = svc["command"]
    env = environment(svc, prefix, variables, env_files, findings)
    if env:
        body["env"] = env
    ports = port_bindings(svc.get("ports") or [], prefix, findings)
    if ports:
        body["portBindings"] = ports
    where, placed = w.placement(svc, prefix, findings)
    body.update(where)
    origin.update(placed)
    settings, origin_of_settings = container_fields(svc, prefix, findings)
    body.update(settings)
    origin.update(origin_of_settings)
    if svc.get("pull_policy") in _PULL:
        body["pullPolicy"] = _PULL[svc["pull_policy"]]
    volumes = mounts(svc.get("volumes") or [], prefix, document.get("volumes") or {}, stack, findings)
    if volumes:
        body["volumes"] = volumes
    body.update(file_requests(svc, prefix, objects or {}, findings))
    if mode == JOB:
        _job_only(svc, prefix, findings)
        block, origin_of_job = w.job(svc, prefix, count, top_level_job, findings)
        origin.update(origin_of_job)
        if block is None:
            return None
        body["job"] = block
        return body, origin
    if svc.get(w.JOB_KEY) is not None:
        findings.bad(key_path(prefix, w.JOB_KEY), "is for a job: deploy.mode replicated-job, or a top-level job")
    restart = d.restart_policy(svc, prefix, findings)
    if restart is not None:
        body["restartPolicy"] = restart
    if count is not None and mode == REPLICATED:
        body["count"] = count
    static = sorted(host for host in ports.values() if host)
    if static and mode == REPLICATED and (count or 1) > 1:
        findings.note(key_path(prefix, "ports"), f"host port {', '.join(static)} is bound on the node of each "
                      f"replica: {count} replicas need {count} nodes with it free")
    check = d.healthcheck(svc, prefix, findings)
    if check is not None:
        body["healthCheck"] = check
    # Swarm's update parallelism 0 is "all at once": every replica, or every node of a global service.
    update = d.update(svc, prefix, (count or 1) if mode == REPLICATED else MAX_SCALE, findings)
    if update is not None:
        body["update"] = update
    return body, origin


def _origin_of(field_name: str | None, origin: Mapping[str, str], prefix: str) -> str:
    """The key path a field of Orion's body came from: ``job.schedule`` by its own, else by its top."""
    parts = (field_name or "").split("[")[0].split(".")
    return origin.get(".".join(parts[:2])) or origin.get(parts[0], prefix)


def convert(document: Mapping[str, Any], stack: str, variables: Mapping[str, str] | None = None,
            env_files: Mapping[str, Mapping[str, str] | None] | None = None, default_memory: str | None = None,
            profiles: frozenset[str] = frozenset(), files: Mapping[str, bytes | None] | None = None) -> Conversion:
    """The services ``document`` declares for ``stack``, and everything worth saying about it."""
    findings = Findings()
    for key, reason in _TOP_LEVEL.items():
        for name in document.get(key) or ():
            findings.cannot(key_path(key, name), reason)
    check_declarations(document.get("volumes") or {}, findings)
    objects = declared(document, stack, variables or {}, files or {}, findings)
    bodies, specs, left_out = {}, {}, []
    services = document.get("services") or {}
    for name in document.get("jobs") or {}:
        if name in services:
            findings.bad(key_path("jobs", name), f"a job cannot share its name with service {name} (Compose's rule: "
                         "both are targets of docker compose run)")
    for prefix, svc in [*((key_path("services", n), s) for n, s in services.items()),
                        *((key_path("jobs", n), s) for n, s in (document.get("jobs") or {}).items())]:
        name = prefix.split(".", 1)[1]
        svc = svc or {}
        wanted = set(svc.get("profiles") or ())
        if wanted and not wanted & profiles:
            findings.note(prefix, f"left out: its profiles ({', '.join(sorted(wanted))}) are not asked for "
                          "(--profile)")
            left_out.append(name)
            continue
        before = len(findings.invalid)
        made = service_body(prefix, svc, stack, document, variables or {}, env_files or {}, default_memory, findings,
                            objects)
        if findings.skipped(prefix):  # what is wrong with a service left out does not matter
            del findings.invalid[before:]
            left_out.append(name)
            continue
        if made is None or len(findings.invalid) > before:
            continue
        body, origin = made
        try:
            specs[body["name"]] = parse_service_request(body["name"], body)
        except ValidationError as exc:  # the path names the field when it came from one key
            findings.bad(_origin_of(exc.field, origin, prefix), f"{exc.field}: {exc.message}" if exc.field
                         and exc.field not in origin else exc.message)
            continue
        bodies[body["name"]] = body
    return Conversion(stack, bodies, specs, tuple(findings.invalid), tuple(findings.unsupported),
                      tuple(dict.fromkeys(findings.notes)), tuple(left_out),
                      tuple(objects.values()))
