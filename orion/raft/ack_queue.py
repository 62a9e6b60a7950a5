"""A follower's answers held until the entries they report are on disk (group commit).

Pure: the patched transport (``patches.py``, rule "acks after sync") asks
:meth:`AckQueue.hold` whether to keep a message, and sends what
:meth:`AckQueue.drain` returns after a sync.
"""

from __future__ import annotations

from typing import Any

ACK = "next_node_idx"  # a follower's answer to append_entries (pysyncobj syncobj.py:1098-1106)


class AckQueue:
    """A follower's answers, in order, waiting for the sync that covers them."""

    def __init__(self) -> None:
        self._held: list[tuple[Any, dict]] = []

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, node: Any, message: dict, unsynced: bool) -> bool:
        """Keep ``message`` (True) if it is an answer and the journal has unsynced bytes,
        or answers are already waiting (they leave in order)."""
        if message.get("type") != ACK or not (self._held or unsynced):
            return False
        if self._held and plain_success(message):
            last_node, last = self._held[-1]
            if last_node == node and plain_success(last):
                # A success says "my log matches yours up to here": the newest implies the
                # ones before it. Sending each would also make the leader wind its next index
                # back to every one of them (syncobj.py:1082) and resend what it already sent.
                self._held[-1] = (node, message)
                return True
        self._held.append((node, message))
        return True

    def drain(self) -> list[tuple[Any, dict]]:
        held, self._held = self._held, []
        return held


def plain_success(message: dict) -> bool:
    """A success that is not a reset: "my log matches yours up to ``next_node_idx`` - 1"."""
    return bool(message.get("success")) and not message.get("reset")
