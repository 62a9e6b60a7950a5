"""PUT /services/<name> bodies: what is accepted, what is refused, and what the refusal says."""

from __future__ import annotations

from typing import Any

import pytest

from orion.api.schema.fields import parse_duration, refuse_as
from orion.api.schema.problems import ValidationError
from orion.api.schema.services import parse_service_request, service_notes
from orion.domain.model import PortBinding
from orion.domain.service import HealthCheck, UpdatePolicy, Volume

MiB = 1 << 20


def body(**extra: Any) -> dict[str, Any]:
    return {"image": "nginx:1.25", "memory": "64M", **extra}


def refused(payload: Any, name: str = "web") -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_service_request(name, payload)
    assert info.value.status == 400
    return info.value


def test_a_minimal_service_takes_the_service_defaults():
    spec = parse_service_request("web", body())
    assert (spec.name, spec.count, spec.task.image, spec.task.memory) == ("web", 1, "nginx:1.25", 64 * MiB)
    assert spec.task.restart_policy == "always"
    assert (spec.health_check, spec.update, spec.volumes) == (None, UpdatePolicy(), ())


def test_a_full_service_maps_onto_the_spec():
    spec = parse_service_request("web", body(
        name="web", count=3, cpu=0.5, portBindings={"80/tcp": ""}, restartPolicy="on-failure",
        healthCheck={"http": "/healthz", "port": "80/tcp", "interval": "5s", "timeout": "500ms",
                     "startPeriod": "1m", "failures": 2},
        update={"maxParallel": 2, "minHealthyTime": "3s", "healthyDeadline": "2m", "autoRevert": True,
                "order": "stop-first"},
        volumes=[{"source": "pgdata", "target": "/var/lib/pg/", "type": "volume"},
                 {"source": "certs", "target": "/etc/certs", "readOnly": True}],
    ))
    assert spec.count == 3 and spec.task.ports == (PortBinding(80),) and spec.task.restart_policy == "on-failure"
    assert spec.health_check == HealthCheck("http", "80/tcp", "/healthz", (), 5.0, 0.5, 60.0, 2)
    assert spec.update == UpdatePolicy(2, 3.0, 120.0, True, "stop-first")
    assert spec.volumes == (Volume("certs", "/etc/certs", True, "host"),
                            Volume("pgdata", "/var/lib/pg", False, "volume"))


def test_tcp_and_exec_checks():
    tcp = parse_service_request("db", body(healthCheck={"tcp": True, "port": 5432})).health_check
    assert (tcp.kind, tcp.port) == ("tcp", "5432/tcp")
    ex = parse_service_request("db", body(healthCheck={"exec": "pg_isready -q"})).health_check
    assert (ex.kind, ex.argv, ex.port) == ("exec", ("pg_isready", "-q"), "")


@pytest.mark.parametrize("text,seconds", [("2s", 2.0), ("500ms", 0.5), ("1m", 60.0), ("1m30s", 90.0),
                                          ("1.5h", 5400.0), ("0s", 0.0)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("value", [10, 1.5, "10", "10 s", "s", "", "1d", "-1s", "1s2", None])
def test_a_duration_needs_a_unit(value):
    with pytest.raises(ValidationError) as info:
        refuse_as("update.minHealthyTime", parse_duration, value)
    assert info.value.field == "update.minHealthyTime" and "10s" in info.value.message


@pytest.mark.parametrize("payload,field,words", [
    (body(replicas=3), "replicas", "did you mean 'count'"),
    (body(healthcheck={}), "healthcheck", "did you mean 'healthCheck'"),
    (body(update={"max_parallel": 2}), "update.max_parallel", "did you mean 'maxParallel'"),
    (body(update={"minHealthyTme": "1s"}), "update.minHealthyTme", "did you mean 'minHealthyTime'"),
    (body(healthCheck={"tcp": True, "port": "80", "retries": 3}), "healthCheck.retries", "'failures'"),
    (body(volumes=[{"source": "d", "target": "/d"}]), "volumes[0].source", "at least two"),
    (body(volumes=[{"source": "data", "target": "/d", "read_only": True}]), "volumes[0].read_only",
     "'readOnly'"),
])
def test_typos_name_the_field_and_the_likely_intent(payload, field, words):
    err = refused(payload)
    assert err.field == field and words in err.message and err.to_dict()["field"] == field


@pytest.mark.parametrize("source", ["/srv/data", "./data", "~/data", "data/sub", "/"])
def test_a_raw_host_path_is_refused(source):
    err = refused(body(volumes=[{"source": source, "target": "/data"}]))
    assert err.field == "volumes[0].source" and "host path" in err.message and "type \"volume\"" in err.message


@pytest.mark.parametrize("target", ["data", "/", "/a/../etc", 3])
def test_a_volume_target_is_an_absolute_container_path(target):
    assert refused(body(volumes=[{"source": "data", "target": target}])).field == "volumes[0].target"


def test_two_volumes_on_one_target_are_refused():
    err = refused(body(volumes=[{"source": "aa", "target": "/d"}, {"source": "bb", "target": "/d/"}]))
    assert err.field == "volumes[1].target" and "volumes[0]" in err.message


@pytest.mark.parametrize("check,field", [
    ({"port": "80/tcp"}, "healthCheck"),
    ({"http": "/", "tcp": True, "port": "80/tcp"}, "healthCheck"),
    ({"http": "healthz", "port": "80/tcp"}, "healthCheck.http"),
    ({"http": "/"}, "healthCheck.port"),
    ({"tcp": "yes", "port": "80"}, "healthCheck.tcp"),
    ({"tcp": True, "port": "53/udp"}, "healthCheck.port"),
    ({"exec": ["ok"], "port": "80"}, "healthCheck.port"),
    ({"exec": []}, "healthCheck.exec"),
    ({"exec": ["ok", 3]}, "healthCheck.exec[1]"),
    ({"tcp": True, "port": "80", "interval": "100ms"}, "healthCheck.interval"),
    ({"tcp": True, "port": "80", "interval": "2s", "timeout": "3s"}, "healthCheck.timeout"),
    ({"tcp": True, "port": "80", "failures": 0}, "healthCheck.failures"),
])
def test_bad_health_checks_name_the_field(check, field):
    assert refused(body(healthCheck=check)).field == field


@pytest.mark.parametrize("update,field", [
    ({"maxParallel": 0}, "update.maxParallel"),
    ({"maxParallel": True}, "update.maxParallel"),
    ({"order": "rolling"}, "update.order"),
    ({"autoRevert": "yes"}, "update.autoRevert"),
    ({"minHealthyTime": "10s", "healthyDeadline": "5s"}, "update.healthyDeadline"),
    ("fast", "update"),
])
def test_bad_update_blocks_name_the_field(update, field):
    assert refused(body(update=update)).field == field


def test_task_fields_are_refused_as_for_a_task():
    assert refused(body(memory="1M")).field == "memory"
    assert refused({"memory": "64M"}).field == "image"
    assert refused(body(count=0)).field == "count"


def test_the_name_comes_from_the_url():
    assert refused(body(name="api")).field == "name"
    assert refused(body(), name="-bad").field == "name"
    assert refused([]).field is None


def test_start_first_with_a_static_port_is_accepted_with_a_note():
    spec = parse_service_request("web", body(portBindings={"80/tcp": "8080"}))
    assert spec.update.order == "start-first"
    (note,) = service_notes(spec)
    assert "8080/tcp" in note and "stop-first" in note
    assert service_notes(parse_service_request("web", body(portBindings={"80/tcp": ""}))) == ()
