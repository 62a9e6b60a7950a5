"""Keeps the kernel's ``ip orion-lb`` table equal to the plan of the current view.

Each pass reads the view, plans and renders (orion/network/loadbalance.py) and hands
the script to ``nft -f -`` only when its digest differs from what the kernel holds:
the table is deleted and redefined in that one transaction, so no packet ever sees
half a ruleset and an unchanged view costs no netlink work. The kernel's digest (the
table's comment) is read back at least every ``verify_every`` seconds, so a table
someone flushed or deleted is rebuilt, and a restarted agent finds its table already
right and leaves it alone.

Stopping the loop removes nothing: the kernel keeps balancing with the last ruleset
while the agent restarts (established connections live in conntrack anyway).
:meth:`Nft.delete_table` is for uninstalling a host, never called on stop.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from orion.network.loadbalance import FAMILY, TABLE, LbHost, LbPlan, plan, render
from orion.network.view import DiscoveryView

log = logging.getLogger(__name__)

_DIGEST = re.compile(r'comment "' + re.escape(TABLE) + r' ([0-9a-f]+)"')


class NftError(RuntimeError):
    """nft refused a script or could not run; the kernel's table is unchanged."""


class TableWriter(Protocol):
    """What the loop needs of the kernel: :class:`Nft`, or an in-memory table in unit tests."""

    def apply(self, script: str) -> None: ...

    def digest(self) -> str | None: ...


class Nft:
    """The ``nft`` command, optionally prefixed (``["ip", "netns", "exec", NAME]`` in tests)."""

    def __init__(self, prefix: Sequence[str] = (), timeout: float = 10.0) -> None:
        self._prefix = list(prefix)
        self._timeout = timeout

    def apply(self, script: str) -> None:
        self._run(["-f", "-"], script)

    def digest(self) -> str | None:
        """The digest in the kernel's table comment; None when there is no table."""
        try:
            listing = self._run(["-t", "list", "table", FAMILY, TABLE])
        except NftError:
            return None  # no such table (or nft cannot list it): rebuild
        match = _DIGEST.search(listing)
        return match.group(1) if match else None

    def delete_table(self) -> None:
        script = f"table {FAMILY} {TABLE} {{\n}}\ndelete table {FAMILY} {TABLE}\n"
        self._run(["-f", "-"], script)

    def _run(self, args: list[str], stdin: str | None = None) -> str:
        command = [*self._prefix, "nft", *args]
        try:
            done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=self._timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise NftError(f"{' '.join(command)}: {exc}") from exc
        if done.returncode != 0:
            raise NftError(f"{' '.join(command)} exited {done.returncode}: {done.stderr.strip()[:2000]}")
        return done.stdout


@dataclass(frozen=True)
class LbPass:
    """What one pass did. ``applied`` is True when the kernel got a new table."""

    applied: bool
    digest: str | None
    frontends: int = 0
    backends: int = 0
    without_backends: tuple[str, ...] = ()  # "service proto/port", rejected (VIP) or left to the host
    error: str | None = None

    def sentence(self) -> str | None:
        """The log line, or None when nothing changed."""
        if self.error:
            return f"load balancer not updated: {self.error}"
        if not self.applied:
            return None
        text = f"applied {TABLE} {self.digest}: {self.frontends} frontends, {self.backends} backends"
        if self.without_backends:
            text += f"; no backend for {', '.join(self.without_backends)}"
        return text


class LoadBalanceLoop:
    """Runs :meth:`run_once` on every :meth:`wake` and every ``interval`` seconds."""

    def __init__(self, view: Callable[[], DiscoveryView], host: Callable[[], LbHost], nft: TableWriter, *,
                 interval: float = 5.0, verify_every: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._view = view
        self._host = host
        self._nft = nft
        self._interval = interval
        self._verify_every = verify_every
        self._clock = clock
        self._known: str | None = None  # the digest the kernel had when last read or written
        self._verified_at: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> LbPass:
        try:
            lb = plan(self._view(), self._host())
        except Exception as exc:  # an unreadable replica: keep the kernel's table as it is
            return LbPass(False, self._known, error=f"no view: {exc}")
        ruleset = render(lb)
        now = self._clock()
        if self._verified_at is None or now - self._verified_at >= self._verify_every:
            self._known = self._nft.digest()
            self._verified_at = now
        if ruleset.digest == self._known:
            return _summary(lb, False, ruleset.digest)
        try:
            self._nft.apply(ruleset.text)
        except NftError as exc:
            self._verified_at = None  # read the kernel again next time
            return _summary(lb, False, self._known, error=str(exc))
        self._known = ruleset.digest
        return _summary(lb, True, ruleset.digest)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="orion-lb", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the thread; the kernel's table stays (see the module docstring)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.run_once()
            except Exception:  # never let one bad pass end balancing updates
                log.exception("load balancer pass crashed; retrying")
            else:
                if (sentence := result.sentence()) is not None:
                    (log.warning if result.error else log.info)("%s", sentence)
            self._wake.wait(self._interval)
            self._wake.clear()


def _summary(lb: LbPlan, applied: bool, digest: str | None, error: str | None = None) -> LbPass:
    return LbPass(applied, digest, len(lb.frontends), lb.backend_count,
                  tuple(f"{f.service} {f.protocol}/{f.port}" for f in lb.without_backends()), error)
