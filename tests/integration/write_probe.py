"""A stream of writes that shows how long a cluster stopped acknowledging them.

One attempt starts every ``period`` seconds, each on its own thread, so a
request that hangs through a leader change never delays the next one (a
sequential probe would read its own client timeout into the figure). The
figure is the longest stretch after a fault with no acknowledgement at all:
for a SIGKILLed leader, the election; for a leader that hands over on SIGTERM,
the hand-over. It is the same measure for both: writes the old leader still
acknowledges after the fault (it leads until it has handed over) end the
stretch later, as they should.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class WriteProbe:
    """``attempt()`` must bound its own duration (a client timeout) and return True on an ack."""

    def __init__(self, attempt: Callable[[], bool], period: float = 0.02) -> None:
        self._attempt = attempt
        self._period = period
        self._acks: list[float] = []
        self._sent_acked: list[tuple[float, float]] = []
        self._failures = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="write-probe", daemon=True)

    def __enter__(self) -> WriteProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _one(self) -> None:
        sent = time.monotonic()
        try:
            ok = self._attempt()
        except Exception:  # noqa: BLE001 - any failure is "not acknowledged"
            ok = False
        with self._lock:
            if ok:
                self._acks.append(time.monotonic())
                self._sent_acked.append((sent, self._acks[-1]))
            else:
                self._failures += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            threading.Thread(target=self._one, daemon=True).start()
            self._stop.wait(self._period)

    def first_ack_sent_after(self, since: float) -> float:
        """Seconds from ``since`` to the first ack of a write sent after it (bench/probe.py's measure)."""
        with self._lock:
            acks = [acked for sent, acked in self._sent_acked if sent >= since]
        if not acks:
            raise AssertionError("no write sent after the fault was acknowledged")
        return min(acks) - since

    def acked_since(self, since: float) -> int:
        with self._lock:
            return sum(1 for a in self._acks if a >= since)

    def last_ack(self) -> float | None:
        with self._lock:
            return max(self._acks, default=None)

    def longest_gap(self, since: float, until: float | None = None) -> float:
        """Longest time within [since, until] with no acknowledgement, counted from ``since``."""
        with self._lock:
            acks = sorted(a for a in self._acks if since <= a and (until is None or a <= until))
        if not acks:
            raise AssertionError("no write was acknowledged after the fault")
        edges = [since, *acks]
        return max(b - a for a, b in zip(edges, edges[1:], strict=False))

    def wait_settled(self, since: float, after: float, timeout: float = 30.0) -> None:
        """Return once writes have been acknowledged for ``after`` s beyond ``since``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            last = self.last_ack()
            if last is not None and last >= since + after and time.monotonic() - last < 0.5:
                return
            time.sleep(0.05)
        raise AssertionError(f"writes not acknowledged again within {timeout:.0f} s")
