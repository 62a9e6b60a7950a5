"""`orion logs` against a node's real API on a loopback port (tests/log_kit.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from log_kit import TOKEN, Cluster

from orion.cli.main import main
from orion.runtime import LogQuery


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    c.task("t2", "node2", "c2")
    yield c
    c.close()


def orion(cluster: Cluster, *args: str):
    addr = f"http://127.0.0.1:{cluster.server.server_port}"
    return CliRunner().invoke(main, ["--addr", addr, "--token", TOKEN, "logs", *args])


def test_prints_the_log_as_written_and_passes_the_options(cluster):
    result = orion(cluster, "t2", "-n", "3", "-t", "--since", "1700000000")
    assert (result.exit_code, result.stdout_bytes) == (0, b"from node2\n")
    assert cluster.engine2.queries == [LogQuery(tail=3, since=1_700_000_000.0, timestamps=True)]


def test_follow_prints_new_lines_until_the_container_ends(cluster):
    def later() -> None:
        deadline = time.monotonic() + 10
        while not cluster.engine2.streams and time.monotonic() < deadline:
            time.sleep(0.01)
        cluster.engine2.streams[-1].feed(b"later\n")
        cluster.engine2.streams[-1].feed(None)

    threading.Thread(target=later, daemon=True).start()
    result = orion(cluster, "-f", "t2")
    assert (result.exit_code, result.stdout_bytes) == (0, b"from node2\nlater\n")
    assert cluster.engine2.queries[-1].follow


def test_a_refusal_is_one_line_and_exit_1(cluster):
    result = orion(cluster, "nope")
    assert result.exit_code == 1 and "no task nope (field: id)" in result.output
    cluster.task("waiting")
    result = orion(cluster, "waiting")
    assert result.exit_code == 1 and "task waiting has no container yet" in result.output
