"""Pre-vote (Raft thesis §9.6), decided purely: ask before raising the term.

pysyncobj campaigns as soon as its election timer fires and it is connected to
anyone (``syncobj.py:634-650``): it raises its term, and every node that hears
the higher term steps down (``:920-923``), the leader included. So a voter that
was cut off — partitioned, paused, or removed from the configuration while it
was down and added back (the autopilot re-adds a returning node) — deposes a
healthy leader the moment it reconnects, because its timer fired long ago.

With pre-vote, a node whose timer fires first asks the voters whether they
*would* vote for it at the next term, changing nothing on either side, and
campaigns only when a majority says yes. A voter says yes only if it has not
heard from a leader for an election timeout (the leader never does) and the
asker's log is at least as up to date as its own (Raft's vote rule). So a node
that returns while the leader is healthy is refused by everyone, never raises
its term, and simply follows the leader's next heartbeat.

A refusal carries the refuser's term; an asker behind it takes that term (as
etcd's raft does on a rejected pre-vote), so a node with a stale term is not
refused forever by one that moved on. A leadership transfer (TimeoutNow) skips
pre-vote: the leader itself asked for that election.

Pure: ``patches.py`` (rule 10) builds the messages and asks these functions.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

N = TypeVar("N", bound=Hashable)

PRE_VOTE, PRE_VOTE_ANSWER = "orion_pre_vote", "orion_pre_vote_answer"


@dataclass(frozen=True)
class LogPosition:
    """The last entry of a log: (term, index), compared as Raft's vote rule compares them."""

    term: int
    index: int

    def at_least(self, other: LogPosition) -> bool:
        return (self.term, self.index) >= (other.term, other.index)


def grant(proposed_term: int, asker: LogPosition, *, term: int, log: LogPosition, leading: bool,
          since_leader: float | None, election_min: float) -> bool:
    """Would this voter (at ``term``, with ``log``) vote for the asker at ``proposed_term``?

    ``leading``: this voter is the leader. ``since_leader``: seconds since it last heard
    from a leader (None: never, since it started).
    """
    if leading:
        return False
    if since_leader is not None and since_leader < election_min:
        return False  # a leader is alive: no election is needed
    if proposed_term <= term:
        return False  # the asker is behind: it learns this term from the refusal
    return asker.at_least(log)


def answer(message: dict[str, Any], *, term: int, log: LogPosition, leading: bool,
           since_leader: float | None, election_min: float) -> dict[str, Any]:
    """This voter's answer to a ``PRE_VOTE`` (see :func:`grant`); it carries this voter's term."""
    asker = LogPosition(int(message["last_log_term"]), int(message["last_log_index"]))
    granted = grant(int(message["term"]), asker, term=term, log=log, leading=leading,
                    since_leader=since_leader, election_min=election_min)
    return {"type": PRE_VOTE_ANSWER, "round": message["round"], "granted": granted, "term": term}


class PreVote(Generic[N]):
    """One node's pre-vote rounds: each asks every voter again, at the term after ours."""

    def __init__(self) -> None:
        self.round = 0
        self._term = 0
        self._granted: set[N] = set()
        self.won = False
        self.rounds = 0
        self.refused = 0

    def start(self, term: int, log: LogPosition) -> dict[str, Any]:
        """A new round asking for ``term + 1``: the message to send every other voter."""
        self.round += 1
        self.rounds += 1
        self._term = term
        self._granted = set()
        self.won = False
        return {"type": PRE_VOTE, "round": self.round, "term": term + 1,
                "last_log_index": log.index, "last_log_term": log.term}

    @property
    def proposed_term(self) -> int:
        return self._term + 1

    def answer(self, node: N, round_: int, granted: bool, voters: Collection[N]) -> bool:
        """Count one answer of round ``round_`` from ``node``; True once the round is won: this
        node and a majority of ``voters`` (the other voters) said yes."""
        if round_ != self.round or node not in voters:
            return False
        if not granted:
            self.refused += 1
            return False
        self._granted.add(node)
        if not self.won and 1 + len(self._granted & set(voters)) > (len(voters) + 1) / 2:
            self.won = True
            return True
        return False

    def cancel(self) -> None:
        """A leader was heard: a round won before that no longer counts, nor do its late answers."""
        self.round += 1
        self.won = False

    def campaign(self) -> bool:
        """The election timer fired: campaign now (this round was won), or ask again (False)."""
        won, self.won = self.won, False
        return won
