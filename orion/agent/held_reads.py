"""The blocking reads a worker holds, ordered two ways: by the index each waits beyond and
by the moment its wait ends. Pure: the worker (``worker.py``) asks it which reads an
apply or the clock releases, and acts.

Both orders are heaps, so an apply releases its k readers in O(k log n) whatever n is
held, and the worker's next timeout is the earliest deadline in O(1). A read released
one way stays in the other heap until it comes to the top (lazy deletion: each entry
carries the sequence number of its hold, and a stale one is skipped).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class HeldReads(Generic[K]):
    """Held reads by key (the worker's connection): ``hold``, then ``passed``/``due``/``forget``."""

    def __init__(self) -> None:
        self._by_index: list[tuple[int, int, K]] = []
        self._by_deadline: list[tuple[float, int, K]] = []
        self._live: dict[K, int] = {}  # key -> the sequence number of its current hold
        self._seq = 0

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def hold(self, key: K, index: int, deadline: float) -> None:
        """Hold ``key`` until an apply beyond ``index`` or ``deadline`` (a key held again
        replaces its earlier hold)."""
        self._seq += 1
        self._live[key] = self._seq
        heapq.heappush(self._by_index, (index, self._seq, key))
        heapq.heappush(self._by_deadline, (deadline, self._seq, key))

    def forget(self, key: K) -> bool:
        """Release ``key`` outside the two orders (its client stirred); False if not held."""
        return self._live.pop(key, None) is not None

    def passed(self, applied: int) -> list[K]:
        """Release every key that waits beyond an index below ``applied``."""
        out = []
        while self._by_index and self._by_index[0][0] < applied:
            _, seq, key = heapq.heappop(self._by_index)
            if self._live.get(key) == seq:
                del self._live[key]
                out.append(key)
        return out

    def due(self, now: float) -> list[K]:
        """Release every key whose deadline is ``now`` or earlier."""
        out = []
        while self._by_deadline and self._by_deadline[0][0] <= now:
            _, seq, key = heapq.heappop(self._by_deadline)
            if self._live.get(key) == seq:
                del self._live[key]
                out.append(key)
        return out

    def all(self) -> list[K]:
        """Release every key (the agent stops)."""
        out = list(self._live)
        self._live.clear()
        self._by_index.clear()
        self._by_deadline.clear()
        return out

    def lowest_index(self) -> int | None:
        """The lowest index a held read waits beyond: an apply above it releases one."""
        self._drop_stale(self._by_index)
        return self._by_index[0][0] if self._by_index else None

    def next_deadline(self) -> float | None:
        """When the earliest held wait ends."""
        self._drop_stale(self._by_deadline)
        return self._by_deadline[0][0] if self._by_deadline else None

    def _drop_stale(self, heap: list) -> None:
        while heap and self._live.get(heap[0][2]) != heap[0][1]:
            heapq.heappop(heap)
        if not self._live:
            heap.clear()
