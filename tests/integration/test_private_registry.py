"""A private registry with real authentication (issue #21): Debian's ``docker-registry`` with htpasswd
(bcrypt) auth on loopback, holding a locally built image pushed to it; three agents.

Without credentials a service's replicas wait with the one clear reason, not a Docker stack trace;
after ``orion registry login`` every node pulls (``pullPolicy: always``, so each start pulls with the
stored credentials even where the shared engine already has the image) and runs it.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import docker
import pytest
from harness import ORION
from registry_kit import serving_registry
from secret_kit import files_holding, holds, running_secrets, secrets_cluster

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

USER, PASSWORD = "ci", "pw-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("authregistry")
    (root / "htpasswd").write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=6)).decode()}\n")
    auth = f"auth: {{htpasswd: {{realm: orion-test, path: {root / 'htpasswd'}}}}}\n"
    with serving_registry(root, auth, ready_status=401) as address:
        yield address


@pytest.fixture(scope="module")
def image(registry, docker_client, test_image) -> Iterator[str]:
    """The test image pushed to the authenticated registry, and absent from the engine."""
    ref = f"{registry}/team/private-{uuid.uuid4().hex[:8]}:v1"
    repo, tag = ref.rsplit(":", 1)
    docker_client.images.get(test_image).tag(repo, tag)
    auth = {"username": USER, "password": PASSWORD}
    for line in docker_client.images.push(repo, tag=tag, stream=True, decode=True, auth_config=auth):
        assert "error" not in line, line
    docker_client.images.remove(ref)
    yield ref
    try:
        docker_client.images.remove(ref, force=True)
    except docker.errors.ImageNotFound:
        pass


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, docker_host, docker_client):
    c = secrets_cluster(tmp_path_factory.mktemp("privreg"), docker_host)
    with running_secrets(c, docker_client):
        yield c


def test_without_credentials_replicas_wait_with_the_reason_and_after_login_every_node_runs_it(
        cluster, registry, image, docker_client):
    spec = {"name": "private", "image": image, "memory": "16M", "count": 3, "command": ["sleep", "3600"],
            "pullPolicy": "always", "update": {"minHealthyTime": "1s"}}
    resp = cluster.nodes[1].post("/services", json=spec)
    assert resp.status_code == 201, resp.text
    reason = (f"authentication required for {registry}: add credentials with `orion registry login {registry}`")

    def waiting() -> list[dict] | None:
        tasks = cluster.nodes[0].get("/tasks?service=private").json()
        ok = len(tasks) == 3 and all(t["state"] == "assigned" and t["reason"].startswith(reason) for t in tasks)
        return tasks if ok else None

    tasks = cluster.wait(waiting, 60, "three replicas waiting for credentials")
    assert {t["nodeId"] for t in tasks} == {n.id for n in cluster.nodes}
    assert all("Traceback" not in t["reason"] and len(t["reason"]) < 300 for t in tasks)
    time.sleep(3)  # still waiting: not failed, not restarted
    again = cluster.nodes[2].get("/tasks?service=private").json()
    assert all(t["state"] == "assigned" and t["restarts"] == 0 for t in again)

    login = subprocess.run([*ORION, "--addr", cluster.nodes[2].url, "registry", "login", registry, "-u", USER,
                            "--password-stdin"], input=PASSWORD.encode(), capture_output=True, timeout=30,
                           check=False)
    assert login.returncode == 0, login.stderr
    assert not holds(PASSWORD, login.stdout + login.stderr)

    def all_running() -> list[dict] | None:
        tasks = cluster.nodes[0].get("/tasks?service=private").json()
        return tasks if len(tasks) == 3 and all(t["state"] == "running" for t in tasks) else None

    tasks = cluster.wait(all_running, 90, "every replica pulled and running after the login")
    assert {t["nodeId"] for t in tasks} == {n.id for n in cluster.nodes}
    listed = subprocess.run([*ORION, "--addr", cluster.nodes[0].url, "registry", "ls"], capture_output=True,
                            timeout=30, check=False)
    assert registry in listed.stdout.decode() and not holds(PASSWORD, listed.stdout)
    assert not holds(PASSWORD, cluster.nodes[0].get("/registries").text)
    assert files_holding(PASSWORD, [n.data_dir for n in cluster.nodes] + [n.log_path for n in cluster.nodes]) == []
    assert Path.home().joinpath(".docker", "config.json").exists() is False or \
        not holds(PASSWORD, Path.home().joinpath(".docker", "config.json").read_bytes())


def test_wrong_credentials_say_they_were_refused(cluster, registry, image):
    assert cluster.nodes[0].post("/registries", json={"server": registry, "username": USER,
                                                      "password": "wrong"}).status_code in (200, 201)
    resp = cluster.nodes[0].post("/tasks", json={"image": image, "memory": "16M", "command": ["sleep", "60"],
                                                  "pullPolicy": "always"})
    assert resp.status_code == 201, resp.text
    task_id = resp.json()["id"]
    task = cluster.wait(lambda: (t := cluster.nodes[0].get(f"/tasks/{task_id}").json())["reason"] and t, 60,
                        "the task's reason")
    assert task["state"] == "assigned"
    assert task["reason"].startswith(f"authentication failed for {registry} as {USER}: the stored credentials were "
                                     f"refused; update them with `orion registry login {registry}`")
    cluster.nodes[0].delete(f"/tasks/{task_id}")
