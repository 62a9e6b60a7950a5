"""The `orion` client commands against a real HTTP server on loopback.

The server is the real app (werkzeug, threaded) over a LocalStore with the
test placer from test_api, so every command crosses a real socket and the real
JSON, exactly as it would against an agent.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from api_kit import Placer, registered_store
from click.testing import CliRunner, Result
from parts import api_deps
from werkzeug.serving import make_server

from orion.api.app import create_app
from orion.cli.main import main, parse_publish
from orion.cli.render import human_bytes, ports_text, table
from orion.store.local import LocalStore

TOKEN = "t0ken"


class Server:
    def __init__(self, store: LocalStore, token: str | None = None) -> None:
        self.store = store
        self.placer = Placer(store)
        app = create_app(api_deps(store, api_token=token, placement_wait=30.0))
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.addr = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()
        self.placer.close()

    def tasks(self) -> list[Any]:
        return self.store.read(lambda m: m.tasks())[0]


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(registered_store())
    yield srv
    srv.close()


@pytest.fixture
def secured() -> Iterator[Server]:
    srv = Server(registered_store(), token=TOKEN)
    yield srv
    srv.close()


def orion(server: Server | str, *args: str, env: dict[str, str] | None = None) -> Result:
    addr = server if isinstance(server, str) else server.addr
    env = {"ORION_ADDR": "", "ORION_API_TOKEN": "", **(env or {})}
    return CliRunner(env=env).invoke(main, ["--addr", addr, *args])


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# -- run -----------------------------------------------------------------------------------------
def test_run_prints_the_id_and_where_it_went(server: Server) -> None:
    result = orion(server, "run", "nginx", "--memory", "100000000", "-p", "8080:80")
    assert result.exit_code == 0, result.output
    (task,) = server.tasks()
    assert result.stdout == f"{task.id}\n"
    assert f"{task.id}: assigned on node1, ports 8080->80/tcp" in result.stderr
    assert task.spec.memory == 100000000


def test_run_maps_every_option_onto_the_request(server: Server) -> None:
    result = orion(server, "run", "orion/busybox:latest", "--name", "web", "-m", "64M", "--cpu", "0.5",
                   "-p", "80", "-p", "53:53/udp", "-e", "A=1", "-e", "B=x=y", "--selector", "zone=a",
                   "--restart", "on-failure", "--pull", "never", "--", "httpd", "-f", "-p", "80")
    assert result.exit_code == 0, result.output
    (task,) = server.tasks()
    spec = task.spec
    assert (spec.image, spec.name, spec.memory, spec.cpu_millis) == ("orion/busybox:latest", "web", 64 << 20, 500)
    assert {p.key: p.host_port for p in spec.ports} == {"80/tcp": None, "53/udp": 53}
    assert spec.env == (("A", "1"), ("B", "x=y"))
    assert spec.node_selectors == (("zone", "a"),)
    assert (spec.restart_policy, spec.pull_policy) == ("on-failure", "never")
    assert spec.command == ("httpd", "-f", "-p", "80")


def test_run_count_and_idempotency_key(server: Server) -> None:
    first = orion(server, "run", "nginx", "-m", "8M", "--count", "2", "--idempotency-key", "k1")
    again = orion(server, "run", "nginx", "-m", "8M", "--count", "2", "--idempotency-key", "k1")
    assert first.exit_code == again.exit_code == 0
    assert len(first.stdout.split()) == 2
    assert again.stdout == first.stdout
    assert len(server.tasks()) == 2


def test_run_json_prints_the_api_answer(server: Server) -> None:
    result = orion(server, "--json", "run", "nginx", "-m", "8M")
    assert json.loads(result.stdout)["state"] == "assigned"


def test_an_api_refusal_names_the_field_and_exits_1(server: Server) -> None:
    result = orion(server, "run", "nginx", "--memory", "1000")
    assert result.exit_code == 1
    assert "memory: 1000 bytes is below the engine's minimum of 6 MiB; ask for at least 6M" in result.stderr
    assert_no_traceback(result)
    assert server.tasks() == []


@pytest.mark.parametrize("args", [
    ["run", "nginx"],                                  # --memory missing
    ["run", "nginx", "-m", "8M", "-p", "a:80"],
    ["run", "nginx", "-m", "8M", "-p", "1.2.3.4:80:80"],
    ["run", "nginx", "-m", "8M", "-p", "80", "-p", "9090:80"],
    ["run", "nginx", "-m", "8M", "-e", "NOT_SET_ANYWHERE_X"],
    ["run", "nginx", "-m", "8M", "--restart", "sometimes"],
    ["run", "nginx", "-m", "8M", "--count", "0"],
    ["frobnicate"],
])
def test_usage_errors_exit_2_and_send_nothing(server: Server, args: list[str]) -> None:
    result = orion(server, *args)
    assert result.exit_code == 2, result.output
    assert_no_traceback(result)
    assert server.tasks() == []


def test_parse_publish() -> None:
    assert parse_publish(("8080:80", "80/udp", "53:53/udp")) == {"80/tcp": "8080", "80/udp": "", "53/udp": "53"}


# -- reading and stopping ------------------------------------------------------------------------
def test_ps_lists_live_tasks_and_all_with_a_flag(server: Server) -> None:
    keep = orion(server, "run", "nginx", "--name", "keep", "-m", "8M", "-p", "8080:80").stdout.strip()
    gone = orion(server, "run", "redis", "-m", "100Ti").stdout.strip()  # fits nowhere: stops at once
    assert orion(server, "stop", gone).exit_code == 0
    lines = orion(server, "ps").stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "IMAGE", "STATE", "NODE", "PORTS", "MEMORY", "CPU", "REASON"]
    assert len(lines) == 2 and lines[1].split()[:6] == [keep, "keep", "nginx", "assigned", "node1", "8080->80/tcp"]
    assert gone in orion(server, "ps", "--all").stdout
    states = {t["id"]: t["state"] for t in json.loads(orion(server, "ps", "-a", "--json").stdout)}
    assert states == {keep: "assigned", gone: "stopped"}


def test_inspect_and_stop_unknown_ids_exit_1(server: Server) -> None:
    task_id = orion(server, "run", "nginx", "-m", "8M", "-e", "A=1").stdout.strip()
    shown = json.loads(orion(server, "inspect", task_id).stdout)
    assert (shown["id"], shown["env"]) == (task_id, {"A": "1"})
    for command in ("inspect", "stop"):
        result = orion(server, command, "nope")
        assert result.exit_code == 1
        assert "no task nope" in result.stderr
        assert_no_traceback(result)


def test_stop_prints_the_id_and_the_new_state(server: Server) -> None:
    task_id = orion(server, "run", "nginx", "-m", "8M").stdout.strip()
    result = orion(server, "stop", task_id)
    assert result.exit_code == 0
    assert result.stdout == f"{task_id}\n"
    assert f"{task_id}: stopping on node1" in result.stderr


def test_nodes_table_marks_the_leader(server: Server) -> None:
    orion(server, "run", "nginx", "-m", "1G", "--cpu", "0.5")
    out = orion(server, "nodes").stdout
    row = out.splitlines()[1].split()
    assert row == ["node1", "*", "alive", "yes", "-", "127.0.0.1:8000", "1Gi/4Gi", "0.5/2", "zone=a"]
    assert "(* = Raft leader)" in out


def test_status_is_0_with_a_leader_and_1_without(server: Server) -> None:
    orion(server, "run", "nginx", "-m", "8M")
    result = orion(server, "status")
    assert result.exit_code == 0, result.output
    assert "health:   ok" in result.stdout
    assert "tasks:    1 assigned" in result.stdout
    assert "nodes:    1 (1 alive)" in result.stdout
    server.store.leader = False
    result = orion(server, "status")
    assert result.exit_code == 1
    assert "NO LEADER" in result.stdout
    assert json.loads(orion(server, "status", "--json").stdout)["healthy"] is False


# -- reaching the cluster ------------------------------------------------------------------------
def test_connection_refused_says_what_to_do() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = orion(f"127.0.0.1:{port}", "ps")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"Error: cannot reach Orion at http://127.0.0.1:{port}: connection refused. "
        "Is `orion agent` running? Set --addr or ORION_ADDR."
    )
    assert_no_traceback(result)


def test_the_address_may_come_from_the_environment(server: Server) -> None:
    result = CliRunner(env={"ORION_ADDR": server.addr}).invoke(main, ["ps"])
    assert result.exit_code == 0
    assert result.stdout.startswith("ID")


def test_token_from_flag_or_environment(secured: Server) -> None:
    denied = orion(secured, "ps")
    assert denied.exit_code == 1
    assert "--token or ORION_API_TOKEN" in denied.stderr
    assert orion(secured, "--token", TOKEN, "ps").exit_code == 0
    assert orion(secured, "ps", env={"ORION_API_TOKEN": TOKEN}).exit_code == 0
    assert orion(secured, "--token", "wrong", "ps").exit_code == 1


# -- rendering -----------------------------------------------------------------------------------
def test_render_helpers() -> None:
    assert table(("A", "LONGER"), [("xx", None)]) == "A   LONGER\nxx"
    assert [human_bytes(n) for n in (512, 6 << 20, 1536 << 20, None)] == ["512", "6Mi", "1.5Gi", "-"]
    assert ports_text({"80/tcp": None, "53/udp": 5353}) == "5353->53/udp,?->80/tcp"
