"""Every listing in every output format, --watch, version and completion, against the real app.

The server is the real Flask app (with the cluster blueprint, for ``orion
members``) over a LocalStore on a loopback socket; tasks are placed by writing
the placement the leader would. ``--watch`` runs as a real ``orion`` process
against it, so its output is read line by line as a terminal or a pipe gets it.
"""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result
from parts import api_deps
from werkzeug.serving import make_server

from orion.api.app import create_app
from orion.api.cluster import cluster_blueprint
from orion.api.ops import ops_blueprint
from orion.cli.columns import TASK_COLUMNS
from orion.cli.main import main
from orion.cli.output import Column, render
from orion.domain.model import NodeInfo, Resources
from orion.state.commands import Placement, PlaceTasks, RegisterNode
from orion.store.local import LocalStore
from orion.version import orion_version

ORION = str(Path(sys.executable).parent / "orion")
NODE = NodeInfo(id="node1", api_addr="127.0.0.1:8000", raft_addr="local",
                capacity=Resources(memory=4 << 30, cpu_millis=2000), labels=(("zone", "a"),))
# A node without a Raft address: a non-voting replica, shown by `orion members`.
REPLICA = NodeInfo(id="node2", api_addr="127.0.0.1:8001", raft_addr="",
                   capacity=Resources(memory=1 << 30, cpu_millis=1000))
# Generous: the figure itself (a change shows within milliseconds) is bench/cli_watch.py's.
WATCH_TIMEOUT = 10.0

TASK_HEADER = ["ID", "NAME", "IMAGE", "STATE", "NODE", "PORTS", "MEMORY", "CPU", "REASON"]
TASK_WIDE = ["ID", "NAME", "IMAGE", "STATE", "NODE", "PORTS", "IP", "MEMORY", "CPU", "DESIRED", "RESTARTS", "EXIT",
             "GEN", "REASON"]
NODE_HEADER = ["NODE", "STATUS", "READY", "GOSSIP", "API", "MEMORY USED/CAP", "CPU USED/CAP", "LABELS"]
NODE_WIDE = ["NODE", "STATUS", "READY", "GOSSIP", "API", "RAFT", "GOSSIP ADDR", "MEMORY USED/CAP", "CPU USED/CAP",
             "PORTS IN USE", "SUBNET", "VTEP", "LABELS"]
MEMBER_HEADER = ["NODE", "RAFT", "ROLE", "GOSSIP", "STATUS"]
MEMBER_WIDE = [*MEMBER_HEADER, "GOSSIP ADDR"]


class Server:
    def __init__(self) -> None:
        self.store = LocalStore()
        self.store.submit(RegisterNode(node=NODE), 1.0)
        self.store.submit(RegisterNode(node=REPLICA), 1.0)
        app = create_app(api_deps(self.store, placement_wait=0.0))
        app.register_blueprint(cluster_blueprint(self.store, "secret", 5, 1.0, ready=lambda: True))
        app.register_blueprint(ops_blueprint(self.store, 1.0))
        self.httpd = make_server("127.0.0.1", 0, app, threaded=True)
        self.addr = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def place(self, task_id: str) -> None:
        """What the leader's scheduler would commit: the task on node1."""
        task = self.store.read(lambda m: m.task(task_id))[0]
        self.store.submit(PlaceTasks(placements=(Placement(task_id, NODE.id, task.generation),)), 1.0)

    def close(self) -> None:
        self.httpd.shutdown()
        self.thread.join()
        self.httpd.server_close()


def orion(server: Server | str, *args: str) -> Result:
    addr = server if isinstance(server, str) else server.addr
    return CliRunner(env={"ORION_ADDR": "", "ORION_API_TOKEN": ""}).invoke(main, ["--addr", addr, *args])


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    yield srv
    srv.close()


@pytest.fixture
def two_tasks(server: Server) -> list[str]:
    ids = [orion(server, "run", "nginx", "--name", f"web{i}", "-m", "8M", "-p", f"808{i}:80").stdout.strip()
           for i in range(2)]
    for task_id in ids:
        server.place(task_id)
    return ids


def _header(text: str) -> list[str]:
    """The header line split on the column gaps (two spaces or more; a header may hold one)."""
    return re.split(r" {2,}", text.splitlines()[0].strip())


LISTINGS = [  # (command, table header, wide header, id field of a JSON row)
    (["ps"], TASK_HEADER, TASK_WIDE, "id"),
    (["nodes"], NODE_HEADER, NODE_WIDE, "id"),
    (["members"], MEMBER_HEADER, MEMBER_WIDE, "nodeId"),
]


@pytest.mark.usefixtures("two_tasks")
@pytest.mark.parametrize(("command", "header", "wide", "id_field"), LISTINGS)
def test_each_listing_in_each_format(server: Server, command: list[str], header: list[str], wide: list[str],
                                     id_field: str) -> None:
    table = orion(server, *command)
    assert table.exit_code == 0, table.output
    assert _header(table.stdout) == header
    widened = orion(server, *command, "-o", "wide")
    assert _header(widened.stdout) == wide
    rows = json.loads(orion(server, *command, "-o", "json").stdout)
    assert isinstance(rows, list) and len(rows) == 2
    assert json.loads(orion(server, *command, "--json").stdout) == rows
    assert json.loads(orion(server, "--json", *command).stdout) == rows
    assert yaml.safe_load(orion(server, *command, "-o", "yaml").stdout) == rows
    ids = orion(server, *command, "-q").stdout.splitlines()
    assert ids == [row[id_field] for row in rows]
    assert len(table.stdout.splitlines()) >= 3  # the header and a line per row (then notes)


def test_ps_rows_are_the_api_answer(server: Server, two_tasks: list[str]) -> None:
    rows = json.loads(orion(server, "ps", "-o", "json").stdout)
    assert [r["id"] for r in rows] == two_tasks
    assert {r["name"]: r["ports"] for r in rows} == {"web0": {"80/tcp": 8080}, "web1": {"80/tcp": 8081}}


def test_ps_state_filter_and_quiet_feed_stop(server: Server, two_tasks: list[str]) -> None:
    waiting = orion(server, "run", "redis", "-m", "100Ti").stdout.strip()  # not placed: pending
    assert orion(server, "ps", "--state", "pending", "-q").stdout.split() == [waiting]
    assert orion(server, "ps", "--state", "assigned", "-q").stdout.split() == two_tasks
    assert orion(server, "stop", *orion(server, "ps", "-q", "--state", "assigned").stdout.split()).exit_code == 0
    assert orion(server, "ps", "--state", "assigned", "-q").stdout == ""
    bad = orion(server, "ps", "--state", "sleeping")
    assert bad.exit_code == 2 and "'sleeping' is not one of" in bad.stderr


def test_an_empty_listing_is_a_header_an_empty_list_or_nothing(server: Server) -> None:
    assert orion(server, "ps").stdout.split() == TASK_HEADER
    assert json.loads(orion(server, "ps", "-o", "json").stdout) == []
    assert yaml.safe_load(orion(server, "ps", "-o", "yaml").stdout) == []
    assert orion(server, "ps", "-q").stdout == ""


def test_members_shows_voters_and_replicas(server: Server) -> None:
    rows = json.loads(orion(server, "members", "-o", "json").stdout)
    assert [(r["nodeId"], r["raftAddr"], r["role"]) for r in rows] == [("node1", "local", "leader"),
                                                                       ("node2", None, "non-voter")]
    assert orion(server, "members").stdout.splitlines()[1].split()[:3] == ["node1", "local", "leader"]


def test_the_nodes_table_keeps_its_notes_out_of_json(server: Server) -> None:
    assert orion(server, "nodes").stdout.splitlines()[-1] == "(* = Raft leader)"
    assert "Raft leader" not in orion(server, "nodes", "-o", "yaml").stdout


def test_wide_shows_the_whole_reason() -> None:
    reason = "no node has 100 TiB of free memory; largest free: node1 3.9 GiB, node2 1.0 GiB, node3 0.5 GiB"
    row = {"id": "t1", "state": "pending", "reason": reason}
    assert render([row], TASK_COLUMNS, "table").splitlines()[1].endswith("...")
    assert render([row], TASK_COLUMNS, "wide").splitlines()[1].endswith(reason)


def test_render_is_the_helper_other_listings_use() -> None:
    columns = [Column("NAME", lambda r: r["name"]), Column("IMAGE", lambda r: r["image"], wide_only=True)]
    rows = [{"name": "web", "image": "nginx"}]
    assert render(rows, columns) == "NAME\nweb"
    assert render(rows, columns, "wide") == "NAME  IMAGE\nweb   nginx"
    assert render(rows, columns, quiet=True, ident=lambda r: r["name"]) == "web"
    assert render(rows, columns, "table", notes=["(a note)"]) == "NAME\nweb\n(a note)"
    assert render(rows, columns, "yaml") == "- name: web\n  image: nginx"
    with pytest.raises(ValueError, match="unknown output format"):
        render(rows, columns, "xml")


# -- --watch -------------------------------------------------------------------------------------
class Watch:
    """A real `orion ... --watch` process; its stdout lines arrive on a queue."""

    def __init__(self, addr: str, *args: str) -> None:
        self.proc = subprocess.Popen([ORION, "--addr", addr, *args, "--watch"], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, predicate) -> str:  # noqa: ANN001
        """The first line from now on that ``predicate`` accepts (fails after WATCH_TIMEOUT)."""
        while True:
            try:
                line = self.lines.get(timeout=WATCH_TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no such line within {WATCH_TIMEOUT}s; stderr: {self._stderr()}") from None
            if predicate(line):
                return line

    def _stderr(self) -> str:
        self.proc.kill()
        return self.proc.communicate()[1]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture
def watches() -> Iterator[list[Watch]]:
    started: list[Watch] = []
    yield started
    for watch in started:
        watch.close()


def test_ps_watch_prints_a_new_task_as_json_lines(server: Server, watches: list[Watch]) -> None:
    watch = Watch(server.addr, "ps", "-o", "json")
    watches.append(watch)
    assert json.loads(watch.until(lambda line: True)) == []
    task_id = orion(server, "run", "nginx", "-m", "8M").stdout.strip()
    rows = json.loads(watch.until(lambda line: task_id in line))  # one JSON document per line
    assert [(r["id"], r["state"]) for r in rows] == [(task_id, "pending")]
    server.place(task_id)
    (row,) = json.loads(watch.until(lambda line: '"assigned"' in line))
    assert (row["id"], row["nodeId"]) == (task_id, "node1")
    assert orion(server, "stop", task_id).exit_code == 0
    (row,) = json.loads(watch.until(lambda line: '"stopping"' in line))
    assert (row["id"], row["state"]) == (task_id, "stopping")


def test_nodes_watch_prints_tables_separated_by_a_blank_line(server: Server, watches: list[Watch]) -> None:
    watch = Watch(server.addr, "nodes")
    watches.append(watch)
    assert watch.until(lambda line: line.startswith("NODE")).split()[:2] == ["NODE", "STATUS"]
    server.store.submit(RegisterNode(node=NodeInfo(id="node3", api_addr="127.0.0.1:8003", raft_addr="",
                                                   capacity=Resources(memory=1 << 30, cpu_millis=1000))), 1.0)
    assert watch.until(lambda line: line == "") == ""
    assert watch.until(lambda line: line.startswith("NODE"))
    assert watch.until(lambda line: line.startswith("node3")).split()[:2] == ["node3", "alive"]


def test_a_watch_on_a_node_that_goes_away_ends_with_exit_1(watches: list[Watch]) -> None:
    srv = Server()
    watch = Watch(srv.addr, "nodes", "-q")  # nodes: each held read ends within NODE_WAIT
    watches.append(watch)
    srv.close()
    assert watch.proc.wait(timeout=WATCH_TIMEOUT) == 1
    assert "Error: " in watch.proc.stderr.read()


# -- errors that name the fix -------------------------------------------------------------------
@pytest.mark.parametrize(("args", "says"), [
    (["inspect", "nope"], "Error: no task nope (field: id); `orion ps -a` lists the task ids"),
    (["stop", "nope"], "Error: no task nope (field: id); `orion ps -a` lists the task ids"),
    (["scale", "nope", "2"], "Error: no task nope (field: id); `orion ps -a` lists the task ids"),
    (["node", "drain", "nope"], "Error: no node nope (field: id); `orion nodes` lists the node ids"),
])
def test_an_unknown_id_names_the_command_that_lists_them(server: Server, args: list[str], says: str) -> None:
    result = orion(server, *args)
    assert (result.exit_code, result.stderr.strip()) == (1, says)


def test_scale_and_drain_answer_as_before(server: Server, two_tasks: list[str]) -> None:
    scaled = orion(server, "scale", two_tasks[0], "2")
    assert scaled.exit_code == 0 and scaled.stdout.startswith("service ")
    assert json.loads(orion(server, "--json", "node", "drain", "node2").stdout)["id"] == "node2"


# -- version and completion ----------------------------------------------------------------------
def test_version_flag_and_command(server: Server) -> None:
    flag = CliRunner().invoke(main, ["--version"])
    assert (flag.exit_code, flag.stdout) == (0, f"orion {orion_version()}\n")
    both = orion(server, "version")
    assert both.exit_code == 0
    client, server_line = both.stdout.splitlines()
    assert client.startswith(f"client: {orion_version()} (python ")
    assert server_line == f"server: {orion_version()} (node node1 at {server.addr})"
    data = json.loads(orion(server, "version", "-o", "json").stdout)
    assert data["server"]["version"] == data["client"]["version"] == orion_version()


def test_version_without_a_server_prints_the_client_and_exits_1() -> None:
    result = orion("http://127.0.0.1:9", "version")
    assert result.exit_code == 1
    assert result.stdout.startswith(f"client: {orion_version()}")
    assert "cannot reach Orion at http://127.0.0.1:9" in result.stderr


@pytest.mark.parametrize(("shell", "marker"), [("bash", "complete -o nosort -F _orion_completion orion"),
                                               ("zsh", "compdef _orion_completion orion"),
                                               ("fish", "complete --no-files --command orion")])
def test_completion_prints_the_script(shell: str, marker: str) -> None:
    result = CliRunner().invoke(main, ["completion", shell])
    assert result.exit_code == 0
    assert marker in result.stdout and "_ORION_COMPLETE" in result.stdout


def test_completion_answers_for_commands_and_formats() -> None:
    env = {"_ORION_COMPLETE": "bash_complete", "COMP_WORDS": "orion ps -o ", "COMP_CWORD": "3"}
    done = subprocess.run([ORION], env=env, capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["plain,table", "plain,wide", "plain,json", "plain,yaml"]


def test_every_command_has_an_example() -> None:
    def walk(group, path):  # noqa: ANN001, ANN202
        for name, command in group.commands.items():
            yield f"{path} {name}", command
            if hasattr(command, "commands"):
                yield from walk(command, f"{path} {name}")

    missing = [name for name, command in walk(main, "orion")
               if not hasattr(command, "commands") and "orion" not in (command.epilog or "")]
    assert missing == []
