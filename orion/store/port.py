"""The replicated store as the rest of Orion sees it: the ``Store`` port.

The API, the controller and the reconciler talk to this interface only; the
pysyncobj backend (``orion/raft/store.py``) is one implementation, and tests of
the API may use an in-process one (``local.py``: ``LocalStore``) that applies
commands directly. This is Patroni's lesson: the consensus library is one small
module behind an abstract interface.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from orion.state.commands import Command
from orion.state.machine import StateMachine
from orion.state.results import Result
from orion.store.admission import Admission

# A Raft membership change: add a voter, or remove one.
MembershipAction = Literal["add", "remove"]


class StoreError(Exception):
    """A write could not be committed. ``http_status`` is what the API answers."""

    http_status = 503


class NoLeader(StoreError):
    """No Raft leader is known: the cluster has no quorum (or is electing)."""


class WriteTimeout(StoreError):
    """The command was sent but not committed within its deadline."""


class NotCaughtUp(StoreError):
    """A linearizable read could not be served in time: no leader confirmed its leadership,
    or this replica did not apply the leader's commit index (``Store.barrier``)."""


class NotLeader(StoreError):
    """Only the leader changes membership; ``leader`` is the Raft address of the one this
    node knows (None: none known), so the caller can ask it instead."""

    def __init__(self, leader: str | None) -> None:
        super().__init__(f"this node is not the Raft leader (the leader is {leader or 'unknown'}): "
                         "membership changes are made by the leader")
        self.leader = leader


@dataclass(frozen=True)
class LeaderContact:
    """What a read says about where it came from (Consul's and Nomad's answer headers):
    ``known_leader`` — this node reaches a leader; ``last_contact_ms`` — how long since this
    node last heard from it (0 on the leader; since this replica started if it never has)."""

    known_leader: bool
    last_contact_ms: int


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

    def submit(self, command: Command, timeout: float) -> Result:
        """Commit ``command`` and return what ``StateMachine.apply`` returned (a ``Refused``
        when the machine refused it: never raised).

        Raises NoLeader or WriteTimeout: never a silent success.
        """

    def read(self, fn: Callable[[StateMachine], Any]) -> tuple[Any, int]:
        """Run ``fn`` on the local machine under its lock; return (result, applied index)."""

    def barrier(self, timeout: float) -> None:
        """Make the next ``read`` linearizable (Raft's ReadIndex): return once this replica has
        applied at least the leader's commit index as of this call, with the leader's leadership
        confirmed by a majority after this call. No log entry is written; concurrent callers
        share one confirmation. Raises NotCaughtUp or NoLeader (503) past ``timeout``."""

    def leader_contact(self) -> LeaderContact:
        """Whether this node reaches a leader, and how long since it last heard from it."""

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
        (``orion/store/admission.py``) and, for a voter, add it; serialized with every other
        membership change. Raises NotLeader elsewhere, WriteTimeout or StoreError when the
        change is not committed.
        """

    def change_membership(self, action: MembershipAction, addr: str, timeout: float) -> None:
        """On the leader: add or remove the voter at ``addr`` (a no-op when already so).

        Raises NotLeader elsewhere, WriteTimeout or StoreError when the change is not committed.
        """
