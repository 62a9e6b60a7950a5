"""Start-up that explains itself: real `orion agent` processes against ports held by real processes.

Each port the agent needs, taken by another process, ends the agent within 2 s
with exit code 2 and one line naming the flag, the address and the holder (no
gunicorn retries, no traceback, no silent pysyncobj bind loop). Freed again, the
same command line starts a node that serves on the port it checked. No Docker
engine is needed: the agent is pointed at a socket that does not exist.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from harness import ORION, free_ports

pytestmark = pytest.mark.cluster

# A process that holds one port until killed, and says so once it does.
HOLDER = """
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[2] == "udp" else socket.SOCK_STREAM
sock = socket.socket(socket.AF_INET, kind)
sock.bind(("127.0.0.1", int(sys.argv[1])))
if kind == socket.SOCK_STREAM:
    sock.listen()
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def ports() -> dict[str, int]:
    api, gossip, raft = free_ports(3)
    return {"--port": api, "--gossip-port": gossip, "--raft-port": raft}


def agent_args(ports: dict[str, int], data_dir: Path) -> list[str]:
    return [*ORION, "agent", "--id", "startup1", "--bind", "127.0.0.1", "--insecure-raft", "--no-network",
            "--data-dir", str(data_dir), "--docker-host", "unix:///nonexistent/orion-startup.sock",
            *(str(x) for flag, port in ports.items() for x in (flag, port))]


@pytest.fixture
def hold() -> Iterator:
    held: list[subprocess.Popen] = []

    def start(port: int, proto: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(port), proto], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        held.append(proc)
        assert proc.stdout.readline().strip() == "holding"
        return proc

    yield start
    for proc in held:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(("flag", "proto"), [("--port", "tcp"), ("--gossip-port", "udp"),
                                             ("--gossip-port", "tcp"), ("--raft-port", "tcp")])
def test_a_taken_port_ends_the_agent_at_once_with_one_line(tmp_path, ports, hold, flag, proto) -> None:
    holder = hold(ports[flag], proto)
    started = time.monotonic()
    done = subprocess.run(agent_args(ports, tmp_path / "data"), capture_output=True, text=True, timeout=30)
    elapsed = time.monotonic() - started
    assert done.returncode == 2, done.stderr
    assert elapsed < 2.0, f"took {elapsed:.2f}s"
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"Error: {flag} 127.0.0.1:{ports[flag]} ({proto.upper()}) is already in use "
                               f"by pid {holder.pid} ({sys.executable} -c")
    assert lines[0].endswith(f"stop it or choose another {flag}")
    assert done.stdout == ""


def test_the_same_command_line_starts_once_the_ports_are_free(tmp_path, ports, hold) -> None:
    holder = hold(ports["--raft-port"], "tcp")
    assert subprocess.run(agent_args(ports, tmp_path / "data"), capture_output=True, timeout=30).returncode == 2
    holder.kill()
    holder.wait()
    log = (tmp_path / "agent.log").open("w")
    proc = subprocess.Popen(agent_args(ports, tmp_path / "data"), stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = requests.get(f"http://127.0.0.1:{ports['--port']}/health", timeout=1)
                if answer.status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still importing
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "agent.log").read_text()
            time.sleep(0.1)
        assert answer.json()["node"] == "startup1"
        version = subprocess.run([*ORION, "--addr", f"127.0.0.1:{ports['--port']}", "version"], capture_output=True,
                                 text=True, timeout=30)
        assert version.returncode == 0, version.stderr
        assert version.stdout.splitlines()[1] == (f"server: {answer.json()['version']} (node startup1 at "
                                                  f"http://127.0.0.1:{ports['--port']})")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    text = (tmp_path / "agent.log").read_text()
    assert "Connection in use" not in text and "Retrying" not in text


def test_an_unreadable_tls_file_is_one_line_and_exit_2(tmp_path, ports) -> None:
    args = [*agent_args(ports, tmp_path / "data"), "--tls-cert", str(tmp_path / "missing.pem"),
            "--tls-key", str(tmp_path / "missing-key.pem")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr == f"Error: --tls-cert: cannot read {tmp_path / 'missing.pem'}: No such file or directory\n"


def _until_healthy(proc: subprocess.Popen, port: int, bound: float, log_path: Path) -> dict:
    """The first 200 of /health within ``bound`` seconds, else fail with the agent's log."""
    deadline = time.monotonic() + bound
    while True:
        try:
            answer = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
            if answer.status_code == 200:
                return answer.json()
        except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still importing
            pass
        assert proc.poll() is None and time.monotonic() < deadline, \
            f"/health not ready within {bound}s:\n{log_path.read_text()}"
        time.sleep(0.05)


def test_a_single_node_cluster_is_ready_within_seconds_fresh_and_restarted(tmp_path, ports) -> None:
    """Issue #14: a fresh one-node cluster and the same node restarted on its data dir answer
    /health 200 well within 10 s (the goal is 1 s, measured by bench/start_ready.py): it
    elects itself without sitting out an election timeout, and its replica is caught up."""
    for run in ("fresh", "restarted"):
        log_path = tmp_path / f"agent-{run}.log"
        with log_path.open("w") as log:
            proc = subprocess.Popen(agent_args(ports, tmp_path / "data"), stdout=log, stderr=subprocess.STDOUT)
            try:
                body = _until_healthy(proc, ports["--port"], 10.0, log_path)
                assert body["status"] == "ok" and body["node"] == "startup1"
                assert body["leader"] == f"127.0.0.1:{ports['--raft-port']}"  # itself
            finally:
                proc.terminate()
                proc.wait(timeout=30)
