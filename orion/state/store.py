"""The replicated store as the rest of Orion sees it.

The API, the controller and the reconciler talk to this interface only; the
pysyncobj backend (``orion/state/raft.py``) is one implementation, and tests of
the API may use an in-process one (``LocalStore``) that applies commands
directly. This is Patroni's lesson: the consensus library is one small module
behind an abstract interface.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orion.state.admission import Admission, decide
from orion.state.batch import apply_entry
from orion.state.commands import Command
from orion.state.digest import DigestCache
from orion.state.machine import StateMachine

# A Raft membership change: add a voter, or remove one.
MembershipAction = Literal["add", "remove"]


class StoreError(Exception):
    """A write could not be committed. ``http_status`` is what the API answers."""

    http_status = 503


class NoLeader(StoreError):
    """No Raft leader is known: the cluster has no quorum (or is electing)."""


class WriteTimeout(StoreError):
    """The command was sent but not committed within its deadline."""


class NotLeader(StoreError):
    """Only the leader changes membership; ``leader`` is the Raft address of the one this
    node knows (None: none known), so the caller can ask it instead."""

    def __init__(self, leader: str | None) -> None:
        super().__init__(f"this node is not the Raft leader (the leader is {leader or 'unknown'}): "
                         "membership changes are made by the leader")
        self.leader = leader


@dataclass(frozen=True)
class RaftStatus:
    """What ``GET /raft`` shows. Plain values, read at one moment."""

    self_addr: str
    leader: str | None
    is_leader: bool
    term: int
    commit_index: int
    applied_index: int
    members: tuple[str, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "self": self.self_addr,
            "leader": self.leader,
            "is_leader": self.is_leader,
            "term": self.term,
            "commit_index": self.commit_index,
            "applied_index": self.applied_index,
            "members": list(self.members),
            **self.extra,
        }


class Store(Protocol):
    """Replicated state: submit commands, read the machine, hear about changes."""

    def submit(self, command: Command, timeout: float) -> Any:
        """Commit ``command`` and return what ``StateMachine.apply`` returned.

        Raises NoLeader or WriteTimeout: never a silent success.
        """

    def read(self, fn: Callable[[StateMachine], Any]) -> tuple[Any, int]:
        """Run ``fn`` on the local machine under its lock; return (result, applied index)."""

    def status(self) -> RaftStatus:
        """Current Raft view of this node."""

    def has_leader(self) -> bool:
        """True while this node reaches a leader that has a quorum (writes can commit)."""

    def ready(self) -> bool:
        """``has_leader`` and this replica has caught up: it has applied everything the leader
        had committed when this replica first heard from it (what ``GET /health`` answers)."""

    def is_leader(self) -> bool:
        """True on the leader (controller loops run only there)."""

    def wait_applied(self, index: int, timeout: float) -> bool:
        """Block until the local machine has applied ``index`` (or timeout)."""

    def add_listener(self, fn: Callable[[int], None]) -> None:
        """Call ``fn(applied_index)`` after every apply, outside the lock; must not block."""

    def digest(self) -> tuple[str, int]:
        """(SHA-256 of the machine's canonical snapshot, the applied index it was taken at)."""

    def members(self) -> list[str]:
        """Addresses of the Raft voters as this node knows them, sorted."""

    def admit(self, addr: str, voter_cap: int, timeout: float) -> Admission:
        """On the leader: decide whether ``addr`` joins as a voter or a replica
        (``orion/state/admission.py``) and, for a voter, add it; serialized with every other
        membership change. Raises NotLeader elsewhere, WriteTimeout or StoreError when the
        change is not committed.
        """

    def change_membership(self, action: MembershipAction, addr: str, timeout: float) -> None:
        """On the leader: add or remove the voter at ``addr`` (a no-op when already so).

        Raises NotLeader elsewhere, WriteTimeout or StoreError when the change is not committed.
        """


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

    def submit(self, command: Command, timeout: float) -> Any:
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
