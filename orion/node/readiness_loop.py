"""The runner of :mod:`orion.node.readiness`: ping the engine, decide, and report a
change of readiness to the replicated registry.

Level-triggered like the reconciler: each pass compares its decision with what
the registry says about this node and submits ``SetNodeReadiness`` only when
they differ, so a lost write, a re-registration (which resets readiness) or a
new leader are all repaired by the next pass. It starts once the node is
registered (see ``orion/agent/compose.py``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable

from orion.loop import PassResult
from orion.node import readiness
from orion.state.commands import SetNodeReadiness
from orion.store.port import Store, StoreError

log = logging.getLogger("orion.node.readiness")


class ReadinessLoop:
    """One thread; ``run_once`` is one probe and returns what it did."""

    def __init__(self, node_id: str, store: Store, ping: Callable[[float], bool], *, grace: float,
                 interval: float, write_timeout: float, mono: Callable[[], float] = time.monotonic) -> None:
        self.node_id = node_id
        self._store = store
        self._ping = ping  # ping(timeout) -> does the engine answer
        self._grace = grace
        self._interval = interval
        self._timeout = write_timeout
        self._mono = mono
        self._last_answer = mono()
        self.decision = readiness.READY

    def run_once(self) -> PassResult[None]:
        """One probe; it acted when the registry's readiness differed from the decision (and
        it reported, or failed to)."""
        answered = self._ping(self._interval)  # slower than a probe period counts as no answer
        self._last_answer, self.decision = readiness.step(self._last_answer, answered, self._mono(), self._grace)
        node, _ = self._store.read(lambda m: m.node(self.node_id))
        if node is None:
            return PassResult("not registered")
        if node.ready == self.decision.ready:
            return PassResult("ready" if node.ready else f"not ready: {node.ready_reason}")
        command = SetNodeReadiness(request_id=uuid.uuid4().hex, node_id=self.node_id,
                                   ready=self.decision.ready, reason=self.decision.reason)
        try:
            self._store.submit(command, self._timeout)
            result = PassResult("reported ready: the engine answers" if self.decision.ready
                                else f"reported not ready: {self.decision.reason}", acted=True)
        except StoreError as exc:
            result = PassResult(f"readiness not reported: {exc}", acted=True)
        log.warning("node %s %s", self.node_id, result.sentence)
        return result

    def run_forever(self, stop: threading.Event) -> None:
        while not stop.is_set():
            started = self._mono()
            try:
                self.run_once()
            except Exception:
                log.exception("readiness %s: pass failed; retrying", self.node_id)
            stop.wait(max(0.0, self._interval - (self._mono() - started)))
