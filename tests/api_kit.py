"""An in-process API for tests: one registered node, a placer thread standing in
for the leader's placement loop, and the app with every part the agent mounts
(tests/unit/api, tests/unit/cli)."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from flask import Flask
from parts import api_deps

from orion.api.app import applied_signal, auth_of, create_app
from orion.api.cluster import cluster_blueprint
from orion.api.exec import ExecDeps, exec_blueprint
from orion.api.logs import LogsDeps, logs_blueprint
from orion.api.ops import ops_blueprint
from orion.api.services import services_blueprint
from orion.api.stacks import stacks_blueprint
from orion.domain.model import NodeInfo, NoFitKind, Resources
from orion.peer_http import PeerHttp
from orion.state.commands import MarkUnschedulable, Placement, PlaceTasks, RegisterNode
from orion.store.local import LocalStore

GiB = 1 << 30

NODE = NodeInfo(id="node1", api_addr="127.0.0.1:8000", raft_addr="local",
                capacity=Resources(memory=4 * GiB, cpu_millis=2000), labels=(("zone", "a"),))


def registered_store() -> LocalStore:
    """An in-process store with ``NODE`` registered."""
    store = LocalStore()
    store.submit(RegisterNode(node=NODE), 1.0)
    return store


class Placer:
    """Places what fits on ``NODE``, marks the rest unschedulable; runs in its own thread."""

    def __init__(self, store: LocalStore) -> None:
        self.store = store
        self.wake = threading.Event()
        self.stop = threading.Event()
        store.add_listener(lambda _i: self.wake.set())
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.wake.wait(0.5)
            self.wake.clear()
            pending, _ = self.store.read(lambda m: [t for t in m.pending_tasks() if not t.reason])
            for task in pending:
                if task.spec.memory <= NODE.capacity.memory:
                    cmd: Any = PlaceTasks(placements=(Placement(task.id, NODE.id, task.generation),))
                else:
                    cmd = MarkUnschedulable(task_id=task.id, reason="no node has 100 TiB of free memory",
                                            kind=NoFitKind.MEMORY)
                self.store.submit(cmd, 1.0)

    def close(self) -> None:
        self.stop.set()
        self.wake.set()
        self.thread.join()


def fake_metrics(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4")])
    return [b"orion_up 1\n"]


def full_app(store: LocalStore, **deps: Any) -> Flask:
    """Every part the agent mounts (orion/agent/compose.py), over an in-process store."""
    ids = itertools.count(1)
    settings = {"metrics_wsgi": fake_metrics, "placement_wait": 0.2,
                "id_factory": lambda: f"t{next(ids)}", **deps}
    app = create_app(api_deps(store, **settings))
    app.register_blueprint(cluster_blueprint(store, "secret", 3, 1.0, ready=lambda: True))
    app.register_blueprint(ops_blueprint(store, 1.0))
    app.register_blueprint(logs_blueprint(LogsDeps(store=store, node_id="node1", open_logs=lambda *a: None,
                                                   peer=PeerHttp(), max_follows=1)))
    app.register_blueprint(services_blueprint(store, 1.0, applied_signal(app)))
    app.register_blueprint(stacks_blueprint(store, 1.0))
    app.register_blueprint(exec_blueprint(ExecDeps(store=store, node_id="node1", open_exec=_no_engine, peer=PeerHttp(),
                                                   vouch=auth_of(app).vouch, max_sessions=1)))
    return app


def _no_engine(container_id: str, spec: Any) -> Any:
    raise AssertionError("no engine in the in-process API: exec is tested against a real one")
