"""Which free number the machine hands out next: a host subnet's index, a VIP's offset.

The rule, one for both: the lowest number never used yet; only when every number has been
used once, the one released longest ago. It is how "a released subnet is not reused for a
while" is kept without a clock (the machine has none): a released subnet or VIP goes to the
back of the queue, so it is reused only after every never-used one and every one released
before it. Stale kernel entries elsewhere (a peer's FDB entry, a route, conntrack's
connections to an old VIP) therefore point at nobody for as long as the pool allows, never
at a new owner at once, unless the pool is that small.

The never-used numbers are exactly those from ``next`` up (numbers are taken lowest first),
so the state is two values, whatever the pool's size: ``next`` and the released queue.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class Pool:
    """Numbers from ``first`` up to (not including) ``limit``; changed only by the machine's handlers."""

    def __init__(self, first: int, limit: int) -> None:
        self.first, self.limit = first, limit
        self._next = first
        self._released: deque[int] = deque()  # oldest release first; every number here is free

    def free(self) -> int:
        """How many numbers :meth:`take` can still hand out."""
        return self.limit - self._next + len(self._released)

    def peek(self) -> int | None:
        """The number :meth:`take` would hand out, or None when the pool is used up."""
        if self._next < self.limit:
            return self._next
        return self._released[0] if self._released else None

    def take(self) -> int | None:
        number = self.peek()
        if number is None:
            return None
        if number == self._next:
            self._next += 1
        else:
            self._released.popleft()
        return number

    def release(self, number: int) -> None:
        """``number`` is free again, to be reused after every number released before it."""
        self._released.append(number)

    def snapshot(self) -> dict[str, Any]:
        return {"next": self._next, "released": list(self._released)}

    @classmethod
    def restore(cls, first: int, limit: int, data: dict[str, Any]) -> Pool:
        pool = cls(first, limit)
        pool._next = int(data.get("next", first))
        pool._released.extend(int(n) for n in data.get("released") or ())
        return pool
