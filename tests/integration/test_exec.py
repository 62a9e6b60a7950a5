"""``orion exec``, scoped tokens and the audit log on a real 3-node cluster (gunicorn, Docker).

Every exec goes through a node that does not run the task, so each one is forwarded
(TLS: tests/integration/test_tls.py). The tokens come from a tokens file: ``ops``
(admin), ``ci`` (write), ``viewer`` (read), beside the agents' own admin token.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from harness import ORION, Cluster, Node, remove_containers
from test_top import Tmux

from orion.api.exec_wire import Target, Upgraded, dial
from orion.api.tokens import token_hash

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

CLUSTER_TOKEN, OPS, CI, VIEWER = (f"{who}-{uuid.uuid4().hex}" for who in ("cluster", "ops", "ci", "viewer"))
SECRET = f"hunter2-{uuid.uuid4().hex}"
# Small, so that the writes of this module rotate the log: each record is ~250-500 bytes.
AUDIT_BYTES, AUDIT_FILES = 64 * 1024, 3
# Fewer request threads than open sessions: a session that held one would starve /health.
HTTP_THREADS, MAX_SESSIONS = 2, 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, docker_host, docker_client):
    root = tmp_path_factory.mktemp("exec-cluster")
    tokens = root / "tokens.toml"
    tokens.write_text("".join(f'[[token]]\nname = "{name}"\nscope = "{scope}"\nsha256 = "{token_hash(value)}"\n\n'
                              for name, scope, value in (("ops", "admin", OPS), ("ci", "write", CI),
                                                         ("viewer", "read", VIEWER))))
    c = Cluster(root=root, docker_host=docker_host,
                extra_env={"ORION_API_TOKEN": CLUSTER_TOKEN, "ORION_API_TOKENS_FILE": str(tokens),
                           "ORION_AUDIT_LOG_MAX_BYTES": str(AUDIT_BYTES), "ORION_AUDIT_LOG_FILES": str(AUDIT_FILES),
                           "ORION_HTTP_THREADS": str(HTTP_THREADS), "ORION_MAX_EXEC_SESSIONS": str(MAX_SESSIONS)},
                client={"headers": {"Authorization": f"Bearer {OPS}"}})
    remove_containers(docker_client, c)
    try:
        c.start()
        yield c
    finally:
        c.stop()
        remove_containers(docker_client, c)


@pytest.fixture(autouse=True)
def _logs_on_failure(request, cluster):
    request.node.orion_cluster = cluster


@pytest.fixture(scope="module")
def task(cluster, test_image) -> dict:
    first = cluster.nodes[0]
    created = first.post("/tasks", json={"image": test_image, "memory": "16M", "command": ["sleep", "3600"]}).json()
    return cluster.wait(lambda: (t := first.get(f"/tasks/{created['id']}").json())["state"] == "running" and t,
                        60, "the task running")


@pytest.fixture(scope="module")
def via(cluster, task) -> Node:
    """A node that does not run the task: every exec through it is forwarded."""
    return next(n for n in cluster.nodes if n.id != task["nodeId"])


def orion(node: Node, *args: str, token: str = OPS, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "ORION_API_TOKEN": token}
    return subprocess.run([*ORION, "--addr", node.url, *args], input=stdin, capture_output=True, env=env,
                          timeout=60)


def audit_records(node: Node) -> list[dict]:
    """Every record the node kept, oldest first (the rotated files first)."""
    directory = node.data_dir
    files = sorted(directory.glob("audit.log.*"), key=lambda p: -int(p.suffix[1:])) + [directory / "audit.log"]
    return [json.loads(line) for path in files if path.exists() for line in path.read_text().splitlines()]


def test_exit_3_comes_back_as_3_through_a_node_that_does_not_run_the_task(task, via) -> None:
    done = orion(via, "exec", task["id"], "--", "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (done.returncode, done.stdout, done.stderr) == (3, b"out\n", b"err\n")
    assert orion(via, "exec", task["id"], "--", "true").returncode == 0


def test_stdin_is_streamed_through_cat_and_a_large_input_comes_back_whole(task, via) -> None:
    done = orion(via, "exec", "-i", task["id"], "--", "cat", stdin=b"a line through cat\n")
    assert (done.returncode, done.stdout) == (0, b"a line through cat\n")
    payload = os.urandom(3 << 20)  # larger than every buffer on the way: back-pressure, both ways at once
    done = orion(via, "exec", "-i", task["id"], "--", "cat", stdin=payload)
    assert done.returncode == 0 and done.stdout == payload, done.stderr


def test_a_shell_under_tmux_shows_its_prompt_and_follows_the_terminals_size(task, via, tmp_path) -> None:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed: scripts/ensure-test-tools.sh installs it")
    exit_file = tmp_path / "exec-exit"
    session = Tmux(f"ORION_API_TOKEN={OPS} {ORION[0]} --addr {via.url} exec -it {task['id']} sh; "
                   f"echo $? > {exit_file}; sleep 60", width=100, height=30)
    try:
        session.wait_for(lambda s: "/ #" in s, 30, "the shell's prompt")
        session.keys("stty size", "Enter")
        session.wait_for(lambda s: "30 100" in s, 10, "the terminal's size inside the container")
        subprocess.run(["tmux", "resize-window", "-t", session.name, "-x", "120", "-y", "40"], check=True)
        time.sleep(0.5)  # SIGWINCH -> a resize frame -> the engine resizes the process's tty
        session.keys("stty size", "Enter")
        session.wait_for(lambda s: "40 120" in s, 10, "the new size inside the container")
        session.keys("exit 7", "Enter")
        deadline = time.monotonic() + 20
        while not (exit_file.exists() and exit_file.read_text().strip()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert exit_file.read_text().strip() == "7"
    finally:
        session.close()


def test_an_exec_is_audited_on_both_nodes_with_the_caller_and_its_exit_code(cluster, task, via) -> None:
    marker = uuid.uuid4().hex
    assert orion(via, "exec", task["id"], "--", "sh", "-c", f"exit 5 # {marker}").returncode == 5
    owner = next(n for n in cluster.nodes if n.id == task["nodeId"])
    for node, forwarded in ((via, ""), (owner, via.id)):
        mine = [r for r in audit_records(node) if r.get("action") == "exec" and marker in r["command"][-1]]
        assert [r["phase"] for r in mine] == ["start", "end"], node.id
        assert {(r["who"], r["scope"], r.get("via", "")) for r in mine} == {("ops", "admin", forwarded)}
        assert mine[-1]["exitCode"] == 5 and mine[-1]["ranOn"] == owner.id


def open_session(node: Node, task_id: str) -> Upgraded:
    target = Target(f"{node.url}/tasks/{task_id}/exec", headers={"Authorization": f"Bearer {OPS}"})
    return dial(target, json.dumps({"command": ["sleep", "60"]}).encode(), 10)


def test_sessions_hold_no_request_thread_and_one_past_the_limit_is_429(cluster, task, via) -> None:
    owner = next(n for n in cluster.nodes if n.id == task["nodeId"])
    sessions = [open_session(via, task["id"]) for _ in range(MAX_SESSIONS)]
    try:
        assert [s.status for s in sessions] == [101] * MAX_SESSIONS
        for node in (via, owner):  # more sessions than request threads on both, and both still answer
            started = time.monotonic()
            for _ in range(10):
                assert node.get("/health", timeout=2).status_code == 200
            assert time.monotonic() - started < 5
        refused = open_session(via, task["id"])
        assert (refused.status, refused.headers.get("Retry-After")) == (429, "5")
        assert "max_exec_sessions" in refused.json()["error"]
    finally:
        for session in sessions:
            if session.sock is not None:
                session.sock.close()
    again = cluster.wait(lambda: (s := open_session(via, task["id"])).status == 101 and s, 10,
                         "a slot given back when its client left")
    again.sock.close()


def operations(node: Node) -> list[tuple[str, str, str]]:
    """(METHOD, path, scope) of every operation the node's own document lists (the route table)."""
    doc = node.get("/v1/openapi.json").json()
    return [(method.upper(), path, op["x-orion-scope"]) for path, item in doc["paths"].items()
            for method, op in item.items() if "x-orion-scope" in op]


def concrete(path: str) -> str:
    return path.replace("{task_id}", "no-such-task").replace("{name}", "no-such-service") \
        .replace("{node_id}", "no-such-node").replace("{addr}", "127.0.0.1:1")


def call(node: Node, method: str, path: str, token: str) -> requests.Response:
    body = None if method == "GET" else {}
    return requests.request(method, node.url + concrete(path), json=body, timeout=10,
                            headers={"Authorization": f"Bearer {token}"})


def test_a_read_token_gets_403_on_every_write_and_each_write_is_one_audit_line(via) -> None:
    ops = operations(via)
    writes = [(m, p, s) for m, p, s in ops if m != "GET"]
    assert len(writes) >= 10
    before = len(audit_records(via))
    for method, path, scope in writes:
        resp = call(via, method, path, VIEWER)
        assert resp.status_code == 403, (method, path, resp.text)
        assert (resp.json()["needed"], resp.json()["scope"]) == (scope, "read")
    for method, path, scope in ops:
        if method == "GET" and "{" not in path and not path.endswith("/metrics") and scope == "read":
            assert call(via, method, path, VIEWER).status_code == 200, path
    added = audit_records(via)[before:]
    assert [(r["who"], r["method"], r["path"], r["status"]) for r in added] == \
        [("viewer", m, concrete(p), 403) for m, p, _ in writes]


def test_a_write_token_gets_403_on_admin_routes_only(via) -> None:
    for method, path, scope in operations(via):
        resp = call(via, method, path, CI)
        assert (resp.status_code == 403) == (scope == "admin"), (method, path, resp.status_code, resp.text)


def test_no_secret_value_is_in_any_audit_log(cluster, test_image, via) -> None:
    node = cluster.nodes[0]
    resp = node.post("/tasks", json={"image": test_image, "memory": "8M", "command": ["true"],
                                     "env": {"DB_PASSWORD": SECRET}})
    assert resp.status_code == 201
    node.post("/secrets", json={"name": "db", "value": SECRET})  # refused or taken, it is a write
    node.post("/registries", json={"server": "r.example", "username": "u", "password": SECRET})
    node.post("/tasks", data=f'{{"image": "{SECRET}"', headers={"Content-Type": "application/json"})
    assert orion(via, "exec", "-e", f"TOKEN={SECRET}", resp.json()["id"], "--", "true").returncode in (0, 1)
    for n in cluster.nodes:
        for path in n.data_dir.glob("audit.log*"):
            assert SECRET not in path.read_text(), path
    records = audit_records(node)
    assert any(r.get("path") == "/secrets" and r.get("body") == {"name": "<redacted>", "value": "<redacted>"}
               for r in records)


def test_the_audit_log_rotates_keeping_n_files(cluster) -> None:
    node = cluster.nodes[2]
    headers = {"Authorization": f"Bearer {CI}"}
    with requests.Session() as session:
        for i in range(AUDIT_FILES * AUDIT_BYTES // 200):
            session.delete(f"{node.url}/tasks/rotate-{i}", headers=headers, timeout=10)
    names = sorted(p.name for p in Path(node.data_dir).glob("audit.log*"))
    assert names == ["audit.log", "audit.log.1", "audit.log.2"]
    for name in names:
        assert (Path(node.data_dir) / name).stat().st_size <= AUDIT_BYTES
    assert audit_records(node)[-1]["path"] == f"/tasks/rotate-{AUDIT_FILES * AUDIT_BYTES // 200 - 1}"
