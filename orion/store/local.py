"""``LocalStore``: the in-process fake of the ``Store`` port (``port.py``).

It applies each command at once, under one lock, exactly as a replica applies a
committed entry (a ``Batch`` included): tests of the API and of the leader's and
the node's loops run against it where Raft itself is not under test. The real
backend is ``orion/raft/store.py``, tested over real sockets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from orion.state.commands import Command
from orion.state.entries import apply_entry
from orion.state.machine import StateMachine
from orion.state.results import Result
from orion.store.admission import Admission, decide
from orion.store.digest import DigestCache
from orion.store.port import LeaderContact, MembershipAction, NoLeader, NotLeader, RaftStatus


class LocalStore:
    """A single-process store that applies commands at once. For unit tests of
    the API and controllers, where Raft itself is not under test.

    Its membership is a list it keeps: changes are recorded at once, so a test
    sees what a caller asked for, but no other member ever exists behind them.
    """

    def __init__(self, machine: StateMachine | None = None, self_addr: str = "local") -> None:
        self._machine = machine or StateMachine()
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._index = 0
        self._listeners: list[Callable[[int], None]] = []
        self._self = self_addr
        self._members = {self_addr}
        self.leader = True
        self._digests = DigestCache(self.read)

    def submit(self, command: Command, timeout: float) -> Result:
        if not self.leader:
            raise NoLeader("no Raft leader: the cluster has lost quorum; writes are refused until it recovers")
        with self._cond:
            self._index += 1
            result = apply_entry(self._machine, command, self._index)  # a Batch as Raft would apply it
            index = self._index
            self._cond.notify_all()
        for fn in list(self._listeners):
            fn(index)
        return result

    def read(self, fn: Callable[[StateMachine], Any]) -> tuple[Any, int]:
        with self._lock:
            return fn(self._machine), self._index

    def barrier(self, timeout: float) -> None:
        """Every command applies at once here: any read is already linearizable (while it leads)."""
        if not self.leader:
            raise NoLeader("no Raft leader: a linearizable read needs one; add ?stale to read this replica")

    def leader_contact(self) -> LeaderContact:
        return LeaderContact(known_leader=self.leader, last_contact_ms=0)

    def status(self) -> RaftStatus:
        return RaftStatus(self._self, self._self if self.leader else None, self.leader, 1,
                          self._index, self._index, tuple(self.members()))

    def has_leader(self) -> bool:
        return self.leader

    def ready(self) -> bool:
        return self.leader  # applies at once: always caught up

    def is_leader(self) -> bool:
        return self.leader

    def wait_applied(self, index: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._index >= index, timeout)

    def add_listener(self, fn: Callable[[int], None]) -> None:
        self._listeners.append(fn)

    def digest(self) -> tuple[str, int]:
        return self._digests.get()

    def members(self) -> list[str]:
        return sorted(self._members)

    def admit(self, addr: str, voter_cap: int, timeout: float) -> Admission:
        decision = decide(self._members, voter_cap, addr)
        if decision.role == "voter":
            self.change_membership("add", addr, timeout)
        return decision

    def change_membership(self, action: MembershipAction, addr: str, timeout: float) -> None:
        if not self.leader:
            raise NotLeader(None)
        if action == "add":
            self._members.add(addr)
        elif action == "remove":
            self._members.discard(addr)
        else:
            raise ValueError(f"membership action {action!r} is not add or remove")
