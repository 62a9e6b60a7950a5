"""Run one health check against a replica, bounded by a timeout.

The I/O half of ``orion/node/health.py``: a probe returns a
:class:`~orion.node.health.CheckResult` and never raises, because a check that
cannot connect is a failed check, not an error of the agent. http and tcp
checks dial the replica's address on its engine's network and its container
port, as the kubelet dials a pod's IP: every replica is reachable that way from
its own host, published or not, and a check never depends on which host port
the engine chose (a replica without an address, e.g. on the host network, is
dialled at its published port on loopback). exec checks run the command in the
container through the runtime (``docker exec``); exit 0 passes.

HTTP passes on 200-399, as Kubernetes' httpGet does: a redirect from a
health endpoint still proves the server answers. The response body is read
only far enough to explain a failure.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable, Mapping
from typing import Protocol

from orion.domain.model import Task
from orion.domain.service import HealthCheck
from orion.node.health import OUTPUT_LIMIT, CheckResult
from orion.runtime import RuntimeFailure


class CheckRuntime(Protocol):
    """What a check needs of the container runtime (``DockerRuntime`` has both)."""

    def container_ip(self, container_id: str) -> str:
        """The container's address on its engine's network ("" when it has none)."""

    def exec_in(self, container_id: str, argv: tuple[str, ...], timeout: float) -> tuple[int, str]:
        """Run ``argv`` in the container; (exit code, output). RuntimeFailure on a timeout."""


def check_tcp(host: str, port: int, timeout: float) -> CheckResult:
    """Passes if a TCP connection opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return CheckResult(True, f"connected to {host}:{port}")
    except OSError as exc:
        return CheckResult(False, f"tcp {host}:{port}: {_why(exc)}")


def check_http(host: str, port: int, path: str, timeout: float) -> CheckResult:
    """Passes if ``GET path`` answers 200-399 within ``timeout`` seconds (per socket operation)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "orion-health-check", "Connection": "close"})
        response = conn.getresponse()
        status = response.status
        if 200 <= status < 400:
            return CheckResult(True, f"HTTP {status}")
        body = response.read(OUTPUT_LIMIT).decode("utf-8", "replace")
        return CheckResult(False, f"HTTP {status}: {body}" if body.strip() else f"HTTP {status}")
    except (OSError, http.client.HTTPException) as exc:
        return CheckResult(False, f"GET http://{host}:{port}{path}: {_why(exc)}")
    finally:
        conn.close()


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return str(exc) or type(exc).__name__


def check_exec(run: Callable[[tuple[str, ...], float], tuple[int, str]], argv: tuple[str, ...],
               timeout: float) -> CheckResult:
    """Passes if ``argv`` exits 0 within ``timeout`` seconds; its output explains a failure."""
    try:
        code, output = run(argv, timeout)
    except RuntimeFailure as exc:
        return CheckResult(False, f"exec {argv[0]}: {exc}")
    text = output.strip()
    return CheckResult(code == 0, text if code == 0 or text else f"exit {code}")


def target(task: Task, check: HealthCheck, ip: str) -> tuple[str, int]:
    """Where an http/tcp check dials ``task``: its engine address and container port, or,
    without an address, loopback and the port the engine published for it."""
    port = int(check.port.partition("/")[0])
    if ip:
        return ip, port
    published: Mapping[str, int] = dict(task.host_ports)
    return "127.0.0.1", published.get(check.port, port)


def run_check(runtime: CheckRuntime, task: Task, check: HealthCheck, ip: str) -> CheckResult:
    """One check of ``task``'s container (``ip``: its engine address, see :func:`target`)."""
    container = task.container_id or ""
    if check.kind == "exec":
        return check_exec(lambda argv, timeout: runtime.exec_in(container, argv, timeout), check.argv,
                          check.timeout)
    host, port = target(task, check, ip)
    if check.kind == "http":
        return check_http(host, port, check.path, check.timeout)
    return check_tcp(host, port, check.timeout)
