"""The runner of :mod:`orion.node.registration`: keep this node's record true and the
cluster named. Wakes on every apply (a restore is one), or each period; reads the local
replica (cheap) and writes only when the planner says so. Started once the node registered
(``orion/agent/compose.py``), so it never races the first registration.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from orion.domain.model import NodeInfo
from orion.loop import PassResult, run_loop
from orion.node import registration
from orion.store.port import Store

log = logging.getLogger("orion.node.registration")


class RegistrationLoop:
    """One thread; ``run_once`` is one pass and returns what it did."""

    def __init__(self, info: NodeInfo, store: Store, *, interval: float, write_timeout: float) -> None:
        self.info = info
        self._store = store
        self._interval = interval
        self._timeout = write_timeout
        self._wake = threading.Event()
        store.add_listener(lambda _index: self._wake.set())

    def run_once(self) -> PassResult[None]:
        def view(m: Any) -> tuple[NodeInfo | None, str, int]:
            return m.node(self.info.id), m.cluster_id, m.log_version()

        (record, cluster_id, log_version), _ = self._store.read(view)
        commands, sentence = registration.plan(record, self.info, cluster_id, log_version)
        for command in commands:
            self._store.submit(command, self._timeout)  # a refused naming lost a race: fine
        return PassResult(sentence or "record true", acted=bool(commands))

    def run_forever(self, stop: threading.Event) -> None:
        self._wake.set()
        run_loop(f"registration {self.info.id}", log, self._wake, self._interval, stop, self.run_once)
