"""Runs :func:`orion.node.lease.plan` against the replica: wakes on every apply.

An ``AcquireLease`` refused for what only the operator can fix (``FATAL``: the underlay's MTU
is below the overlay's; a host key or underlay address that is not one) cannot be helped by
asking again: ``on_refused`` is told the store's sentence once and the agent ends (exit 2, one
line: orion/agent/fatal.py). Every other refusal passes: the network not set yet, this node not
registered yet, an older node still reading the log (``log_version``, a rolling upgrade), the
pool exhausted until a dead host's lease is released; the next pass asks again. A refused
``InitNetwork`` means another node's settings won; nothing to do.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import replace

from orion.domain.network import NetworkSettings
from orion.loop import PassResult, run_loop
from orion.node.lease import HostFacts, plan
from orion.state.commands import AcquireLease
from orion.state.results import RefusalKind, Refused
from orion.store.port import Store, StoreError

log = logging.getLogger(__name__)


# The refusals of AcquireLease that end the agent: only the operator can fix them.
FATAL = frozenset({RefusalKind.MTU, RefusalKind.INVALID})


class LeaseLoop:
    """One thread; ``run_once`` is one pass and returns what it did."""

    def __init__(self, store: Store, facts: HostFacts, proposal: NetworkSettings, *, interval: float,
                 write_timeout: float, on_refused: Callable[[str], None]) -> None:
        self._store = store
        self.facts = facts
        self._proposal = proposal
        self._interval = interval
        self._write_timeout = write_timeout
        self._on_refused = on_refused
        self._wake = threading.Event()
        store.add_listener(lambda _index: self._wake.set())

    def run_once(self) -> PassResult[None]:
        host = self.facts.host
        (settings, lease), _ = self._store.read(lambda m: (m.network(), m.lease_of_host(host)))
        command = plan(settings, lease, self.facts, self._store.is_leader(), self._proposal)
        if command is None:
            return PassResult("lease held")
        try:
            result = self._store.submit(replace(command, request_id=uuid.uuid4().hex), self._write_timeout)
        except StoreError as exc:
            return PassResult(f"{command.TYPE} not committed yet: {exc}", acted=True)
        if not isinstance(result, Refused):
            return PassResult(f"{command.TYPE} applied", acted=True)
        if isinstance(command, AcquireLease) and result.kind in FATAL:
            self._on_refused(f"no subnet lease for host {self.facts.host[:12]} ({self.facts.underlay_ip}): "
                             f"{result.detail}")
        return PassResult(f"{command.TYPE} refused: {result.detail}", acted=True)

    def run_forever(self, stop_event: threading.Event) -> None:
        self._wake.set()
        run_loop("lease", log, self._wake, self._interval, stop_event, self.run_once)
