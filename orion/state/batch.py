"""Group commit: writes that reach the store together share one Raft entry.

Every Raft entry costs the same whatever it holds: the leader appends it and
sends an ``append_entries`` to each follower for it (pysyncobj sends one per
queued command), each follower answers, and each replica applies it, wakes its
listeners and its waiting request threads. Under load that per-entry cost, not
the commands themselves, decides how many writes a second the cluster takes.

So a store does not hand each command to Raft on its own. It queues it in a
:class:`Coalescer`, and the Raft thread takes the whole queue at once, whenever
it gets to it, and sends it as one :class:`~orion.state.commands.Batch` entry.
No timer and no waiting: a lone write goes out at the next turn of the Raft
loop as before, and writes that arrive while the loop is busy (committing the
previous batch, applying it) wait for exactly that long and travel together.
A follower coalesces before it forwards to the leader, and the leader's own
writes (its placements, say) coalesce with what arrived at the same moment.

:func:`apply_entry` is the other half: it unwraps a batch on every replica and
applies its commands in order through :meth:`StateMachine.apply`, each as if
it were an entry of its own, so each keeps its own result, its own request-id
deduplication and its own refusal. One bad request never fails its batch-mates.

Nothing here knows pysyncobj: the backend hands in how to send one entry and
what its success code is (``orion/state/raft.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from orion.state.commands import Batch, Command, decode, encode
from orion.state.machine import StateMachine

# (result, error code) -> None: how the backend reports an entry's outcome.
Done = Callable[[Any, Any], None]

# One entry stays below pysyncobj's append batch (64 KiB; a bigger entry takes its
# chunked path): with ~600 bytes per create, ~50 writes share an entry.
MAX_BATCH_BYTES = 32 * 1024


def apply_entry(machine: StateMachine, entry: str | bytes | Command, index: int) -> dict[str, Any]:
    """Apply one log entry; a batch is applied command by command, in order.

    The result of a batch is ``{"ok": True, "results": [...]}``, one result per
    command, each exactly what that command would have returned as an entry of
    its own at this ``index``. An entry this node cannot read at all goes to the
    machine as it is, which refuses it with its reason.
    """
    command = entry
    if isinstance(entry, str | bytes):
        try:
            command = decode(entry.decode("utf-8", "replace") if isinstance(entry, bytes) else entry)
        except Exception:  # UnknownCommand or a malformed body: the machine words the refusal
            return machine.apply(entry, index)
    if isinstance(command, Batch):
        return {"ok": True, "results": [apply_entry(machine, c, index) for c in command.commands]}
    return machine.apply(command, index)


def batch_text(texts: list[str]) -> str:
    """The log entry for several encoded commands."""
    return encode(Batch(commands=tuple(texts)))


def fan_out(dones: list[Done], success: Any) -> Done:
    """One outcome for a batch entry -> one outcome per command in it, in order.

    A batch that failed as a whole (not committed, leader lost) fails each of its
    writers with the same reason, and each retries on its own. A committed batch
    whose result is not a list of results (a node that does not know batches
    refused it whole) gives every writer that refusal.
    """
    def done(result: Any, error: Any) -> None:
        results = result.get("results") if error == success and isinstance(result, dict) else None
        if isinstance(results, list) and len(results) == len(dones):
            for each, part in zip(dones, results, strict=True):
                each(part, error)
        else:
            for each in dones:
                each(result, error)

    return done


class Coalescer:
    """Encoded commands waiting for the next turn of the write loop.

    Writers call :meth:`add` from any thread; the backend's loop calls
    :meth:`flush`, which sends what is queued as few entries as the size cap
    allows (a single command as itself, so a lone write reads in the log as it
    always did). ``send(text, done)`` hands one entry to Raft.
    """

    def __init__(self, send: Callable[[str, Done], None], success: Any, max_bytes: int = MAX_BATCH_BYTES) -> None:
        self._send = send
        self._success = success
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._queued: list[tuple[str, Done]] = []
        # Since start: entries sent and the commands they carried (GET /raft shows them).
        self.entries = 0
        self.commands = 0

    def add(self, text: str, done: Done) -> bool:
        """Queue one command. True when the queue was empty: the caller must wake the loop
        (a writer that finds others queued knows a wake is already on its way)."""
        with self._lock:
            self._queued.append((text, done))
            return len(self._queued) == 1

    def flush(self) -> int:
        """Send everything queued; return how many entries that took."""
        with self._lock:
            queued, self._queued = self._queued, []
        groups = split(queued, self._max_bytes)
        self.entries += len(groups)  # only the loop's thread flushes
        self.commands += len(queued)
        for group in groups:
            if len(group) == 1:
                self._send(*group[0])
            else:
                self._send(batch_text([text for text, _ in group]),
                           fan_out([done for _, done in group], self._success))
        return len(groups)


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
