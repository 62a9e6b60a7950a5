"""A 3-node cluster locked down as issue #11 asks: HTTPS, client certificates (mTLS), a token.

The agents join each other over TLS (through gossip and through an API address),
present their own certificate to their peers, a task is placed and runs, the CLI
reaches the cluster with Nomad's option names, and every client that lacks one of
the three (TLS, a trusted client certificate, the token) is refused. The secrets
travel in files and the environment: no agent's command line holds them.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from pathlib import Path

import docker
import pytest
import requests
from harness import ORION, Cluster, Node

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

TOKEN = "tls-test-token"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, docker_host, docker_client, tls):
    root = tmp_path_factory.mktemp("tls-cluster")
    token_file = root / "api-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    c = Cluster(root=root, docker_host=docker_host,
                extra_args=["--tls-cert", str(tls.agent_cert), "--tls-key", str(tls.agent_key),
                            "--tls-client-ca", str(tls.ca), "--api-token-file", str(token_file)],
                scheme="https",
                client={"verify": str(tls.ca), "cert": (str(tls.client_cert), str(tls.client_key)),
                        "headers": {"Authorization": f"Bearer {TOKEN}"}})
    first, second, third = c.nodes
    try:
        c.start_node(first, bootstrap=True)
        c.wait(first.healthy, 60, "first node healthy over TLS")
        c.start_node(second, join=first)                               # gossip address
        c.start_node(third, join_addr=f"127.0.0.1:{first.port}")      # API address: https
        c.wait(lambda: all(n.healthy() for n in c.nodes), 60, "all nodes healthy")
        c.wait(lambda: len(first.get("/nodes").json()) == 3, 60, "all nodes registered")
        yield c
    finally:
        c.stop()
        for node in c.nodes:
            for container in docker_client.containers.list(all=True, filters={"label": f"orion.node={node.id}"}):
                try:
                    container.remove(force=True)
                except docker.errors.APIError:
                    pass


@pytest.fixture(autouse=True)
def _logs_on_failure(request, cluster):
    request.node.orion_cluster = cluster


def _cli(cluster: Cluster, *args: str, ca: Path, identity: tuple[Path, Path] | None,
         stdin: str | None = None, node: Node | None = None) -> subprocess.CompletedProcess:
    node = node or cluster.nodes[1]
    argv = [*ORION, "--addr", node.url, "--ca-cert", str(ca)]
    if identity:
        argv += ["--client-cert", str(identity[0]), "--client-key", str(identity[1])]
    env = {**os.environ, "ORION_API_TOKEN": TOKEN}
    return subprocess.run([*argv, *args], capture_output=True, text=True, env=env, timeout=60, input=stdin)


def test_all_three_joined_over_tls_and_a_task_runs(cluster, test_image):
    raft = cluster.nodes[0].get("/raft").json()
    assert sorted(raft["members"]) == sorted(n.raft_addr for n in cluster.nodes)
    node = cluster.nodes[2]
    resp = node.post("/tasks", json={"image": test_image, "memory": 32 * 1024 * 1024})
    assert resp.status_code == 201, resp.text
    task = resp.json()
    assert task["nodeId"] in {n.id for n in cluster.nodes}
    cluster.wait(lambda: node.get(f"/tasks/{task['id']}").json()["state"] == "running", 60, "task running")


def test_the_cli_reaches_the_cluster_with_nomads_options(cluster, tls):
    result = _cli(cluster, "nodes", ca=tls.ca, identity=(tls.client_cert, tls.client_key))
    assert result.returncode == 0, result.stderr
    for node in cluster.nodes:
        assert node.id in result.stdout


def test_a_wrong_ca_fails_with_the_clis_clear_message(cluster, tls):
    result = _cli(cluster, "nodes", ca=tls.other_ca, identity=(tls.client_cert, tls.client_key))
    assert result.returncode == 1
    assert "certificate verify failed" in result.stderr
    assert "pass --ca-cert / ORION_CACERT" in result.stderr
    assert "Traceback" not in result.stderr


def test_clients_without_tls_certificate_or_token_are_refused(cluster, tls):
    node = cluster.nodes[0]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{node.port}/health", timeout=5)
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(node.url + "/health", verify=str(tls.ca), timeout=5)
    no_token = requests.get(node.url + "/tasks", verify=str(tls.ca),
                            cert=(str(tls.client_cert), str(tls.client_key)), timeout=5)
    assert no_token.status_code == 401
    result = _cli(cluster, "nodes", ca=tls.ca, identity=None)
    assert result.returncode == 1
    assert "requires a client certificate" in result.stderr


def test_no_secret_is_on_any_agents_command_line(cluster):
    for node in cluster.nodes:
        cmdline = Path(f"/proc/{node.proc.pid}/cmdline").read_bytes().decode()
        assert "--tls-cert" in cmdline
        assert cluster.secret not in cmdline and TOKEN not in cmdline
        assert "on the command line" not in node.log_path.read_text()


def test_logs_are_forwarded_between_agents_over_tls(cluster, test_image, tls):
    """A node that does not run the task reads its logs from the owner over mTLS with the token,
    and a followed log whose client leaves frees its slot (the TLS socket turns readable too)."""
    resp = cluster.nodes[0].post("/tasks", json={"image": test_image, "memory": 32 * 1024 * 1024,
                                                 "command": ["sh", "-c", "echo over-tls; sleep 600"]})
    task = resp.json()
    running = cluster.wait(lambda: (t := cluster.nodes[0].get(f"/tasks/{task['id']}").json())["state"] == "running"
                           and t, 60, "task running")
    via = next(n for n in cluster.nodes if n.id != running["nodeId"])
    logs = cluster.wait(lambda: (r := via.get(f"/tasks/{task['id']}/logs")).text == "over-tls\n" and r, 10, "logs")
    assert logs.headers["X-Orion-Node"] == running["nodeId"]
    for _ in range(5):  # one more than max_log_follows: each one must have been given back
        stream = cluster.wait(lambda: (r := via.get(f"/tasks/{task['id']}/logs?follow=1", stream=True))
                              .status_code == 200 and r, 10, "a free follow slot")
        assert next(stream.iter_content(chunk_size=None)) == b"over-tls\n"
        stream.close()
    result = _cli(cluster, "logs", task["id"], ca=tls.ca, identity=(tls.client_cert, tls.client_key))
    assert (result.returncode, result.stdout) == (0, "over-tls\n"), result.stderr
    cluster.nodes[0].delete(f"/tasks/{task['id']}")


def test_blocking_queries_are_held_and_answered_over_mtls(cluster):
    """Held reads over TLS with client certificates: parked by the agent's worker while the threads
    stay free (more watchers than http_threads), each woken when the write it waits for applies."""
    node = cluster.nodes[1]
    start = int(node.get("/services").headers["X-Orion-Index"])
    seen: list[requests.Response] = []

    def watch() -> None:  # as `orion service ls --watch` does: ask again until the service shows
        index = start
        while True:
            answer = node.get(f"/services?index={index}&wait=60s", timeout=90)
            assert answer.status_code == 200, answer.text
            if any(s["name"] == "held-tls" for s in answer.json()):
                seen.append(answer)
                return
            index = int(answer.headers["X-Orion-Index"])

    watchers = [threading.Thread(target=watch) for _ in range(24)]  # more than the 16 http_threads
    for thread in watchers:
        thread.start()
    assert cluster.wait(lambda: node.get("/health", timeout=5).status_code == 200, 10, "/health while held")
    spec = {"name": "held-tls", "image": "busybox", "memory": 16 * 1024 * 1024, "nodeSelectors": {"tls": "nowhere"}}
    assert cluster.nodes[0].post("/services", json=spec).status_code == 201
    for thread in watchers:
        thread.join(30)
    assert len(seen) == 24 and all(int(a.headers["X-Orion-Index"]) > start for a in seen)
    cluster.nodes[0].delete("/services/held-tls")


def test_exec_is_forwarded_between_agents_over_mtls(cluster, test_image, tls):
    """orion exec through a node that does not run the task: the CLI's upgraded connection to
    that node and that node's to the owner are both TLS with client certificates and the token;
    the owner's audit log names the caller the first node vouched for."""
    resp = cluster.nodes[0].post("/tasks", json={"image": test_image, "memory": 32 * 1024 * 1024,
                                                 "command": ["sleep", "600"]})
    task = resp.json()
    running = cluster.wait(lambda: (t := cluster.nodes[0].get(f"/tasks/{task['id']}").json())["state"] == "running"
                           and t, 60, "task running")
    via = next(n for n in cluster.nodes if n.id != running["nodeId"])
    result = _cli(cluster, "exec", "-i", task["id"], "--", "sh", "-c", "cat; exit 3", ca=tls.ca,
                  identity=(tls.client_cert, tls.client_key), stdin="over mtls\n", node=via)
    assert (result.returncode, result.stdout) == (3, "over mtls\n"), result.stderr
    owner = next(n for n in cluster.nodes if n.id == running["nodeId"])
    ends = [json.loads(line) for line in (owner.data_dir / "audit.log").read_text().splitlines()
            if '"action":"exec"' in line and task["id"] in line]
    assert ends[-1]["exitCode"] == 3 and ends[-1]["certificate"] == "CN=operator"
    cluster.nodes[0].delete(f"/tasks/{task['id']}")
