"""Health checks against a real container (ORION_TEST_DOCKER_HOST): http and tcp dial the
container's engine address at its container port, exec runs through ``docker exec``
with its exit code, output and timeout."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest

from orion.domain.model import Task, TaskSpec
from orion.domain.service import HealthCheck
from orion.node.health_checks import run_check
from orion.runtime.docker import DockerRuntime

pytestmark = pytest.mark.docker


@pytest.fixture
def running(docker_host, node_id, test_image) -> Iterator[tuple[DockerRuntime, Task]]:
    runtime = DockerRuntime(docker_host)
    task = Task(id=f"t-{uuid.uuid4().hex[:8]}", spec=TaskSpec(image=test_image, memory=32 << 20), state="assigned",
                node_id=node_id, generation=1)
    state = runtime.start(task, node_id)
    yield runtime, replace(task, state="running", container_id=state.container_id)
    runtime.close()


def eventually(check, deadline: float = 10.0):  # noqa: ANN001, ANN201
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result.ok or time.monotonic() > end:
            return result
        time.sleep(0.1)


def test_http_and_tcp_checks_dial_the_container_address(running):
    runtime, task = running
    ip = runtime.container_ip(task.container_id)
    assert ip.count(".") == 3
    http = HealthCheck("http", port="80/tcp", path="/index.html", timeout=1.0)
    assert eventually(lambda: run_check(runtime, task, http, ip)).output == "HTTP 200"
    assert run_check(runtime, task, replace(http, path="/missing"), ip).output.startswith("HTTP 404")
    assert run_check(runtime, task, HealthCheck("tcp", port="80/tcp", timeout=1.0), ip).ok
    refused = run_check(runtime, task, HealthCheck("tcp", port="81/tcp", timeout=1.0), ip)
    assert not refused.ok and f"tcp {ip}:81" in refused.output


def test_exec_checks_pass_on_exit_0_and_fail_with_what_they_printed_or_their_timeout(running):
    runtime, task = running
    ok = run_check(runtime, task, HealthCheck("exec", argv=("sh", "-c", "echo ready"), timeout=2.0), "")
    assert (ok.ok, ok.output) == (True, "ready")
    bad = run_check(runtime, task, HealthCheck("exec", argv=("sh", "-c", "echo no db >&2; exit 3"), timeout=2.0), "")
    assert (bad.ok, bad.output) == (False, "no db")
    slow = run_check(runtime, task, HealthCheck("exec", argv=("sleep", "5"), timeout=0.5), "")
    assert not slow.ok and "timed out after 0.5s" in slow.output
    missing = run_check(runtime, task, HealthCheck("exec", argv=("no-such-binary",), timeout=2.0), "")
    assert not missing.ok
