"""Batched writes: writes that reach the store together share one Raft entry.

Every Raft entry costs the same whatever it holds: the leader appends it and
sends an ``append_entries`` to each follower for it (pysyncobj sends one per
queued command), each follower answers, and each replica applies it, wakes its
listeners and its waiting request threads. Under load that per-entry cost, not
the commands themselves, decides how many writes a second the cluster takes.

So a store does not hand each command to Raft on its own. It queues it in a
:class:`Coalescer`, and the Raft thread takes the whole queue at once and sends
it as one :class:`~orion.state.commands.Batch` entry. No timer: a lone write
goes out at the next turn of the Raft loop as before; writes that arrive while
this node's previous entry is committing wait for exactly that long and travel
together in the next. A follower coalesces before it forwards to the leader,
and the leader's own writes (its placements, say) coalesce with what arrived
at the same moment.

The other half is the replica's: ``orion/state/entries.py`` unwraps a batch on
every replica and applies its commands in order, each with its own result.

Not to be confused with the journal's *group commit* (``orion/raft/patches.py``):
one fdatasync covering every entry appended in a pass of the Raft loop. Batched
writes make one *entry* cover several writes; group commit makes one *sync*
cover several entries.

Nothing here knows pysyncobj: the backend hands in how to send one entry, what
its success code is, and how its machine combines entries and splits a
combined result (``orion/raft/store.py``, from the machine it is handed); the
defaults are Orion's ``Batch`` (``orion/state/entries.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from orion.state.entries import batch_text, results_of

# (result, error code) -> None: how the backend reports an entry's outcome.
Done = Callable[[Any, Any], None]

# One entry stays below pysyncobj's append batch (64 KiB; a bigger entry takes its
# chunked path): with ~600 bytes per create, ~50 writes share an entry.
MAX_BATCH_BYTES = 32 * 1024
# A node's entries awaiting their answer at a time, and how long one is awaited before it
# no longer counts (an answer lost with a dead leader). One: the classic batching (the
# next entry takes everything that arrived while the last one committed); measured against
# 2 and 4 in bench/write_path.py. Patience: far above a commit (ms), below a write's retry.
MAX_IN_FLIGHT = 1
IN_FLIGHT_PATIENCE = 0.5


def fan_out(dones: list[Done], success: Any,
            results: Callable[[Any, int], list[Any] | None] = results_of) -> Done:
    """One outcome for a batch entry -> one outcome per command in it, in order.

    A batch that failed as a whole (not committed, leader lost) fails each of its
    writers with the same reason, and each retries on its own. A committed batch
    whose result is not a list of results (a node that does not know batches
    refused it whole) gives every writer that refusal.
    """
    def done(result: Any, error: Any) -> None:
        parts = results(result, len(dones)) if error == success else None
        if parts is not None:
            for each, part in zip(dones, parts, strict=True):
                each(part, error)
        else:
            for each in dones:
                each(result, error)

    return done


class Coalescer:
    """Encoded commands waiting for the next turn of the write loop.

    Writers call :meth:`add` from any thread; the backend's loop calls
    :meth:`flush` when woken and on every turn. A flush sends what is queued as
    few entries as the size cap allows (a single command as itself, so a lone
    write reads in the log as it always did), but keeps at most
    ``max_in_flight`` of this node's entries unanswered at a time: what arrives
    while one is committing waits for its answer and then travels together.
    Without that limit the loop, idle between two messages, flushed every write
    almost alone (1.5-2 writes an entry under 16 clients); the limit costs a lone
    write nothing, as nothing of its node is in flight. An entry whose answer
    never comes (pysyncobj drops it when a leader dies; its writers retry)
    stops counting after ``patience`` seconds, so the queue never stalls.
    ``send(text, done)`` hands one entry to Raft. ``batches_read()`` says whether
    every node reads a ``Batch`` (a rolling upgrade from a version without them may
    be under way): until then each write goes as its own entry, as before batches.
    ``combine(texts)`` is the one entry for several, ``results(result, n)`` its result
    split back into one per write (None: refused whole).
    """

    def __init__(self, send: Callable[[str, Done], None], success: Any, max_bytes: int = MAX_BATCH_BYTES,
                 max_in_flight: int = MAX_IN_FLIGHT, patience: float = IN_FLIGHT_PATIENCE,
                 clock: Callable[[], float] = time.monotonic,
                 batches_read: Callable[[], bool] = lambda: True,
                 combine: Callable[[list[str]], str] = batch_text,
                 results: Callable[[Any, int], list[Any] | None] = results_of) -> None:
        self._send = send
        self._batches_read = batches_read
        self._combine, self._results = combine, results
        self._success = success
        self._max_bytes = max_bytes
        self._max_in_flight = max_in_flight
        self._patience = patience
        self._clock = clock
        self._lock = threading.Lock()
        self._queued: list[tuple[str, Done]] = []
        self._in_flight: dict[int, tuple[float, Done]] = {}  # entry number -> when it was sent, its answer
        self._sent = 0
        # Since start: entries sent and the commands they carried (GET /raft shows them).
        self.entries = 0
        self.commands = 0

    def add(self, text: str, done: Done) -> bool:
        """Queue one command. True when the caller must wake the loop: the queue was empty and
        may go at once (a writer that finds others queued, or the node's entries in flight,
        knows a flush is coming: a wake, or the answer that frees a place)."""
        with self._lock:
            self._queued.append((text, done))
            return len(self._queued) == 1 and self._room() > 0

    def flush(self) -> int:
        """Send what is queued, as far as the in-flight limit allows; return how many entries."""
        with self._lock:
            if not self._queued:
                return 0
            if self._batches_read():
                room = self._room()
                if room <= 0:
                    return 0
                groups = split(self._queued, self._max_bytes)[:room]
            else:  # a node that cannot read a Batch: every write goes as its own entry, at once
                groups = [[item] for item in self._queued]
            taken = sum(len(g) for g in groups)
            del self._queued[:taken]
            now, entries = self._clock(), []
            for group in groups:
                if len(group) == 1:
                    text, done = group[0]
                else:
                    text = self._combine([t for t, _ in group])
                    done = fan_out([d for _, d in group], self._success, self._results)
                self._sent += 1
                self._in_flight[self._sent] = (now, done)
                entries.append((text, self._answered(self._sent, done)))
            self.entries += len(groups)
            self.commands += taken
        for text, answered in entries:
            self._send(text, answered)
        return len(groups)

    def abandon(self, error: Any) -> int:
        """The engine that was to answer the entries in flight is gone (restarted, ``orion/raft/store.py``):
        fail their writers with ``error`` now, so they retry at once instead of waiting out
        their deadline (their request ids make a retry of a committed write harmless)."""
        with self._lock:
            lost, self._in_flight = list(self._in_flight.values()), {}
        for _, done in lost:
            done(None, error)
        return len(lost)

    def _room(self) -> int:
        """Entries that may go now (the lock is held): the limit, less those still awaited."""
        now = self._clock()
        for number, (sent, _) in list(self._in_flight.items()):
            if now - sent > self._patience:
                del self._in_flight[number]
        return self._max_in_flight - len(self._in_flight)

    def _answered(self, number: int, done: Done) -> Done:
        def answered(result: Any, error: Any) -> None:
            with self._lock:
                self._in_flight.pop(number, None)
            done(result, error)  # the next flush comes with the loop's next turn

        return answered


def split(queued: list[tuple[str, Done]], max_bytes: int) -> list[list[tuple[str, Done]]]:
    """Consecutive groups of at most ``max_bytes`` of text (a bigger command goes alone), in order."""
    groups: list[list[tuple[str, Done]]] = []
    size = max_bytes
    for item in queued:
        if size + len(item[0]) > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += len(item[0])
    return groups
