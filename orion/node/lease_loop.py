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
from typing import Any

from orion.domain.network import NetworkSettings
from orion.loop import run_loop
from orion.node.lease import HostFacts, plan
from orion.state.network_commands import AcquireLease
from orion.store.port import Store, StoreError

log = logging.getLogger(__name__)


# The refusals of AcquireLease that end the agent (orion/state/network.py names the kinds).
FATAL = ("mtu", "invalid")


def refusal_kind(result: Any) -> str | None:
    """The kind of a refusal (``"mtu"``...), None when applied or unnamed."""
    if isinstance(result, dict):
        return str(result.get("kind")) if result.get("ok") is False and result.get("kind") else None
    kind = getattr(result, "kind", None)
    return str(kind) if kind is not None else None


def refusal(result: Any) -> str | None:
    """The refusal's sentence in a command's result, or None when it was applied."""
    if isinstance(result, dict):
        return str(result.get("error")) if result.get("ok") is False else None
    reason = getattr(result, "reason", None)
    return str(reason) if reason is not None and type(result).__name__ == "Refused" else None


class LeaseLoop:
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

    def run_once(self) -> str | None:
        host = self.facts.host
        (settings, lease), _ = self._store.read(lambda m: (m.network(), m.lease_of_host(host)))
        command = plan(settings, lease, self.facts, self._store.is_leader(), self._proposal)
        if command is None:
            return None
        try:
            result = self._store.submit(replace(command, request_id=uuid.uuid4().hex), self._write_timeout)
        except StoreError as exc:
            return f"{command.TYPE} not committed yet: {exc}"
        why = refusal(result)
        if why is None:
            return f"{command.TYPE} applied"
        if isinstance(command, AcquireLease) and refusal_kind(result) in FATAL:
            self._on_refused(f"no subnet lease for host {self.facts.host[:12]} ({self.facts.underlay_ip}): {why}")
        return f"{command.TYPE} refused: {why}"

    def run_forever(self, stop_event: threading.Event) -> None:
        def one_pass() -> tuple[str | None, bool]:
            return self.run_once(), False

        self._wake.set()
        run_loop("lease", log, self._wake, self._interval, stop_event, one_pass)
