"""The shape every loop shares: wake on a change or a period, run one pass, log
what it did, never die.

A pass returns its sentence (the log line, and what tests read) or None when it
did nothing worth a line; ``again`` says whether to run once more at once (work
left beyond one batch). A pass may also return :data:`SKIPPED`: it looked and
found nothing to do before its period is due, so the period keeps counting from
the last pass that ran.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from orion.store.port import Store, StoreError

Pass = Callable[[], tuple[str | None, bool]]

# What a pass returns when it chose not to run (see the module docstring).
SKIPPED = "skipped"
# While idle, how soon ``stop`` is noticed even if nothing wakes the loop.
_STOP_POLL = 0.25


def run_loop(name: str, log: logging.Logger, wake: threading.Event, interval: float, stop: threading.Event,
             one_pass: Pass, min_gap: float = 0.0) -> None:
    """Until ``stop``: wait for ``wake`` (or ``interval`` since the last pass), run
    ``one_pass``, log its sentence.

    A StoreError (no leader, a timed-out write) is expected during elections and
    only warned about; anything else is logged with its traceback and retried
    after ``interval``, so one bad pass never stops the loop.
    """
    due = time.monotonic() + interval
    while not stop.is_set():
        _wait(wake, stop, due)
        wake.clear()
        if stop.is_set():
            return
        try:
            sentence, again = one_pass()
        except StoreError as exc:
            log.warning("%s pass failed: %s", name, exc)
            due = time.monotonic() + interval
            continue
        except Exception:
            log.exception("%s pass crashed; retrying", name)
            stop.wait(interval)
            due = time.monotonic() + interval
            continue
        if sentence == SKIPPED:
            continue
        due = time.monotonic() + interval
        if sentence:
            log.info("%s: %s", name, sentence)
        if again:
            wake.set()
        if min_gap:
            stop.wait(min_gap)


def wake_on_leader(store: Store, wake: threading.Event) -> Callable[[int], None]:
    """An apply listener for a loop that acts only on the leader: it wakes the loop on
    the leader alone. On a follower each apply would hand the GIL to a pass that does
    nothing (bench/write_path.py: 5% of a busy follower's); the loop's period still
    runs there, and on a new leader the first apply wakes it."""
    def listener(_index: int) -> None:
        if store.is_leader():
            wake.set()

    return listener


def _wait(wake: threading.Event, stop: threading.Event, until: float) -> None:
    """Until ``wake``, ``stop`` or the monotonic time ``until``, whichever comes first."""
    while not stop.is_set() and not wake.is_set():
        remaining = until - time.monotonic()
        if remaining <= 0:
            return
        wake.wait(min(_STOP_POLL, remaining))
