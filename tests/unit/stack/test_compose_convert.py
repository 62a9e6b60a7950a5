"""A compose file as Orion's services: what maps to what, and what is named as unsupported or wrong.

Each test reads a small compose text through the same path the CLI uses
(YAML 1.2, interpolation, the Compose Specification's schema, conversion,
Orion's own parser) and checks the specs Orion would declare, as values.
"""

from __future__ import annotations

import pytest

from orion.domain.resources import PortBinding, Volume
from orion.stack.convert import Conversion
from orion.stack.findings import Findings
from orion.stack.load import ComposeFile, read_document
from orion.stack.schema import compose_schema

MiB = 1 << 20


def read(text: str, stack: str = "app", variables: dict | None = None, **options) -> Conversion:
    findings = Findings()
    document = read_document(text, variables or {}, findings)
    return ComposeFile(None, document, variables or {}, findings=findings).convert(stack, **options)


def paths(conversion: Conversion) -> list[str]:
    return [u.path for u in conversion.unsupported]


def test_the_schema_is_the_compose_specifications_own():
    schema = compose_schema()
    assert schema["title"] == "Compose Specification" and "service" in schema["$defs"]
    assert schema["$schema"].startswith("https://json-schema.org/draft/2020-12")


def test_a_full_service_maps_every_supported_key():
    c = read("""
services:
  web:
    image: nginx:${TAG:-1.25}
    command: ["nginx", "-g", "daemon off;"]
    environment: [MODE=prod, "EMPTY="]
    ports: ["8080:80", "9000-9001:9000-9001/udp", {target: 443}]
    volumes: ["data:/data:ro", {type: volume, source: certs, target: /certs}]
    healthcheck: {test: "wget -qO- localhost", interval: 5s, timeout: 1s, retries: 2, start_period: 10s}
    deploy:
      replicas: "3"
      resources: {limits: {memory: 128M, cpus: "0.5"}}
      update_config: {parallelism: 2, monitor: 3s, order: start-first, failure_action: rollback}
      restart_policy: {condition: on-failure}
      placement: {constraints: ["node.labels.zone == a"]}
    pull_policy: always
volumes:
  data: {}
  certs: {external: true}
""")
    assert (c.invalid, c.unsupported) == ((), ())
    spec = c.specs["app_web"]
    task = spec.task
    assert (spec.name, spec.stack, spec.count, task.image) == ("app_web", "app", 3, "nginx:1.25")
    assert (task.memory, task.cpu_millis, task.command) == (128 * MiB, 500, ("nginx", "-g", "daemon off;"))
    assert dict(task.env) == {"MODE": "prod", "EMPTY": ""}
    assert set(task.ports) == {PortBinding(80, "tcp", 8080), PortBinding(443, "tcp", None),
                               PortBinding(9000, "udp", 9000), PortBinding(9001, "udp", 9001)}
    assert spec.volumes == (Volume("app_data", "/data", True, "volume"), Volume("certs", "/certs", False, "volume"))
    check = spec.health_check
    assert (check.kind, check.argv) == ("exec", ("/bin/sh", "-c", "wget -qO- localhost"))
    assert (check.interval, check.timeout, check.failures, check.start_period) == (5.0, 1.0, 2, 10.0)
    u = spec.update
    assert (u.max_parallel, u.min_healthy_time, u.order, u.auto_revert) == (2, 3.0, "start-first", True)
    assert (task.restart_policy, task.pull_policy, dict(task.node_selectors)) == ("on-failure", "always",
                                                                                  {"zone": "a"})
    assert any("need 3 nodes" in n for n in c.notes)


def test_keys_left_out_take_orions_defaults_and_a_plain_service_needs_only_image_and_memory():
    c = read("services:\n  db:\n    image: postgres:16\n    mem_limit: 256m\n")
    spec = c.specs["app_db"]
    assert (spec.count, spec.health_check, spec.task.restart_policy, spec.update.order) == (1, None, "always",
                                                                                             "start-first")
    assert spec.task.memory == 256 * MiB


@pytest.mark.parametrize(("environment", "expected"), [
    ("{A: 1, B: true, C: null, D: x}", {"A": "1", "B": "true", "D": "x", "C": "from-shell"}),
    ("[A=1, C, NOT_SET, 'E=a=b']", {"A": "1", "C": "from-shell", "E": "a=b"}),
])
def test_environment_in_list_and_map_form_with_bare_keys_from_the_variables(environment, expected):
    c = read(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    environment: {environment}\n",
             variables={"C": "from-shell"})
    assert dict(c.specs["app_w"].task.env) == expected


def test_test_forms_of_a_healthcheck():
    def check(test: str):
        c = read(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    healthcheck: {test}\n")
        return c.specs["app_w"].health_check
    assert check('{test: ["CMD", "pg_isready", "-U", "x"]}').argv == ("pg_isready", "-U", "x")
    assert check('{test: ["CMD-SHELL", "curl -f localhost || exit 1"]}').argv == (
        "/bin/sh", "-c", "curl -f localhost || exit 1")
    assert check('{test: ["NONE"]}') is None and check("{disable: true}") is None
    assert check("{test: x, interval: 1s}").timeout == 1.0  # Orion's 2s default would exceed the interval


@pytest.mark.parametrize(("snippet", "path"), [
    ("build: .", "services.w.build"),
    ("depends_on: [db]", "services.w.depends_on"),
    ("container_name: xy", "services.w.container_name"),
    ("networks: [back]", "services.w.networks"),
    ("ports: ['127.0.0.1:80:80']", "services.w.ports[0]"),
    ("ports: ['8000-8001:80']", "services.w.ports[0]"),
    ("ports: ['80:80', '81:80']", "services.w.ports[1]"),
    ("ports: [{target: 80, host_ip: 127.0.0.1}]", "services.w.ports[0].host_ip"),
    ("volumes: ['./conf:/etc/conf']", "services.w.volumes[0]"),
    ("volumes: ['/srv:/srv']", "services.w.volumes[0]"),
    ("volumes: ['/anonymous']", "services.w.volumes[0]"),
    ("volumes: [{type: tmpfs, target: /tmp}]", "services.w.volumes[0].type"),
    ("healthcheck: {test: x, start_interval: 1s}", "services.w.healthcheck.start_interval"),
    ("healthcheck: {test: x, interval: 5s, timeout: 10s}", "services.w.healthcheck.timeout"),
    ("deploy: {mode: global-job}", "services.w.deploy.mode"),
    ("deploy: {replicas: 0}", "services.w.deploy.replicas"),
    ("deploy: {labels: {a: b}}", "services.w.deploy.labels"),
    ("deploy: {endpoint_mode: dnsrr}", "services.w.deploy.endpoint_mode"),
    ("deploy: {update_config: {delay: 10s}}", "services.w.deploy.update_config.delay"),
    ("deploy: {update_config: {failure_action: continue}}", "services.w.deploy.update_config.failure_action"),
    ("deploy: {rollback_config: {parallelism: 2}}", "services.w.deploy.rollback_config.parallelism"),
    ("deploy: {restart_policy: {condition: any, max_attempts: 3}}",
     "services.w.deploy.restart_policy.max_attempts"),
    ("deploy: {resources: {limits: {pids: 10}}}", "services.w.deploy.resources.limits.pids"),
    ("deploy: {placement: {constraints: ['node.role == manager']}}",
     "services.w.deploy.placement.constraints[0]"),
    ("deploy: {placement: {constraints: ['engine.labels.ssd == true']}}",
     "services.w.deploy.placement.constraints[0]"),
    ("deploy: {placement: {preferences: [{spread: node.labels.zone}, {spread: node.labels.rack}]}}",
     "services.w.deploy.placement.preferences[1].spread"),
    ("restart: on-failure:3", "services.w.restart"),
    ("pull_policy: build", "services.w.pull_policy"),
])
def test_what_orion_cannot_honour_is_named_by_its_key_path(snippet, path):
    c = read(f"services:\n  w:\n    image: busybox\n    mem_limit: 16m\n    {snippet}\n")
    assert c.invalid == ()
    assert path in paths(c), c.unsupported


def test_a_skipping_key_leaves_the_service_out_and_the_others_deploy():
    c = read("""
services:
  web: {image: busybox, mem_limit: 16m}
  agent: {image: busybox, mem_limit: 16m, deploy: {mode: global-job}}
  app: {build: .}
jobs:
  migrate: {image: busybox, triggers: {manual: true}}
""")
    assert list(c.specs) == ["app_web"] and c.left_out == ("agent", "app", "migrate")
    assert {"jobs.migrate.triggers", "services.agent.deploy.mode", "services.app.build"} <= set(paths(c))


def test_top_level_networks_and_volume_drivers_are_named():
    c = read("""
services: {w: {image: busybox, mem_limit: 16m}}
networks: {front: {}, back: {}}
volumes: {d: {driver: rexray}}
""")
    assert paths(c) == ["networks.front", "networks.back", "volumes.d.driver"]


def test_a_profile_leaves_its_services_out_unless_asked_for():
    text = ("services:\n  w: {image: busybox, mem_limit: 16m}\n"
            "  dbg: {image: busybox, mem_limit: 16m, profiles: [debug]}\n")
    assert list(read(text).specs) == ["app_w"]
    assert list(read(text, profiles=frozenset({"debug"})).specs) == ["app_w", "app_dbg"]


def test_host_volumes_are_declared_with_the_extension_key():
    c = read("""
services: {w: {image: busybox, mem_limit: 16m, volumes: ["certs:/certs:ro", "logs:/logs"]}}
volumes:
  certs: {x-orion-host-volume: true}
  logs: {x-orion-host-volume: shared-logs}
""")
    assert c.specs["app_w"].volumes == (Volume("certs", "/certs", True, "host"), Volume("shared-logs", "/logs",
                                                                                       False, "host"))


@pytest.mark.parametrize(("text", "path", "says"), [
    ("services: {w: {image: busybox}}", "services.w.deploy.resources.limits.memory", "--default-memory"),
    ("services: {w: {image: busybox, mem_limit: lots}}", "services.w.mem_limit", "not a size"),
    ("services: {w: {imgae: busybox}}", "services.w.imgae", "did you mean 'image'"),
    ("services: {w: {image: busybox, mem_limit: 16m, deploy: {replicas: many}}}", "services.w.deploy.replicas",
     "whole number"),
    ("services: {w: {image: Busy/Box, mem_limit: 16m}}", "services.w.image", "lowercase"),
    ("services: {w: {image: busybox, mem_limit: 16m, volumes: ['nope:/x']}}", "services.w.volumes[0]",
     "not declared"),
    ("services: {w: {image: busybox, mem_limit: 16m, healthcheck: {test: x, interval: 500ms}}}",
     "services.w.healthcheck", "below 1s"),
    ("services: {w: {image: 'busybox:${TAG:?set TAG}', mem_limit: 16m}}", "services.w.image", "set TAG"),
    ("services: {w: {image: busybox, mem_limit: 16m}}\nservices: {}", "", "duplicate key"),
    ("services: [w]", "services", "is not of type 'object'"),
])
def test_what_is_wrong_is_named_by_its_key_path_and_nothing_is_declared(text, path, says):
    c = read(text)
    assert c.specs == {}
    assert any(i.path == path and says in i.message for i in c.invalid), c.invalid


def test_default_memory_fills_in_and_says_so():
    c = read("services: {w: {image: busybox}}", default_memory="64M")
    assert c.specs["app_w"].task.memory == 64 * MiB and any("--default-memory 64M" in n for n in c.notes)


def test_yaml_is_read_as_compose_reads_it_version_1_2_with_anchors_and_merges():
    c = read("""
x-base: &base {image: busybox, mem_limit: 16m, environment: {FLAG: yes, MODE: 0755}}
services:
  a: *base
  b: {<<: *base, command: ["true"]}
""")
    assert dict(c.specs["app_a"].task.env) == {"FLAG": "yes", "MODE": "755"}
    assert c.specs["app_b"].task.command == ("true",) and c.specs["app_b"].task.image == "busybox"
