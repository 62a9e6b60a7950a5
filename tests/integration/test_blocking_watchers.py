"""Watchers never starve a node (issue #20): blocking queries held by the agent's worker, not
by its request threads, on real agents (gunicorn, pysyncobj over TCP).

* 1,000 ``GET /tasks?index=N&wait=60s`` held on one node (one client thread, raw sockets:
  ``watch_kit.py``) while ``/health``, ``POST /tasks`` and ``GET /tasks`` on that node are
  timed: every one answers; each write reaches every watcher. The figures are printed (the
  precise comparison is bench/blocking_watchers.py); the bounds asserted are generous.
* SIGTERM answers every held read at once, and the agent stops as fast as without them.
* Beyond ``max_blocking_queries`` a watcher is told 429; a watcher that leaves frees its place.
* 100 followed logs on one node (a real Docker engine), and the next one is told 429.

The watcher tests need no Docker engine: their tasks carry a node selector nothing matches,
so they stay pending and no container starts.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import time
from collections.abc import Callable, Iterator

import pytest
import requests
from harness import Cluster, running
from watch_kit import Watchers, percentile

pytestmark = [pytest.mark.cluster]

NO_ENGINE = "unix:///nonexistent/orion-test-docker.sock"
TASK = {"image": "busybox", "memory": "8M", "nodeSelectors": {"test": "nowhere"}}


@pytest.fixture
def quiet_cluster(request, tmp_path) -> Iterator[Cluster]:
    """Three agents without an engine (``request.param``: more environment for them)."""
    c = Cluster(root=tmp_path, docker_host=NO_ENGINE, extra_env=getattr(request, "param", {}))
    request.node.orion_cluster = c  # conftest prints the agents' logs when a test fails
    try:
        c.start()
        yield c
    finally:
        c.stop()


def timings(call: Callable[[], requests.Response], samples: int) -> list[float]:
    """Milliseconds of ``samples`` calls, one at a time; each must succeed."""
    ms = []
    for _ in range(samples):
        t0 = time.perf_counter()
        resp = call()
        assert resp.status_code < 300, resp.text
        ms.append((time.perf_counter() - t0) * 1000)
    return ms


def figures(ms: list[float]) -> str:
    return f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms"


def measure(url: str, session: requests.Session, samples: int) -> dict[str, list[float]]:
    return {
        "GET /health": timings(lambda: session.get(url + "/health", timeout=10), samples),
        "POST /tasks": timings(lambda: session.post(url + "/tasks", json=TASK, timeout=10), samples),
        "GET /tasks": timings(lambda: session.get(url + "/tasks", timeout=10), samples),
    }


def test_a_thousand_watchers_on_one_node_starve_nothing_and_see_each_write(quiet_cluster: Cluster) -> None:
    node = quiet_cluster.nodes[0]
    session = requests.Session()
    for _ in range(20):
        session.post(node.url + "/tasks", json=TASK, timeout=10)
    quiet = measure(node.url, session, 30)
    index = int(session.get(node.url + "/tasks", timeout=10).headers["X-Orion-Index"])
    watchers = Watchers("127.0.0.1", node.port, "/tasks", 1000)
    try:
        watchers.start(index)
        time.sleep(1.0)  # every request reaches its wait
        loaded = measure(node.url, session, 30)
        for what, ms in loaded.items():
            print(f"{what}: without watchers {figures(quiet[what])}; with 1,000 {figures(ms)}")
            # Generous: the machine is shared; before issue #20 these timed out at 16 watchers.
            assert percentile(ms, 0.99) < 5000, f"{what} with 1,000 watchers: {figures(ms)}"
        delays, firsts = [], []
        for _ in range(5):
            while watchers.sent < watchers.answered() + 1000:
                time.sleep(0.01)  # every watcher asked again after the last write
            time.sleep(0.2)
            held = int(session.get(node.url + "/tasks", timeout=10).headers["X-Orion-Index"])
            watchers.expect(held + 1)
            t0 = time.perf_counter()
            session.post(node.url + "/tasks", json=TASK, timeout=10)
            assert watchers.wait_for(15), f"not every watcher saw the write: {watchers.errors()[:3]}"
            ms = [(at - t0) * 1000 for at in watchers.first_answers_at_or_beyond(held + 1)]
            delays += ms
            firsts.append(min(ms))
        print(f"write -> each of 1,000 watchers: {figures(delays)}, last {max(delays):.0f} ms; "
              f"write -> first watcher: p50 {statistics.median(firsts):.1f} ms")
        assert watchers.errors() == []
        assert statistics.median(firsts) < 1000  # measured ~20-30 ms (bench/blocking_watchers.py)
        assert max(delays) < 10000
    finally:
        watchers.close()


def test_sigterm_answers_every_held_read_at_once(quiet_cluster: Cluster) -> None:
    node = quiet_cluster.nodes[1]
    index = int(node.get("/tasks").headers["X-Orion-Index"])
    watchers = Watchers(node.ip, node.port, "/tasks", 200, wait="5m")
    try:
        watchers.start(index)
        time.sleep(1.0)
        assert watchers.answered() == 0, "the reads were not held"
        t0 = time.monotonic()
        os.killpg(node.proc.pid, signal.SIGTERM)
        deadline = t0 + 3
        while watchers.answered() < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        answered = time.monotonic() - t0
        assert watchers.answered() >= 200, f"{watchers.answered()} of 200 held reads answered in 3 s"
        assert all(w.answers[0].status == 200 for w in watchers.watchers)
        node.proc.wait(timeout=30)
        gone = time.monotonic() - t0
        node.proc = None
        print(f"200 held reads answered {answered * 1000:.0f} ms after SIGTERM; agent gone after {gone:.1f} s")
        assert gone < 10, f"the agent took {gone:.1f} s to stop with 200 watchers"
    finally:
        watchers.close()


@pytest.mark.parametrize("quiet_cluster", [{"ORION_MAX_BLOCKING_QUERIES": "20"}], indirect=True)
def test_beyond_the_limit_a_watcher_is_told_429_and_one_that_leaves_frees_its_place(quiet_cluster: Cluster) -> None:
    node = quiet_cluster.nodes[0]
    index = int(node.get("/tasks").headers["X-Orion-Index"])
    held = Watchers("127.0.0.1", node.port, "/tasks", 20)
    held.start(index)
    try:
        time.sleep(0.5)
        refused = node.get(f"/tasks?index={index}&wait=30s")
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
        assert refused.json()["field"] == "index" and "max_blocking_queries" in refused.json()["error"]
        assert node.get("/health").status_code == 200
        assert node.get(f"/tasks?index={index - 1}").status_code == 200  # passed already: answered, not held
    finally:
        held.close()  # 20 clients leave while held
    deadline = time.monotonic() + 10
    while (answer := node.get(f"/tasks?index={index}&wait=100ms")).status_code == 429:
        assert time.monotonic() < deadline, "the places of the watchers that left were not freed"
        time.sleep(0.1)
    assert answer.status_code == 200


def open_follow(url_host: str, port: int, task_id: str) -> tuple[socket.socket, bytes]:
    """A followed log over a raw socket: the socket and what arrived first (status line on)."""
    sock = socket.create_connection((url_host, port), timeout=20)
    sock.sendall(f"GET /tasks/{task_id}/logs?follow=1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    got = b""
    while not _complete(got):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return sock, got


def _complete(got: bytes) -> bool:
    """A follow's first answer is in: a 200 up to the task's first line, any other status with the
    whole body its Content-Length announces (the server may write the body after the headers)."""
    head, sep, body = got.partition(b"\r\n\r\n")
    if not sep:
        return False
    if head.startswith(b"HTTP/1.1 200"):
        return b"ready" in body
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return len(body) >= length


@pytest.mark.docker
def test_a_hundred_followed_logs_on_one_node_and_the_next_is_told_429(tmp_path, docker_host, docker_client,
                                                                          test_image, request) -> None:
    c = Cluster(root=tmp_path, docker_host=docker_host)
    request.node.orion_cluster = c
    with running(c, docker_client):
        node = c.nodes[0]
        resp = node.post("/tasks", json={"image": test_image, "memory": 32 * 1024 * 1024,
                                         "command": ["sh", "-c", "echo ready; sleep 600"]})
        task = resp.json()
        running_task = c.wait(lambda: (t := node.get(f"/tasks/{task['id']}").json())["state"] == "running" and t,
                              60, "the task running")
        owner = next(n for n in c.nodes if n.id == running_task["nodeId"])
        follows = []
        try:
            for _ in range(100):
                sock, first = open_follow(owner.ip, owner.port, task["id"])
                follows.append(sock)
                assert first.startswith(b"HTTP/1.1 200") and b"ready" in first, first[:300]
            health = timings(lambda: owner.get("/health", timeout=10), 20)
            writes = timings(lambda: owner.post("/tasks", json=TASK, timeout=10), 10)
            print(f"with 100 followed logs: GET /health {figures(health)}, POST /tasks {figures(writes)}")
            sock, first = open_follow(owner.ip, owner.port, task["id"])
            sock.close()
            assert first.startswith(b"HTTP/1.1 429"), first[:300]
            assert b"max_log_follows" in first and b"Retry-After: 5" in first
        finally:
            for sock in follows:
                sock.close()
        # Their clients gone, the follows free their threads (within about POLL, streaming.py).
        again = c.wait(lambda: (r := open_follow(owner.ip, owner.port, task["id"]))[1].startswith(b"HTTP/1.1 200")
                       and r, 15, "a follow slot freed")
        again[0].close()
        node.delete(f"/tasks/{task['id']}")
