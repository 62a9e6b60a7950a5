"""20 compose files in the shapes of well-known public examples (tests/data/compose/, each saying
where its shape comes from): every one is read through the whole path of ``orion stack deploy``
and either converts or fails with named keys — none crashes, and every key path a finding
names is a real key of the file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orion.stack.load import load, parse_yaml

FOLDER = Path(__file__).resolve().parents[2] / "data" / "compose"
FILES = sorted(FOLDER.glob("*.yml"))
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")

# What each file must come to, pinned: (services converted, services left out, a few keys named).
EXPECTED = {
    "01-voting-app-stack.yml": (6, (), {"services.db.deploy.placement.constraints[0]", "services.visualizer.volumes[0]",
                                        "services.worker.deploy.restart_policy.max_attempts", "networks.frontend"}),
    "02-wordpress-mysql.yml": (2, (), {"services.wordpress.depends_on"}),
    "03-prometheus-grafana.yml": (2, (), {"services.prometheus.volumes[0]"}),
    "04-traefik-whoami.yml": (2, (), {"services.reverse-proxy.volumes[0]"}),
    "05-gitlab.yml": (1, (), {"services.gitlab.container_name", "services.gitlab.volumes[0]"}),
    "06-nextcloud.yml": (2, (), {"services.app.links"}),
    "07-nginx-flask-mysql.yml": (1, ("backend", "proxy"), {"services.backend.build"}),
    "08-react-express-mongodb.yml": (1, ("frontend", "backend"), {"services.frontend.volumes[1]"}),
    "09-elasticsearch-logstash-kibana.yml": (3, (), {"services.logstash.volumes[0]", "networks.elastic"}),
    "10-postgresql-pgadmin.yml": (2, (), {"services.postgres.container_name"}),
    "11-getting-started-todo.yml": (2, (), {"services.app.ports[0]", "services.app.volumes[0]"}),
    "12-minio-distributed.yml": (4, (), set()),
    "13-portainer-agent-stack.yml": (2, (), {"services.portainer.deploy.placement.constraints[0]"}),
    "14-kafka-zookeeper.yml": (2, (), {"services.broker.depends_on"}),
    "15-airflow.yml": (4, ("flower",), {"services.airflow-init.depends_on", "services.redis.healthcheck.timeout"}),
    "16-home-assistant.yml": (1, (), {"services.homeassistant.network_mode", "services.homeassistant.volumes[0]"}),
    "17-keycloak-postgres.yml": (2, (), set()),
    "18-jenkins.yml": (1, (), set()),
    "19-loki-promtail-grafana.yml": (3, (), {"services.grafana.networks", "services.promtail.volumes[0]"}),
    "20-compose-v1-legacy.yml": (0, (), set()),
}


def resolves(document: object, path: str) -> bool:
    """Does ``services.web.ports[1]`` name a key (or an item) of ``document``?"""
    node = document
    for name, index in _TOKEN.findall(path):
        if index:
            if not isinstance(node, list) or int(index) >= len(node):
                return False
            node = node[int(index)]
        elif isinstance(node, dict) and name in node:
            node = node[name]
        else:
            return False
    return True


def test_there_are_twenty_each_saying_where_its_shape_comes_from():
    assert len(FILES) == 20 and set(EXPECTED) == {f.name for f in FILES}
    for path in FILES:
        assert path.read_text().startswith("# Shape: "), path.name


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_converts_or_fails_with_named_keys(path):
    raw = parse_yaml(path.read_text())
    conversion = load(path, environ={}).convert("ex", default_memory="256M")
    count, left_out, named = EXPECTED[path.name]
    assert len(conversion.specs) == count and conversion.left_out == left_out
    assert named <= {u.path for u in conversion.unsupported}
    for finding in (*conversion.invalid, *conversion.unsupported):
        assert finding.path and resolves(raw, finding.path), finding
    if conversion.invalid:
        assert conversion.specs == {}
    else:
        services = set(raw.get("services") or {})
        assert {n.removeprefix("ex_") for n in conversion.specs} | set(left_out) == services
        assert all(s.stack == "ex" and s.name.startswith("ex_") for s in conversion.specs.values())


def test_the_legacy_format_names_its_top_level_services_as_unknown_keys():
    conversion = load(FOLDER / "20-compose-v1-legacy.yml", environ={}).convert("ex")
    assert [(i.path, i.message) for i in conversion.invalid] == [("web", "not a Compose key here"),
                                                                 ("redis", "not a Compose key here")]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_without_a_default_memory_each_service_lacking_one_is_named(path):
    conversion = load(path, environ={}).convert("ex")
    lacking = {i.path for i in conversion.invalid if "--default-memory" in i.message}
    raw = parse_yaml(path.read_text())
    for name, svc in (raw.get("services") or {}).items() if "services" in raw else ():
        has = bool((svc.get("deploy") or {}).get("resources") or svc.get("mem_limit"))
        skipped = name in EXPECTED[path.name][1]
        assert (f"services.{name}.deploy.resources.limits.memory" in lacking) == (not has and not skipped), name


def test_the_container_settings_and_modes_of_the_examples_reach_their_specs():
    def spec(file: str, service: str):
        return load(FOLDER / file, environ={}).convert("ex", default_memory="256M").specs[f"ex_{service}"]
    assert dict(spec("04-traefik-whoami.yml", "whoami").task.container.labels) == {
        "traefik.http.routers.whoami.rule": "Host(`whoami.docker.localhost`)"}
    gitlab = spec("05-gitlab.yml", "gitlab").task.container
    assert (gitlab.hostname, gitlab.shm_size) == ("gitlab.example.com", 256 << 20)
    assert spec("11-getting-started-todo.yml", "app").task.container.working_dir == "/app"
    assert spec("12-minio-distributed.yml", "minio1").task.container.hostname == "minio1"
    agent = spec("13-portainer-agent-stack.yml", "agent")
    assert (agent.mode, [str(c) for c in agent.task.constraints]) == ("global", ["node.platform.os == linux"])
    assert spec("15-airflow.yml", "airflow-init").task.container.entrypoint == ("/bin/bash",)
    assert spec("16-home-assistant.yml", "homeassistant").task.container.privileged is True
