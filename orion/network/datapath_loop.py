"""Runs the datapath's planners against the host on every wake and every few seconds.

One pass: read the leases (a callable the agent wires to its Raft replica), then in order
1. the Docker network ``orion`` (its bridge must exist before anything routes into it),
2. Orion's firewall table and DOCKER-USER rule (VXLAN from strangers is dropped before the
   VXLAN device starts listening),
3. the VXLAN device, FDB, neighbours, routes and sysctls,
each observed fresh and changed only where it differs. A stage that fails is recorded and the
next still runs; the next pass retries.

What makes it safe to restart: nothing is kept between passes but the inputs, every decision
is made from what the kernel shows now, and a converged kernel yields no change at all, so a
new process on a working host touches nothing and open connections never notice. What makes
it safe to stop: ``stop()`` ends the thread and nothing else. The kernel carries the traffic;
an agent that is down leaves the datapath as it was.

The network room sits below ``orion/loop.py`` (it may not import it), so this loop runs its own
thread; its pass value, :class:`DatapathPass`, says what the host was asked and what it refused.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from orion.network.bridge_network import NetworkConflict, NetworkDecision, ObservedNetwork, decide, network_spec
from orion.network.datapath import DatapathInputs, plan, underlay_ips
from orion.network.datapath_state import Change, ObservedKernel
from orion.network.firewall import FirewallChange, ObservedFirewall, render
from orion.network.firewall import decide as decide_firewall

log = logging.getLogger(__name__)


class Kernel(Protocol):
    def observe(self) -> ObservedKernel: ...
    def apply(self, change: Change) -> None: ...


class Firewall(Protocol):
    def observe(self) -> ObservedFirewall: ...
    def apply(self, change: FirewallChange) -> None: ...


class Networks(Protocol):
    def observe(self, name: str) -> ObservedNetwork | None: ...
    def apply(self, decision: NetworkDecision) -> None: ...


AnyChange = Change | FirewallChange | NetworkDecision


@dataclass(frozen=True)
class Failed:
    """A change the host refused, or a stage that could not even be observed (``change`` None)."""

    stage: str
    change: AnyChange | None
    error: str

    def __str__(self) -> str:
        return f"{self.stage}: {self.change or 'observe'}: {self.error}"


@dataclass(frozen=True)
class DatapathPass:
    """What one pass did. ``applied`` holds the typed changes carried out, in order."""

    applied: tuple[AnyChange, ...] = ()
    failed: tuple[Failed, ...] = ()
    notes: tuple[str, ...] = ()  # ignored leases, a network conflict, "no lease yet"

    @property
    def converged(self) -> bool:
        """Nothing needed changing and nothing failed."""
        return not self.applied and not self.failed

    def __str__(self) -> str:
        if self.converged and not self.notes:
            return "converged"
        parts = [f"{len(self.applied)} applied"] + [f"{len(self.failed)} failed"] * bool(self.failed)
        details = [str(c) for c in self.applied] + [f"FAILED {f}" for f in self.failed] + list(self.notes)
        return ", ".join(parts) + (": " + "; ".join(details) if details else "")


class DatapathLoop:
    """``run_pass()`` once, or ``start()`` a thread that passes on ``wake()`` and every ``interval_s``."""

    def __init__(self, inputs: Callable[[], DatapathInputs | None], kernel: Kernel, firewall: Firewall,
                 networks: Networks | None, interval_s: float,
                 on_pass: Callable[[DatapathPass], None] | None = None) -> None:
        self.inputs = inputs
        self.kernel = kernel
        self.firewall = firewall
        self.networks = networks  # None: the agent runs without Docker (the datapath alone)
        self.interval_s = interval_s
        self.on_pass = on_pass
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_pass(self) -> DatapathPass:
        wanted = self.inputs()
        if wanted is None:
            return DatapathPass(notes=("no lease yet",))
        applied: list[AnyChange] = []
        failed: list[Failed] = []
        notes: list[str] = []

        def attempt(stage: str, change: AnyChange, act: Callable[[], None]) -> None:
            try:
                act()
            except Exception as e:  # noqa: BLE001 - every refusal is reported, the pass goes on
                failed.append(Failed(stage, change, str(e)))
            else:
                applied.append(change)

        if self.networks is not None:
            networks = self.networks
            spec = network_spec(wanted.settings, wanted.own)
            try:
                decision = decide(spec, networks.observe(spec.name))
            except Exception as e:  # noqa: BLE001
                failed.append(Failed("network", None, str(e)))
            else:
                if isinstance(decision, NetworkConflict):
                    notes.append(str(decision))
                elif decision is not None:
                    attempt("network", decision, lambda: networks.apply(decision))

        try:
            fw_changes = decide_firewall(render(wanted.settings, underlay_ips(wanted)), self.firewall.observe())
        except Exception as e:  # noqa: BLE001
            failed.append(Failed("firewall", None, str(e)))
        else:
            for fw in fw_changes:
                attempt("firewall", fw, lambda fw=fw: self.firewall.apply(fw))

        try:
            datapath = plan(wanted, self.kernel.observe())
        except Exception as e:  # noqa: BLE001
            failed.append(Failed("datapath", None, str(e)))
        else:
            notes += [str(i) for i in datapath.ignored]
            for change in datapath.changes:
                attempt("datapath", change, lambda change=change: self.kernel.apply(change))
        return DatapathPass(tuple(applied), tuple(failed), tuple(notes))

    def one_pass(self) -> str | None:
        """One pass, told to ``on_pass``; the sentence to log (None when converged)."""
        result = self.run_pass()
        if self.on_pass is not None:
            self.on_pass(result)
        return None if result.converged and not result.notes else str(result)

    # -- the thread -------------------------------------------------------------------------

    def wake(self) -> None:
        """Run a pass now (the agent calls this on every Raft apply)."""
        self._wake.set()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="datapath-loop", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """End the thread. The datapath stays exactly as it is: nothing is torn down."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        due = 0.0
        while not self._stop.is_set():
            self._wake.wait(max(0.0, due - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                sentence = self.one_pass()
            except Exception:  # noqa: BLE001 - a pass never kills the loop
                log.exception("datapath pass crashed; retrying in %.1f s", self.interval_s)
                sentence = None
            if sentence:
                log.info("datapath: %s", sentence)
            due = time.monotonic() + self.interval_s
