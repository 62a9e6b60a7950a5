"""POST /tasks bodies: what is accepted, what is refused, and what the refusal says."""

from __future__ import annotations

from typing import Any

import pytest

from orion.api.schema.fields import MIN_MEMORY, parse_memory
from orion.api.schema.problems import ValidationError
from orion.api.schema.tasks import parse_task_request
from orion.domain.model import PortBinding, TaskSpec, Volume

SEED_BODY = {"image": "nginx", "memory": 100000000, "portBindings": {"80/tcp": "8080"}}
MiB = 1024 * 1024


def body(**extra: Any) -> dict[str, Any]:
    return {"image": "nginx", "memory": 64 * MiB, **extra}


def refused(payload: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_task_request(payload)
    return info.value


def test_the_seed_body_works_as_is() -> None:
    spec = parse_task_request(SEED_BODY)
    assert spec == TaskSpec(image="nginx", memory=100000000, ports=(PortBinding(80, "tcp", 8080),))


def test_a_full_body_maps_onto_the_spec() -> None:
    spec = parse_task_request(body(
        name="web-1", cpu=0.5, command="sh -c 'echo hi'", env={"B": "2", "A": "1"},
        portBindings={"80/tcp": "", "53/udp": 5353, "443": "8443"}, nodeSelectors={"zone": "a"},
        restartPolicy="on-failure", pullPolicy="never", count=3,
    ))
    assert spec.name == "web-1"
    assert spec.cpu_millis == 500
    assert spec.command == ("sh", "-c", "echo hi")
    assert spec.env == (("A", "1"), ("B", "2"))
    assert spec.ports == (
        PortBinding(53, "udp", 5353), PortBinding(80, "tcp", None), PortBinding(443, "tcp", 8443)
    )
    assert spec.node_selectors == (("zone", "a"),)
    assert (spec.restart_policy, spec.pull_policy, spec.count) == ("on-failure", "never", 3)


def test_defaults_when_optional_fields_are_absent() -> None:
    spec = parse_task_request(body())
    assert (spec.cpu_millis, spec.name, spec.command, spec.env, spec.ports) == (0, "", None, (), ())
    assert (spec.restart_policy, spec.pull_policy, spec.count) == ("never", "if-not-present", 1)


@pytest.mark.parametrize("payload", [None, [], "nginx", 3, True])
def test_the_body_must_be_an_object(payload: Any) -> None:
    err = refused(payload)
    assert err.field is None and err.status == 400
    assert "JSON object" in err.message


@pytest.mark.parametrize("missing", ["image", "memory"])
def test_image_and_memory_are_required(missing: str) -> None:
    payload = body()
    del payload[missing]
    err = refused(payload)
    assert (err.field, err.message) == (missing, "is required")


def test_unknown_fields_are_named_with_a_suggestion() -> None:
    err = refused(body(ports={"80/tcp": "8080"}))
    assert err.field == "ports"
    assert "portBindings" in err.message
    err = refused(body(imagePullPolicy="always"))
    assert err.field == "imagePullPolicy"


# -- image ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("image", [
    "nginx", "nginx:1.25", "library/nginx:latest", "orion/busybox:latest", "docker.io/library/nginx",
    "localhost:5000/team/app:v1.2-rc_3", "registry.example.com:443/a/b/c", "my_app__x", "a-b.c",
    "nginx@sha256:" + "a" * 64, "nginx:1.25@sha256:" + "0123456789abcdef" * 4, "LOCALHOST:5000/x",
])
def test_valid_image_references(image: str) -> None:
    assert parse_task_request(body(image=image)).image == image


@pytest.mark.parametrize(("image", "words"), [
    ("", "non-empty"),
    (42, "non-empty string"),
    ("Nginx", "lowercase"),
    ("docker.io/Library/nginx", "lowercase"),
    ("nginx:", "tag"),
    ("nginx:-bad", "tag"),
    ("nginx:" + "t" * 129, "tag"),
    ("nginx@sha256:abc", "digest"),
    ("nginx@md5:" + "a" * 64, "digest"),
    ("-nginx", "path component"),
    ("ng inx", "path component"),
    ("a//b", "path component"),
    ("bad_host-.com:5000/x", "registry"),
    ("a" * 256, "at most 255"),
])
def test_invalid_image_references(image: Any, words: str) -> None:
    err = refused(body(image=image))
    assert err.field == "image"
    assert words in err.message


# -- memory --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("given", "expected"), [
    (100000000, 100000000), ("100M", 100 * MiB), ("100m", 100 * MiB), ("100Mi", 100 * MiB),
    ("1G", 1024 * MiB), ("1Gi", 1024 * MiB), ("1.5G", 1536 * MiB), ("7000k", 7000 * 1024),
    ("6M", MIN_MEMORY), (MIN_MEMORY, MIN_MEMORY), ("104857600", 100 * MiB), ("100MB", 100 * MiB),
])
def test_memory_accepts_bytes_and_units(given: Any, expected: int) -> None:
    assert parse_memory(given) == expected


def test_memory_below_the_engine_minimum_says_how_much_to_ask() -> None:
    err = refused(body(memory=1000))
    assert err.field == "memory"
    assert str(err) == "memory: 1000 bytes is below the engine's minimum of 6 MiB; ask for at least 6M"
    assert refused(body(memory=MIN_MEMORY - 1)).field == "memory"
    assert refused(body(memory="5M")).field == "memory"


@pytest.mark.parametrize("memory", ["lots", "100X", "M", "-5M", 1.5e8, True, None, [], {"m": 1}, 1 << 63])
def test_memory_that_is_not_a_size_is_refused(memory: Any) -> None:
    assert refused(body(memory=memory)).field == "memory"


def test_memory_beyond_every_node_is_still_a_valid_request() -> None:
    assert parse_task_request(body(memory="100Ti")).memory == 100 * 1024**4


# -- cpu -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("cpu", "millis"), [(0.5, 500), (2, 2000), ("0.25", 250), ("500m", 500), (0.001, 1)])
def test_cpu_is_cores_stored_as_millicores(cpu: Any, millis: int) -> None:
    assert parse_task_request(body(cpu=cpu)).cpu_millis == millis


@pytest.mark.parametrize("cpu", [0, -1, 0.0001, "zero", float("inf"), float("nan"), True, [1]])
def test_cpu_must_be_a_positive_number(cpu: Any) -> None:
    assert refused(body(cpu=cpu)).field == "cpu"


# -- name, command, env, selectors ---------------------------------------------------------------
@pytest.mark.parametrize("name", ["-web", "web app", "a" * 64, 7, "web/1"])
def test_invalid_names(name: Any) -> None:
    assert refused(body(name=name)).field == "name"


def test_command_as_list_or_shell_words() -> None:
    assert parse_task_request(body(command=["echo", "a b"])).command == ("echo", "a b")
    assert parse_task_request(body(command="echo 'a b'")).command == ("echo", "a b")


@pytest.mark.parametrize(("command", "field"), [
    ([], "command"), ("", "command"), ("echo 'open", "command"), (["echo", 3], "command[1]"), (7, "command"),
])
def test_invalid_commands(command: Any, field: str) -> None:
    assert refused(body(command=command)).field == field


def test_env_values_must_be_strings_and_the_key_is_named() -> None:
    err = refused(body(env={"OK": "1", "PORT": 8080}))
    assert err.field == "env.PORT"
    assert "string" in err.message
    assert refused(body(env={"A=B": "x"})).field == "env.A=B"
    assert refused(body(env=["A=1"])).field == "env"


def test_node_selectors_are_string_pairs() -> None:
    assert refused(body(nodeSelectors={"zone": 1})).field == "nodeSelectors.zone"
    assert refused(body(nodeSelectors="zone=a")).field == "nodeSelectors"


# -- ports ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("bindings", "field", "words"), [
    ({"80/sctp": "8080"}, "portBindings.80/sctp", "tcp or udp"),
    ({"0/tcp": "8080"}, "portBindings.0/tcp", "1-65535"),
    ({"http/tcp": "8080"}, "portBindings.http/tcp", "container port"),
    ({"80/tcp": "65536"}, "portBindings.80/tcp", "1-65535"),
    ({"80/tcp": -1}, "portBindings.80/tcp", "1-65535"),
    ({"80/tcp": "eighty"}, "portBindings.80/tcp", "host port"),
    ({"80/tcp": ["8080"]}, "portBindings.80/tcp", "string or integer"),
    ({"80/tcp": "8080", "81/tcp": 8080}, "portBindings.81/tcp", "already bound"),
    ({"80": "8080", "80/tcp": "9090"}, "portBindings.80/tcp", "same container port"),
    (["80:8080"], "portBindings", "object"),
])
def test_invalid_port_bindings(bindings: Any, field: str, words: str) -> None:
    err = refused(body(portBindings=bindings))
    assert err.field == field
    assert words in err.message


def test_the_same_host_port_may_serve_tcp_and_udp() -> None:
    spec = parse_task_request(body(portBindings={"53/tcp": "5353", "53/udp": "5353"}))
    assert spec.static_host_ports == frozenset({(5353, "tcp"), (5353, "udp")})


# -- policies and count ----------------------------------------------------------------------------
@pytest.mark.parametrize(("field", "value"), [
    ("restartPolicy", "sometimes"), ("pullPolicy", "IfNotPresent"), ("count", 0), ("count", 1001),
    ("count", "3"), ("count", True), ("count", 2.0),
])
def test_enums_and_count_ranges(field: str, value: Any) -> None:
    err = refused(body(**{field: value}))
    assert err.field == field
    assert err.status == 400


# -- volumes (the same model as a service's, orion/api/schema/services.py) ------------------

def test_a_task_mounts_host_and_docker_volumes_by_name() -> None:
    spec = parse_task_request(body(volumes=[{"name": "data", "target": "/data/", "readOnly": True},
                                            {"source": "cache", "target": "/cache", "type": "volume"}]))
    assert spec.volumes == (Volume("data", "/data", True, "host"), Volume("cache", "/cache", False, "volume"))
    assert spec.host_volumes == {"data"}


@pytest.mark.parametrize("mount,field", [
    ({"source": "/etc", "target": "/etc"}, "volumes[0].source"),
    ({"name": "srv/data", "target": "/data"}, "volumes[0].name"),
    ({"source": "../data", "target": "/data"}, "volumes[0].source"),
    ({"source": "~/data", "target": "/data", "type": "volume"}, "volumes[0].source"),
])
def test_a_raw_host_path_is_refused_naming_the_field(mount: dict[str, Any], field: str) -> None:
    err = refused(body(volumes=[mount]))
    assert err.field == field and "host path" in err.message and err.status == 400


@pytest.mark.parametrize("mounts,field,words", [
    ([{"target": "/data"}], "volumes[0].source", "required"),
    ([{"source": "data"}], "volumes[0].target", "required"),
    ([{"source": "data", "name": "data", "target": "/d"}], "volumes[0].name", "one of them"),
    ([{"source": "data", "target": "/d", "readonly": True}], "volumes[0].readonly", "'readOnly'"),
    ([{"source": "data", "target": "/d", "readOnly": "yes"}], "volumes[0].readOnly", "true or false"),
    ([{"source": "data", "target": "relative"}], "volumes[0].target", "absolute"),
    ([{"source": "data", "target": "/d", "type": "bind"}], "volumes[0].type", "host, volume"),
    ([{"source": "aa", "target": "/d"}, {"source": "bb", "target": "/d"}], "volumes[1].target", "volumes[0]"),
    ({"source": "data"}, "volumes", "a list"),
    (["data"], "volumes[0]", "an object"),
])
def test_bad_mounts_name_the_field(mounts: Any, field: str, words: str) -> None:
    err = refused(body(volumes=mounts))
    assert err.field == field and words in err.message


@pytest.mark.parametrize(("bindings", "field"), [
    ({"²/tcp": "8080"}, "portBindings.²/tcp"), ({"80/tcp": "²"}, "portBindings.80/tcp"),
    ({"٨٠": ""}, "portBindings.٨٠"),
])
def test_ports_in_non_ascii_digits_are_refused_not_a_crash(bindings: Any, field: str) -> None:
    """str.isdigit() accepts '²'; int() refuses it: the old parser answered 500."""
    assert refused(body(portBindings=bindings)).field == field


def test_a_tag_is_ascii_as_docker_reads_it() -> None:
    """Python's \\w takes 'é'; docker's reference grammar does not, so the pull would fail on every node."""
    assert refused(body(image="nginx:é")).field == "image"
