"""One http/tcp probe against real local sockets: what passes, what fails, and what it says."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from orion.node.health_checks import check_http, check_tcp


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        if self.path == "/slow":
            time.sleep(1.0)
        status = {"/ok": 200, "/moved": 302, "/down": 503, "/empty": 500}.get(self.path, 404)
        body = b"database unreachable\n" if status == 503 else b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_passes_on_2xx_and_3xx(server):
    assert check_http("127.0.0.1", server, "/ok", 2.0).ok
    moved = check_http("127.0.0.1", server, "/moved", 2.0)
    assert moved.ok and moved.output == "HTTP 302"


def test_http_fails_on_an_error_status_and_says_why(server):
    down = check_http("127.0.0.1", server, "/down", 2.0)
    assert not down.ok and down.output == "HTTP 503: database unreachable\n"
    assert check_http("127.0.0.1", server, "/empty", 2.0).output == "HTTP 500"
    assert not check_http("127.0.0.1", server, "/nothing-here", 2.0).ok


def test_http_fails_when_the_answer_is_late(server):
    late = check_http("127.0.0.1", server, "/slow", 0.2)
    assert not late.ok and late.output.endswith("timed out")


def test_http_and_tcp_fail_when_nothing_listens():
    port = closed_port()
    assert not check_http("127.0.0.1", port, "/ok", 1.0).ok
    refused = check_tcp("127.0.0.1", port, 1.0)
    assert not refused.ok and refused.output.startswith(f"tcp 127.0.0.1:{port}: ")


def test_tcp_passes_when_a_connection_opens(server):
    result = check_tcp("127.0.0.1", server, 1.0)
    assert result.ok and result.output == f"connected to 127.0.0.1:{server}"
