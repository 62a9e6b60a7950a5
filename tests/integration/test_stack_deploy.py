"""``orion stack deploy`` of a real multi-service compose file on a real 3-node cluster and engine.

The file has a web service (3 replicas, an exec healthcheck, a port), a worker
writing to a named volume, and a migration to run once on every node
(``deploy.mode: global-job``): Orion has no such mode, so the deploy is refused
naming that key until ``--ignore-unsupported`` leaves it out. Then: every replica runs
and is healthy, with the volume, the memory limit and the interpolated
environment reaching ``docker inspect``; the same file again changes nothing
(no new version, no new replica); ``--prune`` without the worker removes
exactly it; a ``build:`` added to web is named before anything changes.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import docker
import pytest
from harness import ORION, Cluster
from service_kit import answer

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

COMPOSE = """
services:
  web:
    image: ${IMAGE}
    command: ["sh", "-c", "echo \\"$$GREETING\\" > /www/index.html && exec httpd -f -p 80 -h /www"]
    environment:
      GREETING: ${GREETING:-hello}
    ports: ["80"]
    volumes: ["data:/data:ro"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"]
      interval: 1s
      retries: 2
    deploy:
      replicas: 3
      resources: {limits: {memory: 16M, cpus: "0.1"}}
      update_config: {parallelism: 2, monitor: 1s, order: start-first}
      restart_policy: {condition: any}
  worker:
    image: ${IMAGE}
    command: ["sh", "-c", "while true; do date >> /data/beats; sleep 1; done"]
    volumes: ["data:/data"]
    deploy:
      replicas: 2
      resources: {limits: {memory: 16M}}
      update_config: {monitor: 1s}
  migrate:
    image: ${IMAGE}
    command: ["sh", "-c", "echo migrated"]
    mem_limit: 16m
    deploy:
      mode: global-job
volumes:
  data: {}
"""


def orion(cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    node = cluster.nodes[1]
    return subprocess.run([*ORION, "--addr", node.url, "stack", *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", **(env or {})})


def services(cluster: Cluster) -> dict[str, tuple[int, str]]:
    return {s["name"]: (s["version"], s["deployment"]["id"]) for s in cluster.nodes[0].get("/services").json()}


def settled(cluster: Cluster, stack: str, counts: dict[str, int]) -> dict:
    """Wait until every service of the stack rolled out and all its replicas run healthy."""
    def done() -> dict | None:
        found = cluster.nodes[2].get(f"/stacks/{stack}").json()
        ok = all(d["deployment"]["state"] == "successful" and d["healthy"] == counts[d["name"]]
                 and len([r for r in d["replicas"] if r["state"] == "running"]) == counts[d["name"]]
                 for d in found["details"])
        return found if ok and {d["name"] for d in found["details"]} == set(counts) else None
    return cluster.wait(done, 120, f"stack {stack} running and healthy: {counts}")


@pytest.fixture
def stack_name(docker_client: docker.DockerClient) -> str:
    """A stack of the test's own. Asked for before ``cluster``, so it is torn down after the cluster
    removed its containers."""
    name = f"st{uuid.uuid4().hex[:6]}"
    yield name
    try:  # the named volume the stack's replicas created on the shared engine
        docker_client.volumes.get(f"{name}_data").remove(force=True)
    except docker.errors.NotFound:
        pass


def test_a_compose_file_deploys_as_a_stack_redeploys_as_a_no_op_and_prunes_exactly_one(
        stack_name, cluster, docker_client, test_image, tmp_path: Path):
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    (tmp_path / ".env").write_text(f"IMAGE={test_image}\nGREETING=hello from ${{IMAGE}}\n")
    web, worker = f"{stack_name}_web", f"{stack_name}_worker"

    refused = orion(cluster, "deploy", "-f", str(path), stack_name)
    assert refused.returncode == 1, refused
    assert "services.migrate.deploy.mode: global-job" in refused.stderr and "nothing was changed" in refused.stderr
    assert services(cluster) == {}

    first = orion(cluster, "deploy", "-f", str(path), stack_name, "--ignore-unsupported")
    assert first.returncode == 0, first.stderr
    assert f"{web}: create with 3 replica(s)" in first.stdout and f"{worker}: create with 2 replica(s)" in first.stdout
    found = settled(cluster, stack_name, {web: 3, worker: 2})
    replicas = {r["id"] for d in found["details"] for r in d["replicas"]}

    tasks = [t for t in cluster.nodes[0].get(f"/tasks?service={web}").json() if t["state"] == "running"]
    assert {answer("127.0.0.1", t["ports"]["80/tcp"]) for t in tasks} == {f"hello from {test_image}"}
    container = docker_client.containers.get(cluster.nodes[0].get(f"/tasks/{tasks[0]['id']}").json()["containerId"])
    assert container.attrs["HostConfig"]["Memory"] == 16 << 20
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/data"]["Type"] == "volume" and mounts["/data"]["Name"] == f"{stack_name}_data"
    assert mounts["/data"]["RW"] is False

    versions = services(cluster)
    again = orion(cluster, "deploy", "-f", str(path), stack_name, "--ignore-unsupported")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"{web}: unchanged (version 1)", f"{worker}: unchanged (version 1)",
                                         f"stack {stack_name}: no change"]
    assert services(cluster) == versions
    now = cluster.nodes[0].get(f"/stacks/{stack_name}").json()
    assert {r["id"] for d in now["details"] for r in d["replicas"]} == replicas

    with_build = COMPOSE.replace("  web:\n", "  web:\n    build: ./web\n")
    path.write_text(with_build)
    built = orion(cluster, "deploy", "-f", str(path), stack_name, "--prune")
    assert built.returncode == 1 and "services.web.build: Orion runs images" in built.stderr
    assert services(cluster) == versions

    path.write_text(COMPOSE.split("  worker:\n")[0] + "volumes:\n  data: {}\n")
    pruned = orion(cluster, "deploy", "-f", str(path), stack_name, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert f"{worker}: remove (not in the file)" in pruned.stdout and f"{web}: unchanged (version 1)" in pruned.stdout
    assert services(cluster) == {web: versions[web]}
    cluster.wait(lambda: not [t for t in cluster.nodes[0].get(f"/tasks?service={worker}").json()
                              if t["state"] not in ("stopped", "completed", "failed")], 30, "worker stopped")

    listed = orion(cluster, "ls")
    assert stack_name in listed.stdout and "3/3" in listed.stdout
    gone = orion(cluster, "rm", stack_name)
    assert gone.returncode == 0 and f"deleted {web}" in gone.stdout
    assert services(cluster) == {}
