"""Run one http or tcp health check against ``host:port``, bounded by a timeout.

The I/O half of ``orion/node/health.py``: a probe returns a
:class:`~orion.node.health.CheckResult` and never raises, because a check that
cannot connect is a failed check, not an error of the agent. Which address a
replica is dialled at (its published host port, or its address on the engine's
network) and exec checks (``docker exec``) come with the wiring.

HTTP passes on 200-399, as Kubernetes' httpGet does: a redirect from a
health endpoint still proves the server answers. The response body is read
only far enough to explain a failure.
"""

from __future__ import annotations

import http.client
import socket

from orion.node.health import OUTPUT_LIMIT, CheckResult


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
