"""A service's modes, jobs and placement rules in a PUT /services/<name> body: what each mode takes,
what is refused (400 naming the field), and that a spec shown as its PUT body reads back the same."""

from __future__ import annotations

from typing import Any

import pytest

from orion.api.schema.problems import ValidationError
from orion.api.schema.services import parse_service_request
from orion.api.service_views import spec_body
from orion.domain.job import JobPolicy
from orion.domain.service import GLOBAL, JOB


def body(**extra: Any) -> dict[str, Any]:
    return {"image": "app:1", "memory": "64M", **extra}


def refused(payload: Any) -> tuple[str, str]:
    with pytest.raises(ValidationError) as info:
        parse_service_request("svc", payload)
    assert info.value.status == 400
    return info.value.field, str(info.value)


def test_a_global_service_a_job_and_a_cron_job_map_onto_the_spec():
    agent = parse_service_request("agent", body(mode="global", constraints=["node.labels.zone != a"]))
    assert (agent.mode, agent.count, [str(c) for c in agent.task.constraints]) == \
        (GLOBAL, 0, ["node.labels.zone != a"])
    batch = parse_service_request("batch", body(mode="job", job={"completions": 5, "parallelism": 2,
                                                                 "retries": 1, "backoff": "2s", "deadline": "1h"}))
    assert batch.mode == JOB and batch.job == JobPolicy(5, 2, 1, 2.0, 3600.0)
    assert batch.task.restart_policy == "never"  # the job retries attempts itself
    nightly = parse_service_request("nightly", body(mode="job", job={"schedule": "0 3 * * *", "zone": "Europe/Paris",
                                                                     "overlap": "replace"}))
    assert nightly.scheduled and (nightly.job.zone, nightly.job.overlap) == ("Europe/Paris", "replace")
    web = parse_service_request("web", body(count=4, spread="node.labels.zone", maxPerNode=2,
                                            update={"rebalance": True}))
    assert (web.task.spread, web.task.max_per_node, web.update.rebalance) == ("zone", 2, True)


@pytest.mark.parametrize("spec", [
    body(mode="global", constraints=["node.labels.zone exists", "engine.version >= 20.10"]),
    body(mode="job", job={"completions": 3, "parallelism": 2, "deadline": "10m"}),
    body(mode="job", job={"schedule": "*/10 * * * * *", "zone": "UTC", "overlap": "allow"}, spread="rack"),
    body(count=3, spread="zone", maxPerNode=1, update={"rebalance": True, "order": "stop-first"}),
])
def test_a_spec_shown_as_its_put_body_reads_back_the_same(spec):
    declared = parse_service_request("svc", spec)
    assert parse_service_request("svc", spec_body(declared)) == declared


@pytest.mark.parametrize("payload, field, words", [
    (body(mode="daemon"), "mode", "'daemon' is not one of replicated, global, job"),
    (body(mode="global", count=3), "count", "runs one replica on every eligible node"),
    (body(mode="job", count=3), "count", "set job.completions"),
    (body(job={"completions": 2}), "job", 'is for "mode": "job"'),
    (body(mode="global", spread="zone"), "spread", "one replica per eligible node already"),
    (body(mode="global", maxPerNode=1), "maxPerNode", "one replica per eligible node already"),
    (body(mode="job", healthCheck={"tcp": True, "port": "80/tcp"}), "healthCheck", "judged by their exit code"),
    (body(mode="job", update={"maxParallel": 2}), "update", "no rolling update"),
    (body(mode="job", restartPolicy="always"), "restartPolicy", "retries failed attempts itself"),
    (body(mode="global", update={"rebalance": True}), "update.rebalance", "only a replicated service rebalances"),
    (body(mode="job", job={"completions": 0}), "job.completions", "must be an integer from 1"),
    (body(mode="job", job={"schedule": "0 3 * *"}), "job.schedule", "has 4 fields"),
    (body(mode="job", job={"schedule": "0 25 * * *"}), "job.schedule", "hour: '25' is outside 0-23"),
    (body(mode="job", job={"schedule": "@daily", "zone": "Mars/Base"}), "job.zone", "unknown time zone"),
    (body(mode="job", job={"zone": "UTC"}), "job.zone", "a job without a schedule has none"),
    (body(mode="job", job={"overlap": "queue"}), "job.overlap", "'queue' is not one of forbid, allow, replace"),
    (body(mode="job", job={"deadline": 30}), "job.deadline", ""),
    (body(mode="job", job={"backoffLimit": 3}), "job.backoffLimit", "did you mean 'retries'"),
    (body(constraints=["zone == a"]), "constraints[0]", "unknown attribute 'zone'"),
    (body(constraints="node.labels.zone == a"), "constraints", "must be a list of constraints"),
    (body(constraints=[3]), "constraints[0]", "must be a string"),
    (body(spread="a b"), "spread", "is not a node label"),
    (body(maxPerNode=0), "maxPerNode", "must be an integer from 1 to 1000"),
    (body(max_replicas_per_node=2), "max_replicas_per_node", "did you mean 'maxPerNode'"),
])
def test_each_bad_value_is_refused_naming_its_field(payload, field, words):
    got_field, message = refused(payload)
    assert got_field == field and words in message, (got_field, message)
