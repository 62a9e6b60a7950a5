"""Fewer idle heartbeats toward non-voting replicas.

pysyncobj's leader sends ``append_entries`` to every voter *and* every non-voting
replica each ``appendEntriesPeriod`` (0.1 s, ``syncobj.py:1258``), pickled and
Fernet-encrypted, and decrypts each answer. With 5 voters and 95 replicas that is
~1,900 encrypted frames a second at rest: 70 % of the idle leader's profile and
most of a 100-agent fleet's idle CPU (bench/results/scale_100_idle_leader.txt).

A replica's heartbeat carries nothing Raft's safety depends on: it neither votes
nor counts for a commit, and it has no election timer. The heartbeat only tells
it the commit index (so it applies what was committed) and keeps the connection
from timing out (pysyncobj drops one that is silent for ``connectionTimeout``,
3.5 s). So an empty ``append_entries`` to a replica is sent when it carries news
— a term, commit index or log position this replica was not sent last — and otherwise at
most once per ``period``. Entries, snapshots and every message to a voter go as
pysyncobj sends them: a replica is exactly as up to date as before, only the
"nothing new" frames are thinned.

Pure: the patched transport (``patches.py``, rule 5) asks :meth:`ReplicaHeartbeats.due`.
"""

from __future__ import annotations

from typing import Any

# What makes an append_entries news to a replica: a term, a commit index or a log position
# (prevLogIdx/Term: where the leader believes the replica's log ends) it was not sent last.
_NEWS = ("term", "commit_index", "prevLogIdx", "prevLogTerm")


def is_heartbeat(message: Any) -> bool:
    """An ``append_entries`` with no entries and no snapshot part (``syncobj.py:1299-1306``)."""
    return (isinstance(message, dict) and message.get("type") == "append_entries" and not message.get("entries")
            and "serialized" not in message and "transmission" not in message)


class ReplicaHeartbeats:
    """What each replica was last sent; one per leader's transport, on its tick thread."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._last: dict[Any, tuple[tuple[Any, ...], float]] = {}
        self.skipped = 0

    def due(self, node: Any, message: Any, now: float) -> bool:
        """Send ``message`` to the replica ``node`` at ``now``? Records it when the answer is yes."""
        if isinstance(message, dict) and message.get("type") == "append_entries":
            news = tuple(message.get(key) for key in _NEWS)
            last = self._last.get(node)
            if is_heartbeat(message) and last is not None and last[0] == news and now - last[1] < self.period:
                self.skipped += 1
                return False
            self._last[node] = (news, now)
        return True

    def forget(self, node: Any) -> None:
        """The replica disconnected (a reconnect is a new node to pysyncobj: it hears at once)."""
        self._last.pop(node, None)
