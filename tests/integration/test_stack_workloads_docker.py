"""``orion stack deploy`` of a compose file with a global service, a replicated-job and container
settings, on a real 3-node cluster and the real engine (issue #22).

The global ``agent`` (``deploy.mode: global``, a ``node.platform.os`` constraint) runs one replica
on each of the three nodes, and ``docker inspect`` of its container shows every setting the file
gives it (user, working_dir, hostname, cap_drop, read_only, tmpfs, labels, logging, stop_signal,
stop_grace_period, init, ulimits, extra_hosts, sysctls, shm_size, cpu_shares). The ``migrate`` job
(``replicated-job``, ``replicas: 2``: two completions, two at a time) runs to ``succeeded`` with
both attempts; each wrote through its ``entrypoint`` (a shell), in its ``working_dir``, under its
``hostname``, to a named volume the test reads afterwards (an attempt's container is removed once
it is reported). The same file again changes nothing.
"""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import docker
import pytest
from harness import ORION, Cluster

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

COMPOSE = """
services:
  agent:
    image: ${IMAGE}
    command: ["sh", "-c", "exec sleep 3600"]
    mem_limit: 16m
    user: "1000:1000"
    working_dir: /tmp
    hostname: agent-host
    cap_drop: [ALL]
    read_only: true
    tmpfs: ["/run:size=4M"]
    labels: [com.example.role=agent]
    logging: {driver: json-file, options: {max-size: 1m}}
    stop_signal: SIGINT
    stop_grace_period: 2s
    init: "true"
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    extra_hosts: {db: 10.0.0.5}
    sysctls: [net.core.somaxconn=1024]
    shm_size: 32m
    cpu_shares: "512"
    deploy:
      mode: global
      placement: {constraints: [node.platform.os == linux]}
  migrate:
    image: ${IMAGE}
    entrypoint: ["/bin/sh", "-c"]
    command: ["echo $$(pwd) $$(hostname) >> /out/log"]
    working_dir: /out
    hostname: migrate-host
    volumes: ["out:/out"]
    mem_limit: 16m
    deploy:
      mode: replicated-job
      replicas: 2
      restart_policy: {condition: on-failure, max_attempts: 1, delay: 1s}
volumes:
  out: {}
"""


def orion(cluster: Cluster, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ORION, "--addr", cluster.nodes[1].url, "stack", *args], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", **(env or {})})


@pytest.fixture
def stack_name(docker_client: docker.DockerClient) -> str:
    """Asked for before ``cluster``, so its volume is removed after the cluster removed its containers."""
    name = f"sw{uuid.uuid4().hex[:6]}"
    yield name
    try:
        docker_client.volumes.get(f"{name}_out").remove(force=True)
    except docker.errors.NotFound:
        pass


def test_a_global_service_and_a_replicated_job_deploy_with_their_container_settings(
        stack_name, cluster, docker_client, test_image, tmp_path: Path):
    path = tmp_path / "docker-compose.yml"
    path.write_text(COMPOSE)
    agent, migrate = f"{stack_name}_agent", f"{stack_name}_migrate"
    env = {"IMAGE": test_image}

    first = orion(cluster, "deploy", "-f", str(path), stack_name, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[:2] == [f"{agent}: create with one replica on every eligible node",
                                             f"{migrate}: create with a job of 2 completion(s), 2 at a time, once now"]
    api = cluster.nodes[0]

    def running_agents() -> list[dict] | None:
        found = [t for t in api.get(f"/tasks?service={agent}").json() if t["state"] == "running"]
        return found if len({t["nodeId"] for t in found}) == 3 == len(found) else None
    replicas = cluster.wait(running_agents, 60, "one agent replica running on each of the 3 nodes")
    attrs = docker_client.api.inspect_container(api.get(f"/tasks/{replicas[0]['id']}").json()["containerId"])
    config, host = attrs["Config"], attrs["HostConfig"]
    assert (config["User"], config["WorkingDir"], config["Hostname"]) == ("1000:1000", "/tmp", "agent-host")
    assert (config["Labels"]["com.example.role"], config["StopSignal"], config["StopTimeout"]) == ("agent", "SIGINT",
                                                                                                  2)
    assert (host["CapDrop"], host["ReadonlyRootfs"], host["Init"]) == (["ALL"], True, True)
    assert host["Tmpfs"] == {"/run": "size=4194304"}
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "1m"}}
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert (host["ExtraHosts"], host["Sysctls"]) == (["db:10.0.0.5"], {"net.core.somaxconn": "1024"})
    assert (host["ShmSize"], host["CpuShares"]) == (32 << 20, 512)

    def ended() -> dict | None:
        return next((r for r in api.get(f"/services/{migrate}/runs").json() if r["state"] != "running"), None)
    run = cluster.wait(ended, 60, "the migrate job's run to end")
    assert (run["state"], run["succeeded"], run["failed"]) == ("succeeded", 2, 0), run
    written = docker_client.containers.run(test_image, ["cat", "/out/log"], remove=True,
                                           volumes={f"{stack_name}_out": {"bind": "/out", "mode": "ro"}})
    assert written.decode().splitlines() == ["/out migrate-host"] * 2

    again = orion(cluster, "deploy", "-f", str(path), stack_name, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"{agent}: unchanged (version 1)", f"{migrate}: unchanged (version 1)",
                                         f"stack {stack_name}: no change"]
    assert len(api.get(f"/services/{migrate}/runs").json()) == 1  # no new run of the job
    gone = orion(cluster, "rm", stack_name)
    assert gone.returncode == 0, gone.stderr
