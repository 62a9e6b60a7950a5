"""The shape every leader-side loop shares: wake on a change or a period, run one
pass, log what it did, never die.

A pass returns its sentence (the log line, and what tests read) or None when it
did nothing worth a line; ``again`` says whether to run once more at once (work
left beyond one batch).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from orion.state.store import StoreError

Pass = Callable[[], tuple[str | None, bool]]


def run_loop(name: str, log: logging.Logger, wake: threading.Event, interval: float, stop: threading.Event,
             one_pass: Pass, min_gap: float = 0.0) -> None:
    """Until ``stop``: wait for ``wake`` (or ``interval``), run ``one_pass``, log its sentence.

    A StoreError (no leader, a timed-out write) is expected during elections and
    only warned about; anything else is logged with its traceback and retried
    after ``interval``, so one bad pass never stops the loop.
    """
    while not stop.is_set():
        wake.wait(interval)
        wake.clear()
        if stop.is_set():
            return
        try:
            sentence, again = one_pass()
        except StoreError as exc:
            log.warning("%s pass failed: %s", name, exc)
            continue
        except Exception:
            log.exception("%s pass crashed; retrying", name)
            stop.wait(interval)
            continue
        if sentence:
            log.info("%s: %s", name, sentence)
        if again:
            wake.set()
        if min_gap:
            stop.wait(min_gap)
