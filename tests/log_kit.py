"""A node's logs endpoint with a scripted engine, for tests of GET /tasks/<id>/logs and `orion logs`.

The one fake is the engine's log stream (``ScriptedLogs``): it hands out chunks a test feeds
while a request is open, which is what makes "a line printed after the request started"
deterministic. Everything else is real: the StateMachine in a LocalStore, the app with its
token, and node2 served on a loopback port so that forwarding crosses a real socket.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from flask import Flask
from parts import api_deps
from werkzeug.serving import make_server

from orion.api.app import create_app
from orion.api.logs import LogsDeps, logs_blueprint
from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.peer_http import PeerHttp
from orion.runtime import ContainerGone, LogQuery
from orion.state.commands import CreateTask, Placement, PlaceTasks, RegisterNode, ReportTaskState
from orion.state.results import Result
from orion.store.local import LocalStore

GiB = 1 << 30
NOW = 1_700_000_000.0
TOKEN = "cluster-token"


class ScriptedStream:
    """A container's output: the chunks given, then (follow) whatever is fed, until closed."""

    def __init__(self, chunks: list[bytes], follow: bool) -> None:
        self._items: queue.Queue[bytes | None] = queue.Queue()
        for chunk in chunks:
            self._items.put(chunk)
        if not follow:
            self._items.put(None)
        self.closed = threading.Event()

    def feed(self, chunk: bytes | None) -> None:
        self._items.put(chunk)

    def __iter__(self) -> Iterator[bytes]:
        while (item := self._items.get()) is not None:
            yield item

    def close(self) -> None:
        self.closed.set()
        self._items.put(None)


class ScriptedLogs:
    """One engine's logs by container id; remembers every stream it opened and what was asked."""

    def __init__(self, logs: dict[str, list[bytes]]) -> None:
        self.logs = logs
        self.queries: list[LogQuery] = []
        self.streams: list[ScriptedStream] = []

    def __call__(self, container_id: str, query: LogQuery) -> ScriptedStream:
        if container_id not in self.logs:
            raise ContainerGone(f"container {container_id} no longer exists")
        self.queries.append(query)
        self.streams.append(ScriptedStream(self.logs[container_id], query.follow))
        return self.streams[-1]


def node_app(store: LocalStore, node_id: str, engine: ScriptedLogs, max_follows: int = 2) -> Flask:
    """One node's API as the agent composes it: the token guards it, logs come from ``engine``."""
    app = create_app(api_deps(store, node_id=node_id, api_token=TOKEN))
    app.register_blueprint(logs_blueprint(LogsDeps(store=store, node_id=node_id, open_logs=engine,
                                                   peer=PeerHttp(token=TOKEN), max_follows=max_follows,
                                                   clock=lambda: NOW)))
    return app


class Cluster:
    """node1 answers through a test client; node2 is served on a real loopback port."""

    def __init__(self) -> None:
        self.store = LocalStore()
        self.engine1 = ScriptedLogs({"c1": [b"one\n", b"two\n"]})
        self.engine2 = ScriptedLogs({"c2": [b"from node2\n"]})
        self.server = make_server("127.0.0.1", 0, node_app(self.store, "node2", self.engine2), threaded=True)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        for node_id, addr in (("node1", "127.0.0.1:1"), ("node2", f"127.0.0.1:{self.server.server_port}")):
            self.submit(RegisterNode(node=NodeInfo(node_id, addr, f"{node_id}:7000",
                                                   capacity=Resources(8 * GiB, 4000))))
        self.client = node_app(self.store, "node1", self.engine1, max_follows=1).test_client()
        self.headers = {"Authorization": f"Bearer {TOKEN}"}

    def submit(self, command: Any) -> Result:
        return self.store.submit(command, 1.0)

    def task(self, task_id: str, node_id: str | None = None, container: str | None = None) -> None:
        self.submit(CreateTask(task_id=task_id, spec=TaskSpec("img", GiB)))
        if node_id:
            self.submit(PlaceTasks(placements=(Placement(task_id, node_id, 0),)))
        if container:
            self.submit(ReportTaskState(task_id=task_id, node_id=node_id or "", generation=1, state="running",
                                        container_id=container))

    def get(self, path: str, **kw: Any):
        return self.client.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def close(self) -> None:
        self.server.shutdown()
