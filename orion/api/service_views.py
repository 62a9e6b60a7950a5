"""How services look over HTTP: camelCase JSON, durations as strings, the spec as its PUT body.

Pure functions from replicated records to plain dicts, like ``views.py`` for
tasks. :func:`spec_body` writes a spec back in the very form ``PUT
/services/<name>`` takes (``orion/api/schema/services.py`` parses it), so a
client can GET a service, change a field and PUT it back, and ``orion service
apply`` can compare a file with what runs using ``orion.domain.spec_diff.spec_diff``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from orion.api.schema import responses as r
from orion.api.schema.container import container_body
from orion.api.schema.fields import duration_text
from orion.api.secret_views import env_view, file_fields
from orion.api.views import cores
from orion.control import periodic
from orion.domain.job import JobRun
from orion.domain.model import DESIRED_RUN, RUNNING, TERMINAL_STATES, Task
from orion.domain.service import GLOBAL, HEALTHY, JOB, REPLICATED, Deployment, HealthCheck, ServiceSpec
from orion.state.jobs import JobRecord
from orion.state.service_records import ServiceRecord, VersionRecord


def check_body(check: HealthCheck) -> dict[str, Any]:
    body: dict[str, Any] = {"http": check.path} if check.kind == "http" else (
        {"tcp": True} if check.kind == "tcp" else {"exec": list(check.argv)})
    if check.port:
        body["port"] = check.port
    body.update(interval=duration_text(check.interval), timeout=duration_text(check.timeout),
                startPeriod=duration_text(check.start_period), failures=check.failures)
    return body


def spec_body(spec: ServiceSpec) -> dict[str, Any]:
    """``spec`` as a ``PUT /services/<name>`` body (every field spelled out)."""
    task = spec.task
    body: dict[str, Any] = {"image": task.image, "memory": task.memory}
    if task.cpu_millis:
        body["cpu"] = cores(task.cpu_millis)
    if task.command is not None:
        body["command"] = list(task.command)
    body.update(env=env_view(task), portBindings={p.key: str(p.host_port or "") for p in task.ports},
                nodeSelectors=dict(task.node_selectors), restartPolicy=task.restart_policy,
                pullPolicy=task.pull_policy, mode=spec.mode)
    if spec.mode == REPLICATED:
        body["count"] = spec.count
    if task.constraints:
        body["constraints"] = [str(c) for c in task.constraints]
    if task.spread:
        body["spread"] = task.spread
    if task.max_per_node:
        body["maxPerNode"] = task.max_per_node
    body.update(container_body(task.container))
    if spec.health_check is not None:
        body["healthCheck"] = check_body(spec.health_check)
    u = spec.update
    if spec.mode != JOB:
        body["update"] = {"maxParallel": u.max_parallel, "minHealthyTime": duration_text(u.min_healthy_time),
                          "healthyDeadline": duration_text(u.healthy_deadline), "autoRevert": u.auto_revert,
                          "order": u.order, "rebalance": u.rebalance}
    if spec.job is not None:
        j = spec.job
        body["job"] = {"completions": j.completions, "parallelism": j.parallelism, "retries": j.retries,
                       "backoff": duration_text(j.backoff), "overlap": j.overlap,
                       **({"deadline": duration_text(j.deadline)} if j.deadline else {}),
                       **({"schedule": j.schedule} if j.schedule else {}), **({"zone": j.zone} if j.zone else {})}
    if spec.volumes:
        body["volumes"] = [{"source": v.source, "target": v.target, "readOnly": v.read_only, "type": v.type}
                           for v in spec.volumes]
    body.update(endpointMode=spec.endpoint_mode, publish=publish_body(spec), overlay=spec.overlay)
    if spec.stack:  # only when set, so a service outside any stack reads as it always did
        body["stack"] = spec.stack
    body.update(file_fields(task, pinned=False))  # the versions read are the replicas' to show
    return body


def publish_body(spec: ServiceSpec) -> list[dict[str, Any]]:
    return [{"published": p.published, "target": p.target, "protocol": p.protocol} for p in spec.publish]


def deployment_view(dep: Deployment) -> r.Deployment:
    view: r.Deployment = {"id": dep.id, "seq": dep.seq, "version": dep.version, "state": dep.state,
                          "reason": dep.reason, "startedAt": dep.started_at, "revertTo": dep.revert_to,
                          "rollback": dep.rollback}
    if dep.kind:
        view["kind"] = dep.kind  # type: ignore[typeddict-item]
    return view


def run_view(run: JobRun) -> r.JobRun:
    return {"run": run.number, "version": run.version, "state": run.state, "reason": run.reason,  # type: ignore[typeddict-item]
            "startedAt": run.started_at, "finishedAt": run.finished_at or None, "slot": run.slot,
            "attempts": run.attempts, "succeeded": run.succeeded, "failed": run.failed}


def job_view(record: ServiceRecord, jobs: JobRecord | None, now: float) -> r.JobSummary:
    """A job's last run and next run time (computed here with this node's clock: a view, not a decision)."""
    policy = record.spec.job
    assert policy is not None
    runs = jobs.runs if jobs is not None else ()
    next_run = None
    if policy.schedule:
        next_run = periodic.next_run(policy, record.current.at, jobs.last_slot if jobs is not None else None, now)
    return {"completions": policy.completions, "schedule": policy.schedule,
            "lastRun": run_view(runs[-1]) if runs else None, "running": sum(r.running for r in runs),
            "nextRun": next_run}


def _current(replicas: Sequence[Task]) -> list[Task]:
    """The replicas that still matter: wanted, or wanted stopped but not yet stopped."""
    return [t for t in replicas if t.desired == DESIRED_RUN or t.state not in TERMINAL_STATES]


def service_view(record: ServiceRecord, replicas: Sequence[Task], detail: bool = False,
                 wanted: int | None = None, job: r.JobSummary | None = None, vip: str | None = None) -> r.Service:
    """A service with its replicas counted per state, its current deployment and how it is reached
    (``vip``: its virtual IP, the network registry's, None in dnsrr mode or before the network is set).
    ``detail`` adds the spec (as a PUT body), the slots' progress and the replicas. ``wanted``:
    a global service's eligible nodes; ``job``: a job's runs (``job_view``)."""
    spec, version = record.spec, record.current.version
    live = _current(replicas)
    count = spec.count
    if spec.mode == GLOBAL:
        count = wanted or 0
    elif spec.job is not None:
        count = spec.job.completions
    view: r.Service = {
        "name": record.name,
        "stack": spec.stack or None,
        "version": version,
        "image": spec.task.image,
        "mode": spec.mode,  # type: ignore[typeddict-item]
        "count": count,
        "tasks": dict(sorted(Counter(t.state for t in live).items())),
        # Replicas of the current version that run and pass their check: what serves it.
        "healthy": sum(t.version == version and t.state == RUNNING and t.health == HEALTHY for t in live),
        "deployment": deployment_view(record.deployment),
        "stableVersion": record.stable.version if record.stable else None,
        "endpointMode": spec.endpoint_mode,
        "vip": vip,
        "publish": publish_body(spec),
    }
    if job is not None:
        view["job"] = job
    if detail:
        view["deployment"]["progress"] = [{"slot": p.slot, "phase": p.phase, "replica": p.replica, "old": list(p.old),
                                           **({"node": p.node} if p.node else {})} for p in record.progress]
        view["spec"] = spec_body(spec)
        view["replicas"] = [{"id": t.id, "slot": t.slot, "version": t.version, "state": t.state,
                             "desired": t.desired, "nodeId": t.node_id, "health": t.health or "starting",
                             "healthOutput": t.health_output, "ip": t.ip, **({"node": t.pin} if t.pin else {})}
                            for t in sorted(live, key=lambda t: (t.pin, t.slot, t.id))]
    return view


def version_view(v: VersionRecord) -> r.ServiceVersion:
    return {"version": v.version, "at": v.at, "copyOf": v.copy_of, "image": v.spec.task.image,
            "deployment": deployment_view(v.deployment), "spec": spec_body(v.spec)}
