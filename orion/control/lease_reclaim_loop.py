"""The leader's lease pass: runs ``lease_reclaim.plan`` against Raft.

Runs on every node and acts only on the leader, like the healer: each pass reads one
snapshot of the leases and the registry, asks the planner, and submits one
``ReleaseLease`` per decision; the state machine re-checks each against the registry, so a
release decided just before a holder came back is refused, not applied. The only state
kept here is the planner's "gone since" clocks, dropped when this node stops leading.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from orion.control import lease_reclaim
from orion.loop import PassResult, run_loop
from orion.state.network import NETWORK_LOG_VERSION
from orion.state.results import Refused
from orion.store.port import Store

log = logging.getLogger("orion.leases")

NOT_LEADER = "not leader"
NOTHING = "nothing to release"


class LeaseReclaimLoop:
    """One thread; ``run_once`` is one pass and returns what it did."""

    def __init__(self, store: Store, grace: float, interval: float, write_timeout: float,
                 mono: Callable[[], float] = time.monotonic) -> None:
        self._store, self._grace, self._interval, self._timeout = store, grace, interval, write_timeout
        self._mono = mono
        self._gone_since: dict[str, lease_reclaim.Clock] = {}
        # Not woken by applies: nothing here is urgent (the grace is minutes, and a clean leave is
        # released inside the apply), so a busy leader pays one read per interval, not per write.
        self._wake = threading.Event()

    def run_once(self) -> PassResult[None]:
        if not self._store.is_leader():
            self._gone_since.clear()
            return PassResult(NOT_LEADER)

        def snapshot(m):  # noqa: ANN001, ANN202
            leases = m.leases()
            holders = {h for lease in leases for h in lease.holders}
            busy = {h for h in holders if m.tasks_on(h)}
            return leases, {n.id: n for n in m.nodes()}, busy, m.log_version()

        (leases, nodes, busy, log_version), _ = self._store.read(snapshot)
        if log_version < NETWORK_LOG_VERSION:  # a node could not read a ReleaseLease (and no lease exists)
            return PassResult(NOTHING)
        decided = lease_reclaim.plan(leases, nodes, busy, self._mono(), self._gone_since, self._grace)
        self._gone_since = decided.gone_since
        done = []
        for release in decided.releases:
            result = self._store.submit(release.command(), self._timeout)
            if isinstance(result, Refused):
                done.append(f"kept {release.subnet} of host {release.host}: {result.detail}")
            else:
                done.append(release.sentence)
        return PassResult("; ".join(done) or NOTHING, acted=bool(done))

    def run_forever(self, stop: threading.Event) -> None:
        run_loop("leases", log, self._wake, self._interval, stop, self.run_once)
