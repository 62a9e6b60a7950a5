"""The shape every loop shares: wake on a change or a period, run one pass, log
what it did, never die.

Every pass returns one :class:`PassResult`: its sentence (the log line, and what
tests read), whether it acted (changed something, or tried and failed: logged at
info; a pass that only looked is logged at debug), whether to run once more at
once (work left beyond one batch), whether it was skipped (it found nothing due
before its period, so the period keeps counting from the last pass that ran),
and the loop's own typed figures in ``detail``. The loop decides from these
fields, never from the words of the sentence.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from orion.store.port import Store, StoreError

D = TypeVar("D")
# While idle, how soon ``stop`` is noticed even if nothing wakes the loop.
_STOP_POLL = 0.25


@dataclass(frozen=True)
class PassResult(Generic[D]):
    """What one pass of a loop did (see the module docstring)."""

    sentence: str
    acted: bool = False
    again: bool = False
    skipped: bool = False
    detail: D | None = None

    def __str__(self) -> str:
        return self.sentence


R = TypeVar("R")


def decided_pass(sentences: list[str], refused: list[R], idle: str) -> PassResult[tuple[R, ...]]:
    """The pass of a leader's loop that submits its planner's decisions: their sentences and the
    ones the machine refused (``detail``), or ``idle`` when it had nothing to decide."""
    parts = sentences + [f"refused: {r}" for r in refused]
    return PassResult("; ".join(parts) or idle, acted=bool(parts), detail=tuple(refused))


# A pass that chose not to run: nothing due before its period (see the module docstring).
SKIPPED: PassResult[None] = PassResult("skipped", skipped=True)

Pass = Callable[[], PassResult]


def run_loop(name: str, log: logging.Logger, wake: threading.Event, interval: float, stop: threading.Event,
             one_pass: Pass, min_gap: float = 0.0) -> None:
    """Until ``stop``: wait for ``wake`` (or ``interval`` since the last pass), run
    ``one_pass``, log its sentence (at info when it acted, else at debug).

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
            result = one_pass()
        except StoreError as exc:
            log.warning("%s pass failed: %s", name, exc)
            due = time.monotonic() + interval
            continue
        except Exception:
            log.exception("%s pass crashed; retrying", name)
            stop.wait(interval)
            due = time.monotonic() + interval
            continue
        if result.skipped:
            continue
        due = time.monotonic() + interval
        log.log(logging.INFO if result.acted else logging.DEBUG, "%s: %s", name, result.sentence)
        if result.again:
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
