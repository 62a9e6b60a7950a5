"""Habits people bring from kubectl and nomad: the global options work after the command too
(``orion ps --addr URL``, ``orion top --addr URL``), and every call the CLI makes goes to the
versioned ``/v1`` paths (recorded at a real server on a loopback socket, for every command)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from api_kit import Placer, full_app, registered_store
from click.testing import CliRunner, Result
from werkzeug.serving import make_server

from orion.api.schema.openapi import PREFIX
from orion.cli.client import API_PREFIX, OrionClient, versioned
from orion.cli.common import GLOBAL_OPTIONS
from orion.cli.main import main

TOKEN = "t0ken"
NOWHERE = "http://127.0.0.1:1"  # nothing listens: a call that went there would fail


class Recording:
    """The real app behind a loopback socket, noting the path of every request it is asked."""

    def __init__(self, token: str | None = None) -> None:
        self.store = registered_store()
        self.placer = Placer(self.store)
        app = full_app(self.store, api_token=token)
        self.paths: list[str] = []

        def recorded(environ: dict[str, Any], start_response: Any) -> Any:
            self.paths.append(environ["PATH_INFO"])
            return app(environ, start_response)

        self.httpd = make_server("127.0.0.1", 0, recorded, threaded=True)
        self.addr = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()
        self.placer.close()


@pytest.fixture
def server() -> Iterator[Recording]:
    srv = Recording()
    yield srv
    srv.close()


@pytest.fixture
def secured() -> Iterator[Recording]:
    srv = Recording(token=TOKEN)
    yield srv
    srv.close()


def orion(*args: str) -> Result:
    return CliRunner(env={"ORION_ADDR": NOWHERE, "ORION_API_TOKEN": ""}).invoke(main, list(args), prog_name="orion")


# -- global options after the command -----------------------------------------------------------
def test_the_address_and_the_token_may_follow_the_command(secured):
    result = orion("ps", "--addr", secured.addr, "--token", TOKEN)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ID")
    run = orion("run", "nginx", "-m", "64M", "--addr", secured.addr, "--token", TOKEN, "--", "sleep", "--addr")
    assert run.exit_code == 0, run.output
    (task,) = secured.store.read(lambda m: m.tasks())[0]
    assert task.spec.command == ("sleep", "--addr")  # after --, the task's own arguments
    wrong = orion("ps", "--addr", secured.addr)  # no token: the flag after the command was what counted
    assert wrong.exit_code == 1 and "needs --token" in wrong.output


def test_an_option_after_the_command_wins_over_one_before_it(server):
    assert orion("--addr", NOWHERE, "nodes", "--addr", server.addr).exit_code == 0
    assert orion("--addr", server.addr, "nodes", "--addr", NOWHERE).exit_code == 1


def test_nested_commands_take_them_too_and_output_flags_work_on_either_side(server):
    listed = orion("service", "ls", "--addr", server.addr, "--json")
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output) == []
    for args in (("-o", "json", "nodes", "--addr", server.addr), ("nodes", "--addr", server.addr, "-o", "json"),
                 ("status", "-o", "json", "--addr", server.addr)):
        result = orion(*args)
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.output)
    wide = orion("-o", "wide", "status", "--addr", server.addr)
    assert wide.exit_code == 2 and "`orion status` prints text, or JSON with -o json" in wide.output
    shown = orion("-o", "yaml", "inspect", "nope", "--addr", server.addr)
    assert shown.exit_code == 1 and "no task" in shown.output  # yaml is one of inspect's formats
    assert "`orion inspect` prints json, yaml" in orion("-o", "wide", "inspect", "x").output


def client_commands(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if getattr(command, "orion_offline", False):
            continue
        if isinstance(command, click.Group):
            yield from client_commands(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_that_calls_the_api_takes_every_global_option_after_it():
    commands = list(client_commands())
    assert {("ps",), ("top",), ("service", "ls"), ("operator", "snapshot", "save")} <= set(commands)
    assert ("agent",) not in commands and ("operator", "raft", "recover") not in commands
    given = ["--addr", NOWHERE, "--token", "x", "--ca-cert", __file__, "--client-cert", __file__,
             "--client-key", __file__, "--timeout", "3", "--json", "-o", "json"]
    assert {d for g in GLOBAL_OPTIONS for d in g.decls} >= {a for a in given if a.startswith("-")}
    for command in commands:
        result = orion(*command, *given, "--help")  # an option it did not know would be "No such option"
        assert result.exit_code == 0, (command, result.output)


def test_the_agent_keeps_its_own_flags():
    result = orion("agent", "--addr", "x")
    assert result.exit_code == 2 and "No such option '--addr'" in result.output
    assert "--api-token" in orion("agent", "--help").output


def test_top_takes_them_and_then_wants_a_terminal():
    result = orion("top", "--addr", NOWHERE)
    assert result.exit_code == 1 and "orion top needs a terminal" in result.output


# -- /v1 -----------------------------------------------------------------------------------------
def test_the_client_prefix_is_the_apis():
    assert API_PREFIX == PREFIX
    assert [versioned(p) for p in ("/tasks", "/v1/tasks", "/v1", "/v10")] == ["/v1/tasks", "/v1/tasks", "/v1",
                                                                              "/v1/v10"]


def test_every_call_of_every_command_goes_to_a_v1_path(server, tmp_path: Path):
    def ok(*args: str) -> Result:
        result = orion("--addr", server.addr, *args)
        assert "Traceback" not in result.output and result.exit_code in (0, 1), (args, result.output)
        return result

    task_id = ok("run", "nginx", "-m", "64M").stdout.strip()
    service = tmp_path / "web.json"
    service.write_text(json.dumps({"name": "web", "image": "nginx", "memory": "64M", "count": 1}))
    for args in (("ps",), ("ps", "-a", "-o", "wide"), ("nodes",), ("members",), ("inspect", task_id),
                 ("logs", task_id), ("scale", task_id, "2"), ("stop", task_id), ("status",), ("version",),
                 ("service", "apply", "-f", str(service)), ("service", "ls"), ("service", "status", "web"),
                 ("service", "history", "web"), ("service", "rollback", "web"), ("service", "rm", "web"),
                 ("node", "drain", "node9"), ("operator", "snapshot", "save", str(tmp_path / "s.snap"))):
        ok(*args)
    OrionClient(server.addr).watch("/tasks", 0, 0.1)  # --watch and orion top: blocking queries
    asked = set(server.paths)
    assert {"/v1/tasks", f"/v1/tasks/{task_id}", f"/v1/tasks/{task_id}/logs", "/v1/nodes", "/v1/raft",
            "/v1/health", "/v1/cluster/members", "/v1/services", "/v1/services/web",
            "/v1/services/web/versions", "/v1/services/web/rollback", "/v1/nodes/node9/drain",
            "/v1/operator/snapshot"} <= asked
    assert [p for p in server.paths if not p.startswith("/v1/")] == []
