"""One write probe for both sides of the failover comparison.

A probe that waits for each request before sending the next reads its client
timeout into the figure whenever a request hangs through an election. Here
every attempt runs on its own thread, one started every ``period`` seconds, so a
hung request never delays the next: the figure is the first acknowledgement
among attempts sent after the fault, for Orion and Swarm alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def first_ack_after(attempt: Callable[[], bool], start: float, period: float = 0.02,
                    deadline: float = 60.0) -> float:
    """Seconds from ``start`` (a ``time.monotonic()`` value) until an ``attempt``
    first returns True; attempts must bound their own duration (a client timeout)."""
    done = threading.Event()
    acks: list[float] = []
    lock = threading.Lock()

    def one() -> None:
        try:
            ok = attempt()
        except Exception:  # noqa: BLE001 - any failure is "not yet"
            ok = False
        if ok:
            with lock:
                acks.append(time.monotonic())
            done.set()

    while not done.is_set() and time.monotonic() - start < deadline:
        threading.Thread(target=one, daemon=True).start()
        done.wait(period)
    if not acks:
        raise RuntimeError(f"no write acknowledged within {deadline:.0f} s")
    return min(acks) - start
