"""A digest of the replicated state machine, so replicas can be shown to agree.

Every replica applies the same log to the same deterministic machine; two
replicas at the same applied index must therefore hold equal states. The
digest makes that checkable from outside: ``GET /raft`` shows ``digest`` (the
SHA-256 of a canonical serialization of the machine's snapshot) and
``digestIndex`` (the applied index it was taken at), and tests compare them
across replicas at equal indexes.

Canonical: JSON with sorted keys and no whitespace. The snapshot's lists are
already in an order that is a function of the state (tasks by creation index,
nodes by id; remembered requests in the order that decides which one is
forgotten first), never in the order of a dict a replica happened to fill.

Cost: one snapshot under the machine's lock, then serialization and hashing
outside it; at most once per applied index (:class:`DigestCache`).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any


def canonical(snapshot: dict[str, Any]) -> bytes:
    """The bytes that are hashed: equal for equal machines."""
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def digest(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(snapshot)).hexdigest()


class DigestCache:
    """The digest at the applied index, computed lazily and at most once per index.

    ``read`` runs a function on the machine under its lock and returns (result,
    applied index): the store's own ``read``. The cache also remembers which
    machine object it digested, so a machine rebuilt at an index it already
    passed (a resync) is digested again rather than served from the cache.
    """

    def __init__(self, read: Callable[[Callable[[Any], Any]], tuple[Any, int]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._machine: object = None
        self._index = -1
        self._value = ""

    def get(self) -> tuple[str, int]:
        """(digest, the applied index it was taken at)."""
        with self._lock:
            machine, index = self._read(lambda m: m)  # cheap: no copy
            if machine is self._machine and index == self._index:
                return self._value, index
            (machine, snap), index = self._read(lambda m: (m, m.snapshot()))
            self._machine, self._index, self._value = machine, index, digest(snap)
            return self._value, index
