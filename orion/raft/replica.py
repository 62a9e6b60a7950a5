"""The machine a store's readers see, its applied index, and the one a resync rebuilds.

A resync (``store.py``, after the truncation watch of ``patches.py`` heard applied
entries truncated) restarts the engine from the journal and snapshot: the
machine is rebuilt from what the log holds now. Readers keep the old view until
the rebuilt machine has reached the index they saw (a reconciler must never see
an empty state), then it takes its place. The machine itself comes from the
application the store was handed (``application.py``).

Not thread-safe: the store holds its lock around every call.
"""

from __future__ import annotations

import logging
from typing import Any, Generic, TypeVar

from orion.raft.application import Application

log = logging.getLogger("orion.raft")

M = TypeVar("M")


class Replica(Generic[M]):
    """``machine`` at ``applied``; during a resync, ``rebuilding`` catches up to ``until``."""

    def __init__(self, application: Application[M]) -> None:
        self._app = application
        self.machine: M = application.fresh()
        self.applied = 0
        self.rebuilding: M | None = None
        self._rebuild_index = self._until = 0

    def apply(self, entry: str, index: int) -> tuple[Any, bool]:
        """Apply one committed entry; (its result, whether readers see a new index)."""
        if self.rebuilding is not None:  # a resync: readers keep the old view until it caught up
            result = self._app.apply(self.rebuilding, entry, index)
            self._rebuild_index = index
            return result, self.swap_rebuilt(index >= self._until)
        result = self._app.apply(self.machine, entry, index)
        self.applied = index
        return result, True

    def dump(self) -> dict[str, Any]:
        """pysyncobj's snapshot: the machine being built (the one the log is applied to)."""
        if self.rebuilding is not None:
            return {"machine": self._app.snapshot(self.rebuilding), "applied": self._rebuild_index}
        return {"machine": self._app.snapshot(self.machine), "applied": self.applied}

    def load(self, data: dict[str, Any]) -> None:
        machine, index = self._app.restore(data["machine"]), int(data.get("applied", 0))
        if self.rebuilding is not None:
            self.rebuilding, self._rebuild_index = machine, index
            self.swap_rebuilt(index >= self._until)
        else:
            self.machine, self.applied = machine, index

    def restart(self, keep_view: bool) -> None:
        """A new engine replays the log from the start: into a machine built beside the one
        readers see (``keep_view``), or into a fresh one in its place."""
        if keep_view:
            self.rebuilding, self._rebuild_index, self._until = self._app.fresh(), 0, self.applied
        else:
            self.machine, self.applied = self._app.fresh(), 0

    def swap_rebuilt(self, caught_up: bool) -> bool:
        """Show the rebuilt machine once it has reached what readers saw."""
        if not caught_up or self.rebuilding is None:
            return False
        if self._rebuild_index < self._until:
            log.error("resync: the log now ends at %d, below the %d entries this replica had applied: "
                      "it had applied entries the cluster does not have", self._rebuild_index, self._until)
        self.machine, self.applied, self.rebuilding = self.rebuilding, self._rebuild_index, None
        log.warning("resync done: the machine was rebuilt from the journal up to index %d", self.applied)
        return True
