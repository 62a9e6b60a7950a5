"""The store's side of ReadIndex (``patches.py`` rule 9): a request thread waits for its read point.

``RaftStore.barrier`` hands the engine a callback and waits for it: the engine
answers on its tick thread once this replica applied the leader's confirmed read
index (``read_index.py``), or says why it cannot (no leader reached, the leader
changed). Those two are retried within the deadline, as a write is: an election
ends within one or two election timeouts. Past the deadline the read is refused
with a sentence that says what was missing and that ``?stale`` reads the replica
as it is.

The engine counts every entry (NO_OPs and membership changes too); readers see the
machine of ``replica.py``, which during a resync keeps its old view until the
rebuilt one caught up: ``view_current`` waits for that too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from orion.raft.patches import Engine
from orion.raft.read_index import READ_LEADER_CHANGED, READ_NO_LEADER, READ_OK
from orion.store.port import LeaderContact, NoLeader, NotCaughtUp

STALE_HINT = "or add ?stale to read this node's replica as it is (X-Orion-Last-Contact says how old)"
# A refused read is asked again after this long: the leader is changing hands.
RETRY = 0.02


class ReadBarrier:
    """Waits for linearizable read points on whichever engine the store runs now."""

    def __init__(self, engine: Callable[[], Engine], view_current: Callable[[float], bool],
                 has_leader: Callable[[], bool]) -> None:
        """``view_current(timeout)``: True once readers see the machine the engine applies to
        (False past ``timeout``); ``has_leader``: this node reaches a leader with a quorum."""
        self._engine = engine
        self._view_current = view_current
        self._has_leader = has_leader
        self._started = time.monotonic()

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = READ_NO_LEADER
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._refusal(timeout, last)
            done = threading.Event()
            box: dict[str, Any] = {}

            def answered(index: int | None, code: int, box: dict = box, done: threading.Event = done) -> None:
                box["index"], box["code"] = index, code
                done.set()

            self._engine().read_index(answered)
            if not done.wait(remaining):
                last = READ_OK  # asked, but not confirmed and applied in time
                continue
            if box["code"] == READ_OK:
                if self._view_current(max(0.0, deadline - time.monotonic())):
                    return
                raise NotCaughtUp(f"this node's replica is being rebuilt and had not caught up within "
                                  f"{timeout:.1f}s: retry, {STALE_HINT}")
            last = box["code"]
            time.sleep(min(RETRY, max(0.0, deadline - time.monotonic())))

    def _refusal(self, timeout: float, last: int) -> Exception:
        if last == READ_NO_LEADER or not self._has_leader():
            return NoLeader(f"no Raft leader reachable from this node within {timeout:.1f}s, so a linearizable "
                            f"read cannot be confirmed: the cluster has no quorum or is electing; retry, {STALE_HINT}")
        if last == READ_LEADER_CHANGED:
            return NotCaughtUp(f"the Raft leader changed and none confirmed this read within {timeout:.1f}s; "
                               f"retry, {STALE_HINT}")
        return NotCaughtUp(f"this node had not caught up with the leader's commit index (or the leader had not "
                           f"confirmed it still leads) within {timeout:.1f}s; retry, {STALE_HINT}")

    def contact(self) -> LeaderContact:
        """X-Orion-Known-Leader and X-Orion-Last-Contact (0 on the leader)."""
        engine = self._engine()
        if engine._isLeader():
            return LeaderContact(known_leader=self._has_leader(), last_contact_ms=0)
        heard = engine.last_leader_contact
        since = time.monotonic() - (heard if heard is not None else self._started)
        return LeaderContact(known_leader=self._has_leader(), last_contact_ms=max(0, int(since * 1000)))
