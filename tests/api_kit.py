"""An in-process API for tests: one registered node and a placer thread standing in
for the leader's placement loop (tests/unit/api, tests/unit/cli)."""

from __future__ import annotations

import threading
from typing import Any

from orion.domain.model import NodeInfo, NoFitKind, Resources
from orion.state.commands import MarkUnschedulable, Placement, PlaceTasks
from orion.store.local import LocalStore

GiB = 1 << 30

NODE = NodeInfo(id="node1", api_addr="127.0.0.1:8000", raft_addr="local",
                capacity=Resources(memory=4 * GiB, cpu_millis=2000), labels=(("zone", "a"),))


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

