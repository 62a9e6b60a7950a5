"""Secrets and configs end to end (issue #21, docs/secrets.md): three real agents, one real engine.

A service mounts secret ``db`` and config ``app.conf``; inside its containers the files hold what
was asked with the modes asked; the value is in no answer, CLI output, log, metrics page, file of
any agent's data dir (journal and snapshots) or of the engine's container directories. A secret
update rolls the service with ``maxParallel`` respected; a secret in use cannot be deleted; an
agent without the key refuses to start (exit 2, one line); a key rotation keeps every secret
readable by tasks.
"""

from __future__ import annotations

import base64
import json
import os
import secrets as pysecrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from harness import ORION
from secret_kit import (
    audit_records,
    files_holding,
    holds,
    in_container,
    key_file,
    running_secrets,
    secrets_cluster,
    write_key_file,
)

from orion.domain.sealing import new_key, parse_keyring
from orion.runtime.tmpfs import TMPFS, fs_type

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

VALUE = "orion-test-" + pysecrets.token_hex(12)
NEXT = "orion-next-" + pysecrets.token_hex(12)
CONFIG = "service=${service} slot=${slot} node=${node}\n"
SERVE = "exec sleep 3600"


def spec(count: int = 3, max_parallel: int = 1) -> dict:
    return {"name": "web", "image": "orion/busybox:latest", "memory": "16M", "count": count,
            "command": ["sh", "-c", SERVE],
            "secrets": [{"source": "db", "target": "/run/secrets/db", "mode": "0440", "uid": 1000, "gid": 1001}],
            "configs": [{"source": "app.conf", "target": "/etc/app/app.conf", "mode": "0444"}],
            "update": {"maxParallel": max_parallel, "minHealthyTime": "1s", "healthyDeadline": "60s"}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, docker_host, docker_client):
    root = tmp_path_factory.mktemp("secrets")
    c = secrets_cluster(root, docker_host)
    with running_secrets(c, docker_client):
        yield c


@pytest.fixture(autouse=True)
def _logs_on_failure(request, cluster):
    request.node.orion_cluster = cluster


def cli(cluster, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ORION, "--addr", cluster.nodes[1].url, *args], input=stdin, capture_output=True,
                          timeout=30, check=False)


def running_replicas(cluster, version: int | None = None) -> list[dict]:
    tasks = cluster.nodes[0].get("/tasks?service=web").json()
    return [t for t in tasks if t["desired"] == "run" and t["state"] == "running"
            and (version is None or t["version"] == version)]


def wait_service(cluster, version: int, count: int) -> list[dict]:
    def done():
        s = cluster.nodes[0].get("/services/web").json()
        ready = running_replicas(cluster, version)
        return ready if s["version"] == version and s["deployment"]["state"] == "successful" \
            and len(ready) == count else None
    ready = cluster.wait(done, 90, f"web version {version} rolled out to {count} running replicas")
    return [cluster.nodes[0].get(f"/tasks/{t['id']}").json() for t in ready]  # with containerId


def test_a_service_gets_its_files_with_the_modes_asked_and_the_value_is_nowhere_else(cluster, docker_client):
    made = cli(cluster, "secret", "create", "db", "-f", "-", stdin=VALUE.encode())
    assert made.returncode == 0, made.stderr
    assert made.stdout.decode().startswith("secret db version 1 (") and not holds(VALUE, made.stdout)
    assert cli(cluster, "config", "create", "app.conf", "-f", "-", "--template", stdin=CONFIG.encode()).returncode == 0
    resp = cluster.nodes[2].post("/services", json=spec())
    assert resp.status_code == 201, resp.text
    replicas = wait_service(cluster, 1, 3)

    for task in replicas:
        cid = task["containerId"]
        assert in_container(docker_client, cid, "cat", "/run/secrets/db") == VALUE
        assert in_container(docker_client, cid, "stat", "-c", "%a %u %g", "/run/secrets/db").split() == \
            ["440", "1000", "1001"]
        assert in_container(docker_client, cid, "cat", "/etc/app/app.conf") == \
            f"service=web slot={task['slot']} node={task['nodeId']}\n"
        assert in_container(docker_client, cid, "stat", "-c", "%a", "/etc/app/app.conf").strip() == "444"
        mounts = {m["Destination"]: m for m in docker_client.api.inspect_container(cid)["Mounts"]}
        assert mounts["/run/secrets/db"]["RW"] is False
        assert fs_type(mounts["/run/secrets/db"]["Source"]) == TMPFS  # the value's only home on the host

    # Answers, CLI output, logs, metrics: metadata only.
    node = cluster.nodes[0]
    answers = [node.get("/secrets/db").text, node.get("/secrets").text, node.get("/tasks").text,
               node.get("/services/web").text, node.get("/metrics").text, node.get("/raft").text]
    answers += [node.get(f"/tasks/{t['id']}").text for t in replicas]
    outputs = [cli(cluster, "inspect", replicas[0]["id"]).stdout, cli(cluster, "secret", "inspect", "db").stdout,
               cli(cluster, "secret", "ls", "-o", "wide").stdout, cli(cluster, "--json", "secret", "ls").stdout]
    assert all(o for o in outputs)
    assert [a for a in answers + outputs if holds(VALUE, a)] == []
    assert b"/run/secrets/db" in outputs[0]
    # Every file under every agent's data dir (the journal, snapshots), the agents' logs, and the
    # engine's files of these containers (config.v2.json, hostconfig.json, logs...).
    data_dirs = [n.data_dir for n in cluster.nodes]
    for i in range(25):  # entries enough for a compaction (every 20 here): the search must cover a snapshot
        assert cluster.nodes[i % 3].put("/configs/filler", json={"data": b64(f"filler {i}")}).status_code == 201
    cluster.wait(lambda: all((d / "raft.dump").exists() for d in data_dirs), 90,
                 "a snapshot (raft.dump) in every data dir, so the search covers snapshots too")
    # The create is audited (the log lives beside the journal, so the search below reads it too):
    # who, what, the result, and of the body its keys alone.
    created = audit_records(data_dirs, "/secrets")
    assert [(r["method"], r["status"], r["body"]) for r in created] == \
        [("POST", 201, {"data": "<redacted>", "name": "<redacted>"})], created
    assert "who" in created[0] and created[0]["time"]
    assert files_holding(VALUE, [*data_dirs, *(n.log_path for n in cluster.nodes)]) == []
    root = Path(docker_client.info()["DockerRootDir"])
    containers = [root / "containers" / t["containerId"] for t in replicas]
    assert files_holding(VALUE, containers) == []
    assert files_holding(VALUE, [cluster.root], skip=[cluster.root / "run"]) == []


def test_a_secret_update_rolls_the_service_with_max_parallel_respected(cluster, docker_client):
    count, parallel = 4, 2
    resp = cluster.nodes[0].put("/services/web", json=spec(count, parallel))
    assert resp.status_code in (200, 201), resp.text
    version = resp.json()["version"]
    wait_service(cluster, version, count)

    most, stop = [0], threading.Event()

    def watch() -> None:
        while not stop.is_set():
            tasks = cluster.nodes[0].get("/tasks?service=web").json()
            live = [t for t in tasks if t["desired"] == "run" and t["state"] in ("pending", "assigned", "running")]
            most[0] = max(most[0], len(live) - count)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    updated = cli(cluster, "secret", "update", "db", "-f", "-", stdin=NEXT.encode())
    assert updated.returncode == 0 and "rolling service(s) web" in updated.stdout.decode(), updated.stderr
    replicas = wait_service(cluster, version + 1, count)
    stop.set()
    watcher.join()
    assert 1 <= most[0] <= parallel, f"{most[0]} replicas in flight beyond count, maxParallel {parallel}"
    update = audit_records([n.data_dir for n in cluster.nodes], "/secrets/db")
    assert [(r["method"], r["status"], r["body"]) for r in update] == [("PUT", 201, {"data": "<redacted>"})]
    assert {in_container(docker_client, t["containerId"], "cat", "/run/secrets/db") for t in replicas} == {NEXT}
    history = cluster.nodes[0].get("/services/web/versions").json()
    assert "secrets" in cli(cluster, "service", "history", "web").stdout.decode() or history[-1]["version"] > version


def test_a_secret_in_use_cannot_be_deleted(cluster):
    refused = cluster.nodes[1].delete("/secrets/db")
    assert refused.status_code == 409 and "in use by service(s) web" in refused.json()["error"]
    by_cli = cli(cluster, "secret", "rm", "db")
    assert by_cli.returncode == 1 and "in use by service(s) web" in by_cli.stderr.decode()
    assert cluster.nodes[1].get("/secrets/db").status_code == 200
    refusals = [r for r in audit_records([n.data_dir for n in cluster.nodes], "/secrets/db") if r["method"] == "DELETE"]
    assert [r["status"] for r in refusals] == [409, 409]  # a refused write is audited too


def test_an_agent_without_the_cluster_key_refuses_to_start_with_exit_2_and_one_line(cluster):
    node = cluster.nodes[2]
    cluster.kill(node, signal.SIGTERM)
    args = [*ORION, "agent", "--id", node.id, "--port", str(node.port), "--raft-port", str(node.raft_port),
            "--gossip-port", str(node.gossip_port), "--data-dir", str(node.data_dir),
            "--docker-host", node.docker_host]
    env = {**os.environ, "ORION_RAFT_SECRET": cluster.secret, **cluster.extra_env}
    env.pop("ORION_CLUSTER_KEY_FILE", None)
    refused = subprocess.run(args, env=env, capture_output=True, timeout=60, check=False)
    lines = refused.stderr.decode().strip().splitlines()
    assert refused.returncode == 2 and len(lines) == 1, refused.stderr
    assert lines[0].startswith("Error: --cluster-key-file: this node's cluster holds secrets")
    cluster.restart(node)  # with its key again


def test_a_key_rotation_keeps_every_secret_readable_by_tasks(cluster, docker_client):
    old = key_file(cluster, 0).read_text().strip()
    new = new_key()
    new_id = parse_keyring(new).primary_id
    for i, node in enumerate(cluster.nodes):  # 1. the new key first, the old after; one node at a time
        write_key_file(key_file(cluster, i), new, old)
        cluster.kill(node, signal.SIGTERM)
        cluster.restart(node)
    cluster.wait(lambda: all(new_id in n["keyIds"] for n in cluster.nodes[0].get("/nodes").json()), 30,
                 "every node announcing the new key")
    rotated = cli(cluster, "--json", "secret", "rotate")  # 2. everything sealed again with it
    assert rotated.returncode == 0, rotated.stderr
    answer = json.loads(rotated.stdout)
    assert answer["key"] == new_id and answer["resealed"] >= 2 and answer["remaining"] == {}
    assert cluster.nodes[0].get("/secrets/db").json()["keyId"] == new_id
    for i, node in enumerate(cluster.nodes):  # 3. the old key retired
        write_key_file(key_file(cluster, i), new)
        cluster.kill(node, signal.SIGTERM)
        cluster.restart(node)
    version = cluster.nodes[0].get("/services/web").json()["version"]
    resp = cluster.nodes[0].put("/services/web", json={**spec(4, 2), "env": {"ROTATED": "1"}})  # new containers
    assert resp.status_code == 201, resp.text
    replicas = wait_service(cluster, version + 1, 4)
    assert {in_container(docker_client, t["containerId"], "cat", "/run/secrets/db") for t in replicas} == {NEXT}
    assert files_holding(NEXT, [n.data_dir for n in cluster.nodes]) == []


def test_a_secret_as_an_environment_variable_is_there_and_only_there(cluster, docker_client):
    value = "orion-env-" + pysecrets.token_hex(8)
    assert cluster.nodes[0].post("/secrets", json={"name": "apikey", "data": b64(value)}).status_code == 201
    resp = cluster.nodes[0].post("/tasks", json={"image": "orion/busybox:latest", "memory": "16M",
                                                  "command": ["sleep", "3600"],
                                                  "env": {"API_KEY": {"secret": "apikey"}}})
    assert resp.status_code == 201, resp.text
    task_id = resp.json()["id"]
    task = cluster.wait(lambda: (t := cluster.nodes[0].get(f"/tasks/{task_id}").json())["state"] == "running" and t,
                        60, "the env task running")
    assert in_container(docker_client, task["containerId"], "sh", "-c", "printf %s \"$API_KEY\"") == value
    assert task["env"] == {"API_KEY": {"secret": "apikey"}} and not holds(value, str(task))
    assert cluster.nodes[0].delete(f"/tasks/{task_id}").status_code == 202

