"""``orion stack deploy`` of a compose file with a secret (``file:``) and a config (``content:``) on a
real one-node cluster holding a cluster key, and the real engine (issues #21, #22): the replica's
container reads the secret at Swarm's default path with the mode asked, and the config at ``/NAME``;
the same file again changes nothing; the value is in none of the CLI's output."""

from __future__ import annotations

import secrets as pysecrets
import subprocess
import uuid
from pathlib import Path

import pytest
from harness import ORION
from secret_kit import holds, in_container, running_secrets, secrets_cluster

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

VALUE = "orion-stack-" + pysecrets.token_hex(12)
COMPOSE = """
services:
  web:
    image: ${IMAGE}
    command: ["sh", "-c", "exec sleep 3600"]
    mem_limit: 16m
    secrets: [{source: db, mode: 0440}]
    configs: [app.conf]
secrets:
  db: {file: ./db.txt}
configs:
  app.conf: {content: "listen 80"}
"""


@pytest.fixture
def cluster(tmp_path_factory, docker_host, docker_client):
    c = secrets_cluster(tmp_path_factory.mktemp("stacksecrets"), docker_host, size=1)
    with running_secrets(c, docker_client):
        yield c


def test_a_stack_s_secret_and_config_reach_the_container_and_a_redeploy_changes_nothing(
        cluster, docker_client, test_image, tmp_path: Path):
    stack = f"ss{uuid.uuid4().hex[:6]}"
    (tmp_path / "db.txt").write_text(VALUE)
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)

    def deploy() -> subprocess.CompletedProcess:
        done = subprocess.run([*ORION, "--addr", cluster.nodes[0].url, "stack", "deploy", "-f", str(path),
                               stack], capture_output=True, text=True, timeout=60,
                              env={"PATH": "/usr/bin:/bin", "IMAGE": test_image})
        assert done.returncode == 0, done.stderr
        assert not holds(VALUE, done.stdout + done.stderr)
        return done

    first = deploy()
    assert f"secret {stack}_db: version 1" in first.stdout
    web = f"{stack}_web"

    def running_task():
        tasks = [t for t in cluster.nodes[0].get(f"/tasks?service={web}").json() if t["state"] == "running"]
        return cluster.nodes[0].get(f"/tasks/{tasks[0]['id']}").json() if tasks else None
    task = cluster.wait(running_task, 60, f"a running replica of {web}")
    cid = task["containerId"]
    assert in_container(docker_client, cid, "cat", "/run/secrets/db") == VALUE
    assert in_container(docker_client, cid, "stat", "-c", "%a", "/run/secrets/db").strip() == "440"
    assert in_container(docker_client, cid, "cat", "/app.conf") == "listen 80"

    again = deploy()
    assert again.stdout.splitlines()[-1] == f"stack {stack}: no change"
    assert cluster.nodes[0].get(f"/secrets/{stack}_db").json()["version"] == 1
    assert cluster.nodes[0].get(f"/services/{web}").json()["version"] == 1
