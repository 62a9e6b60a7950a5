"""The piggyback queue: news waiting to ride on outgoing probes and gossip.

Each piece of news about a member is sent a limited number of times (the
epidemic bound from config.retransmit_limit); the least-sent news goes first so
fresh information spreads fastest, and newer news about a member replaces
older news about it (an alive refutation cancels the suspicion it answers).
"""

from __future__ import annotations

from dataclasses import dataclass

from orion.gossip.codec import encoded_size
from orion.gossip.messages import Message


@dataclass
class _Entry:
    key: str
    msg: Message
    size: int
    transmits: int
    order: int


class BroadcastQueue:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._order = 0

    def __len__(self) -> int:
        return len(self._entries)

    def queue(self, key: str, msg: Message) -> None:
        self._order += 1
        self._entries[key] = _Entry(key, msg, encoded_size(msg), 0, self._order)

    def pending(self) -> list[Message]:
        return [e.msg for e in self._entries.values()]

    def take(self, budget: int, per_item_overhead: int, limit: int) -> list[Message]:
        """Messages fitting in ``budget`` bytes; each counts one transmit and is
        dropped after ``limit`` transmits."""
        if not self._entries:
            return []
        out: list[Message] = []
        used = 0
        for e in sorted(self._entries.values(), key=lambda e: (e.transmits, -e.order)):
            cost = e.size + per_item_overhead
            if used + cost > budget:
                continue
            used += cost
            out.append(e.msg)
            e.transmits += 1
            if e.transmits >= limit:
                del self._entries[e.key]
        return out
