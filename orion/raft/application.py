"""What the Raft backend replicates: the application's state machine, handed to it.

etcd-raft's rule: the application owns its state machine; the consensus layer
orders entries and hands them back to be applied. ``RaftStore`` (``store.py``)
builds no machine of its own: it is handed an :class:`Application` that makes a
fresh machine, restores one from a snapshot (a resync rebuilds it from the
journal), snapshots it to plain data, encodes a write as an entry and applies
one committed entry at its index. Orion's is ``orion/state/entries.py`` (``ReplicatedMachine``);
``tests/integration/test_raft_toy_machine.py`` runs the backend over real sockets with
a key-value dict and nothing of Orion's machine.

The last three methods are the batched writes (``orion/store/coalescer.py``):
several writes travel as one entry when every replica reads such an entry.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

M = TypeVar("M")


class Application(Protocol[M]):
    """How the backend runs a machine of type ``M``. Called with the store's lock held
    (``apply``, ``snapshot``, ``batches_read``) or on plain values; never blocks."""

    def fresh(self) -> M:
        """An empty machine: the state before the first entry."""

    def restore(self, data: Any) -> M:
        """A machine from what :meth:`snapshot` returned (possibly by an older release)."""

    def snapshot(self, machine: M) -> Any:
        """The machine as plain data (JSON-able: no pickled classes in pysyncobj's dump)."""

    def encode(self, command: Any) -> str:
        """The log entry for one write (``RaftStore.submit``'s command)."""

    def apply(self, machine: M, entry: str, index: int) -> Any:
        """Apply one committed entry at ``index``; deterministic; the result goes back to
        the writer. An entry the machine cannot read is refused in the result, never raised."""

    def unreadable(self, result: Any) -> list[str]:
        """Why (parts of) an applied entry could not be read: the backend logs each."""

    def reads_confirmed(self, machine: M) -> bool:
        """Every voter answers a read-index request (``patches.py`` rule 9). During a rolling
        upgrade from a release without it, reads are answered from the local replica (that
        release's behaviour) until the last node runs this one, instead of timing out."""

    def batches_read(self, machine: M) -> bool:
        """Every replica that may read the log reads an entry made by :meth:`combine`."""

    def combine(self, entries: list[str]) -> str:
        """One entry for several, applied in order."""

    def results(self, result: Any, count: int) -> list[Any] | None:
        """A combined entry's result split into one per entry, or None (refused whole)."""
