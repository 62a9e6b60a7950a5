"""The node's health-check runner over a real StateMachine (LocalStore) and real sockets.

The checks dial a real HTTP server on loopback (the "container address" the
fake runtime hands out is 127.0.0.1); exec checks go to a scripted runtime, the
one fake here, because a container is not what is under test. The clock is the
test's: a pass runs the checks that are due, the next pass folds their results.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.domain.service import HealthCheck, ServiceSpec, StartReplica
from orion.node.health_loop import NO_CHECK, HealthLoop
from orion.state.commands import (
    ApplyDeploymentPlan,
    Placement,
    PlaceTasks,
    PutService,
    RegisterNode,
    ReportTaskState,
    RestartTask,
)
from orion.store.local import LocalStore

STATUS = {"code": 200}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = b"ok" if STATUS["code"] == 200 else b"database unreachable"
        self.send_response(STATUS["code"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def port() -> Iterator[int]:
    STATUS["code"] = 200
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


class Runtime:
    """The container side of a check: an address, and exec answers scripted by the test."""

    def __init__(self) -> None:
        self.exec_answers: list[tuple[int, str]] = []

    def container_ip(self, container_id: str) -> str:
        return "127.0.0.1"

    def exec_in(self, container_id: str, argv: tuple[str, ...], timeout: float) -> tuple[int, str]:
        return self.exec_answers.pop(0)


class Node:
    def __init__(self, check: HealthCheck | None) -> None:
        self.store = LocalStore()
        self.store.submit(RegisterNode(node=NodeInfo("n1", "a", "r", capacity=Resources(1 << 33, 8000))), 1.0)
        spec = ServiceSpec("web", TaskSpec("app:1", 64 << 20), count=1, health_check=check)
        self.store.submit(PutService(spec=spec, at=0.0), 1.0)
        self.store.submit(ApplyDeploymentPlan(service="web", seq=1, step=0, state="running",
                                              start=(StartReplica("web.0.d1", 0, 1),), at=0.0), 1.0)
        self.store.submit(PlaceTasks(placements=(Placement("web.0.d1", "n1", 0),)), 1.0)
        self.running(1)
        self.runtime = Runtime()
        self.now = 100.0
        self.loop = self.new_loop()

    def new_loop(self) -> HealthLoop:
        return HealthLoop("n1", self.store, self.runtime, tick=0.25, workers=2, write_timeout=1.0,
                          clock=lambda: self.now)

    def running(self, generation: int) -> None:
        self.store.submit(ReportTaskState(task_id="web.0.d1", node_id="n1", generation=generation, state="running",
                                          container_id=f"c{generation}"), 1.0)

    def task(self):  # noqa: ANN201
        return self.store.read(lambda m: m.task("web.0.d1"))[0]

    def passes(self, seconds: float = 0.0) -> list[str | None]:
        """A pass (checks due start), then one once they finished (results folded in)."""
        self.now += seconds
        said = [self.loop.run_once()]
        for watch in list(self.loop._watches.values()):
            if watch.running is not None:
                watch.running.result(timeout=5)
        said.append(self.loop.run_once())
        return [p.sentence if p.acted else None for p in said]


def http_check(port: int, failures: int = 2) -> HealthCheck:
    return HealthCheck("http", port=f"{port}/tcp", path="/healthz", interval=5.0, timeout=1.0, failures=failures)


def test_a_replica_without_a_check_is_reported_healthy_once_while_it_runs():
    node = Node(None)
    assert node.passes() == ["reported web.0.d1 healthy", None]
    task = node.task()
    assert (task.health, task.health_since, task.health_output) == ("healthy", 100.0, NO_CHECK)
    assert node.passes(60.0) == [None, None]


def test_an_http_check_reports_healthy_then_unhealthy_then_the_replica_fails(port):
    node = Node(http_check(port))
    assert node.passes() == [None, "reported web.0.d1 healthy"]  # the first check runs at once
    assert (node.task().health, node.task().health_output) == ("healthy", "HTTP 200")
    assert node.passes(1.0) == [None, None]  # not due again before the interval
    STATUS["code"] = 503
    assert node.passes(5.0) == [None, None]  # one failure of two: still healthy
    assert node.passes(5.0) == [None, "reported web.0.d1 unhealthy"]
    assert node.task().health_output == "HTTP 503: database unreachable"
    assert node.loop.run_once().sentence == "reported web.0.d1 failed"
    task = node.task()
    assert (task.state, task.reason, task.health) == ("failed", "unhealthy: HTTP 503: database unreachable",
                                                      "unhealthy")


def test_a_new_placement_is_checked_afresh_and_its_predecessors_state_is_dropped(port):
    node = Node(http_check(port))
    node.passes()
    node.store.submit(ReportTaskState(task_id="web.0.d1", node_id="n1", generation=1, state="failed"), 1.0)
    node.store.submit(RestartTask(task_id="web.0.d1", generation=1, node_id="n1", at=node.now), 1.0)
    node.running(2)
    assert node.task().health == ""  # the machine forgot the old container's health
    assert node.passes(0.5) == [None, "reported web.0.d1 healthy"]
    assert set(node.loop._watches) == {("web.0.d1", 2)}


def test_an_exec_check_passes_on_exit_0_and_says_what_a_failure_printed():
    node = Node(HealthCheck("exec", argv=("pg_isready",), interval=5.0, timeout=1.0, failures=1))
    node.runtime.exec_answers = [(0, "accepting connections\n"), (2, "no response\n")]
    assert node.passes() == [None, "reported web.0.d1 healthy"]
    assert node.passes(5.0) == [None, "reported web.0.d1 unhealthy"]
    assert node.task().health_output == "no response"


def test_a_restarted_agent_does_not_report_a_healthy_replica_again(port):
    node = Node(http_check(port))
    node.passes()
    node.loop = node.new_loop()  # the agent restarted: its check state is gone, Raft's is not
    assert node.passes(1.0) == [None, None]
    assert node.task().health_since == 100.0
