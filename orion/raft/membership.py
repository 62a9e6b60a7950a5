"""Raft membership changes, made by the leader one at a time (the pysyncobj side of ``Store``).

pysyncobj applies a configuration entry as soon as it is appended and does not
hold back a second change while the first is uncommitted (it never sets
``__changeClusterIDx``, ``syncobj.py:1356-1369``): two joiners asking two
members at once could have two single-server changes in flight, which Raft's
safety argument for single-server changes does not cover. So every change —
an admission, autopilot's add or remove, a graceful leave — runs here, on the
leader, under one lock, and is waited for until committed before the next one
starts. A member that is not the leader refuses with :class:`NotLeader` (the
API forwards the request to the leader).

The admission decision itself is pure (``admission.decide``); this module runs
it against the leader's own configuration under that lock.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pysyncobj import FAIL_REASON, SyncObj

from orion.store.admission import VOTER, Admission, decide
from orion.store.port import MembershipAction, NotLeader, StoreError, WriteTimeout

# Reasons after which a membership entry may be sent again: not committed. REQUEST_DENIED
# is pysyncobj refusing any change until a new leader's no-op has committed.
_RETRY = {FAIL_REASON.QUEUE_FULL, FAIL_REASON.MISSING_LEADER, FAIL_REASON.DISCARDED, FAIL_REASON.NOT_LEADER,
          FAIL_REASON.LEADER_CHANGED, FAIL_REASON.UNKNOWN_OUTCOME, FAIL_REASON.REQUEST_DENIED}


def members_of(engine: SyncObj) -> list[str]:
    """The voters in ``engine``'s configuration (a read-only node is not one of them), sorted."""
    own = [engine.selfNode.address] if engine.selfNode is not None else []
    return sorted(own + [n.address for n in engine.otherNodes])


class RaftMembership:
    """The leader's membership changes. ``engine()`` is the current engine; ``engine_lock`` is
    held while a request is handed to it (the store may swap engines)."""

    def __init__(self, engine: Callable[[], SyncObj], engine_lock: threading.RLock,
                 is_leader: Callable[[], bool]) -> None:
        self._engine, self._engine_lock, self._is_leader = engine, engine_lock, is_leader
        self._lock = threading.Lock()

    def admit(self, addr: str, voter_cap: int, timeout: float) -> Admission:
        """Decide voter or replica for ``addr`` and, for a voter, add it and wait for the commit."""
        with self._leading(timeout) as deadline:
            decision = decide(members_of(self._engine()), voter_cap, addr)
            if decision.role != VOTER:
                return decision
            if addr in members_of(self._engine()):
                # Added before (an earlier leader, an attempt that timed out): the entry may not be
                # committed yet. A barrier — re-enabling the code version already enabled, a no-op
                # entry of pysyncobj's own — commits everything before it.
                self._commit(lambda e, cb: e.setCodeVersion(e.getCodeVersion(), cb), "barrier", deadline)
            else:
                self._commit(lambda e, cb: e.addNodeToCluster(addr, callback=cb), f"add {addr}", deadline)
            return decision

    def change(self, action: MembershipAction, addr: str, timeout: float) -> None:
        """Add or remove the voter ``addr`` and wait for the commit (a no-op when already so)."""
        with self._leading(timeout) as deadline:
            if (action == "add") == (addr in members_of(self._engine())):
                return
            if action == "add":
                self._commit(lambda e, cb: e.addNodeToCluster(addr, callback=cb), f"add {addr}", deadline)
            else:
                self._commit(lambda e, cb: e.removeNodeFromCluster(addr, callback=cb), f"remove {addr}",
                             deadline)

    @contextlib.contextmanager
    def _leading(self, timeout: float) -> Iterator[float]:
        """Hold the lock, on the leader; yields the deadline."""
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=timeout):
            raise WriteTimeout(f"another membership change was still running after {timeout:.1f}s")
        try:
            self._check_leader()
            yield deadline
        finally:
            self._lock.release()

    def _check_leader(self) -> None:
        if not self._is_leader():
            leader = self._engine()._getLeader()
            raise NotLeader(leader.address if leader is not None else None)

    def _commit(self, send: Callable[[SyncObj, Callable[[Any, int], None]], None], what: str,
                deadline: float) -> None:
        """Hand one entry to the engine and wait until it is committed, retrying within the deadline."""
        while True:
            done = threading.Event()
            box: dict[str, Any] = {}

            def callback(result: Any, error: int, box: dict = box, done: threading.Event = done) -> None:
                box["error"] = error
                done.set()

            with self._engine_lock:
                send(self._engine(), callback)
            if not done.wait(max(0.0, deadline - time.monotonic())):
                raise WriteTimeout(f"membership change ({what}) not committed in time; it may still apply")
            if box["error"] == FAIL_REASON.SUCCESS:
                return
            self._check_leader()
            if box["error"] not in _RETRY or time.monotonic() > deadline:
                raise StoreError(f"membership change ({what}) refused (reason {box['error']})")
            time.sleep(0.02)
