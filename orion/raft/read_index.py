"""Raft's ReadIndex (thesis §6.4), decided purely: when a read may answer, at which index.

A linearizable read must see every write that completed before it arrived. The
log is not needed for that, only two facts: the leader's commit index at the
moment the read arrived (the *read index*), and proof that this node was still
the leader at some moment after that (a heartbeat round acknowledged by a
majority: no other leader can have committed anything in between, since a new
one needs a majority's votes, and a majority had just accepted our term). The
read then answers from any replica that has applied at least the read index.
Reads cost no log entry, and all the reads waiting for a round share it.

:class:`NodeReads` is what ``patches.py`` (rule 9) runs on the Raft tick thread:
it is told the engine's facts as a value (:class:`Facts`) and hands back what to
do (:class:`Outbox`: messages to send, reads to answer). It composes three roles:

* :class:`LeaderReads` — on the leader: a read (local or asked by a follower) is
  registered with the commit index, and waits for the first round started after
  it; rounds are numbered, followers acknowledge each one (``READ_ACK``).
  A leader that has not yet committed an entry of its own term (its NO_OP,
  ``syncobj.py:1227``) does not know the true commit index yet (thesis §6.4 step 1):
  its reads take the commit index once that entry has committed.
* :class:`ForwardedReads` — on a follower or non-voting replica: the reads that
  arrive between two ticks go to the leader as one request, and come back with
  one read index.
* :class:`AppliedWait` — anywhere: a read whose index is known waits until the
  local engine has applied it.

A token is whatever the caller uses to answer the read (a callback); this module
never calls it, it only says which tokens are done.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")
N = TypeVar("N", bound=Hashable)

# The key the leader's round number travels under in append_entries; a follower's
# acknowledgement of a round; the two messages of a follower's reads.
READ_ROUND = "read_round"
READ_ACK = "orion_read_ack"
READ_ASK, READ_ANSWER = "orion_read_index", "orion_read_index_answer"
# How a read ends: the second argument of its callback (the first is the index, or None).
READ_OK, READ_NO_LEADER, READ_LEADER_CHANGED = 0, 1, 2
# A local read's callback: (read index or None, one of the codes above).
ReadCallback = Callable[[int | None, int], None]


@dataclass
class _Pending(Generic[T]):
    token: T
    index: int | None  # None until the leader committed an entry of its term
    needs_round: int  # the first round started after the read was registered


class LeaderReads(Generic[T, N]):
    """The leader's reads waiting for a quorum's confirmation; one per leadership (a new
    term starts a new one: :meth:`abandon` hands back what the old one held)."""

    def __init__(self) -> None:
        self.round = 0  # the newest round started (carried by every append_entries as read_round)
        self.confirmed = 0  # the newest round a majority acknowledged
        self._started_at = 0.0  # when the newest round started
        self._acked: dict[N, int] = {}
        self._pending: list[_Pending[T]] = []
        self.rounds_started = 0

    def __len__(self) -> int:
        return len(self._pending)

    def register(self, token: T, commit_index: int, term_committed: bool) -> None:
        """A read arrived: its index is the commit index now (once this term committed an entry)."""
        self._pending.append(_Pending(token, commit_index if term_committed else None, self.round + 1))

    def round_due(self, now: float, patience: float) -> bool:
        """A read waits for a round not started yet, and none is in flight: start one (every
        read waiting shares it). One at a time, as etcd's server asks for one read index at a
        time: the reads that arrive meanwhile make the next round's batch, and each round costs
        a message to and from every voter. A round unconfirmed for ``patience`` is given up
        for a new one: a follower acknowledges each round once, and that message may have
        been lost with its connection."""
        if not any(p.needs_round > self.round for p in self._pending):
            return False
        return self.confirmed >= self.round or now - self._started_at >= patience

    def start_round(self, now: float = 0.0) -> int:
        self.round += 1
        self.rounds_started += 1
        self._started_at = now
        return self.round

    def ack(self, node: N, round_: int) -> None:
        """``node`` answered an append_entries of ``round_`` (it accepted our term)."""
        if round_ > self._acked.get(node, 0):
            self._acked[node] = round_

    def confirmed_round(self, voters: Collection[N]) -> int:
        """The newest round a majority of the voters (this leader and ``voters``, the others)
        acknowledged: the leader counts itself for every round it started."""
        needed = (len(voters) + 1) // 2  # others needed beside the leader for a majority
        if needed == 0:
            return self.round
        acks = sorted((self._acked.get(v, 0) for v in voters), reverse=True)
        return acks[needed - 1]

    def settle(self, voters: Collection[N], commit_index: int, term_committed: bool) -> list[tuple[T, int]]:
        """The reads now confirmed, each with its read index; the rest keep waiting."""
        confirmed = self.confirmed = max(self.confirmed, self.confirmed_round(voters))
        done: list[tuple[T, int]] = []
        waiting: list[_Pending[T]] = []
        for p in self._pending:
            if p.index is None and term_committed:
                p.index = commit_index
            if p.index is not None and p.needs_round <= confirmed:
                done.append((p.token, p.index))
            else:
                waiting.append(p)
        self._pending = waiting
        return done

    def abandon(self) -> list[T]:
        """Leadership lost (or a new term): nothing pending can be confirmed any more."""
        tokens = [p.token for p in self._pending]
        self._pending = []
        self._acked.clear()
        self.confirmed = self.round  # nothing in flight: a new leadership starts its first round at once
        return tokens


@dataclass
class _Request(Generic[T]):
    leader: Any
    sent_at: float
    tokens: list[T] = field(default_factory=list)


class ForwardedReads(Generic[T]):
    """A follower's reads: queued between ticks, sent to the leader as one request."""

    def __init__(self) -> None:
        self._queued: list[T] = []
        self._sent: dict[int, _Request[T]] = {}
        self._next_id = 0
        self.requests_sent = 0

    def __len__(self) -> int:
        return len(self._queued) + sum(len(r.tokens) for r in self._sent.values())

    def add(self, token: T) -> None:
        self._queued.append(token)

    def batch(self, leader: Any, now: float = 0.0) -> int | None:
        """Everything queued, as one request to ``leader``: its id (None: nothing queued, or a
        request still unanswered — one at a time, so the reads that arrive meanwhile share the
        next one)."""
        if not self._queued or self._sent:
            return None
        self._next_id += 1
        self._sent[self._next_id] = _Request(leader, now, self._queued)
        self._queued = []
        self.requests_sent += 1
        return self._next_id

    def answered(self, request_id: int) -> list[T]:
        """The leader answered request ``request_id`` (with an index, or a refusal)."""
        request = self._sent.pop(request_id, None)
        return request.tokens if request is not None else []

    def requeue(self, request_id: int) -> None:
        """Ask again (the leader refused: it is no longer the leader)."""
        self._queued.extend(self.answered(request_id))

    def lost(self, leader: Any | None, now: float = 0.0, patience: float = float("inf")) -> None:
        """Requests sent to any node but ``leader`` (the leader this node hears and is
        connected to; None: none), or unanswered for ``patience``, are asked again: the node
        they went to may never answer (a message lost with its connection). A late answer to
        the old request finds nothing to answer."""
        for request_id in [i for i, r in self._sent.items()
                           if leader is None or r.leader != leader or now - r.sent_at >= patience]:
            self.requeue(request_id)

    def drain(self) -> list[T]:
        """Everything, queued or sent (the engine stops, or this node became the leader)."""
        tokens = self._queued + [t for r in self._sent.values() for t in r.tokens]
        self._queued, self._sent = [], {}
        return tokens


class AppliedWait(Generic[T]):
    """Reads whose index is known, waiting until this replica has applied it."""

    def __init__(self) -> None:
        self._waiting: list[tuple[T, int]] = []

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, token: T, index: int) -> None:
        self._waiting.append((token, index))

    def ready(self, applied: int) -> list[tuple[T, int]]:
        done = [(t, i) for t, i in self._waiting if i <= applied]
        self._waiting = [(t, i) for t, i in self._waiting if i > applied]
        return done

    def drain(self) -> list[T]:
        tokens = [t for t, _ in self._waiting]
        self._waiting = []
        return tokens


@dataclass(frozen=True)
class Facts:
    """What the engine knows at one moment of its tick thread."""

    leading: bool
    term: int
    commit_index: int
    term_committed: bool  # the leader committed an entry of its own term (its NO_OP)
    last_applied: int  # the engine's, NO_OPs and membership entries included
    leader: Any | None  # the leader this node hears and is connected to (None: none; itself when leading)
    voters: frozenset[Any]  # the other voters (for a leader's quorum)
    now: float = 0.0  # monotonic seconds
    patience: float = float("inf")  # how long a round or a request may go unanswered before it is redone


@dataclass(frozen=True)
class Ask:
    """A follower's request, registered on the leader like a local read."""

    node: Any
    request_id: int


@dataclass
class Outbox:
    """What a step decided: messages to send, local reads to answer (callback, index, code)."""

    sends: list[tuple[Any, dict]] = field(default_factory=list)
    answers: list[tuple[ReadCallback, int | None, int]] = field(default_factory=list)
    start_round: bool = False


class NodeReads:
    """Every read of one engine: local ones (callbacks), and, on the leader, its followers'."""

    def __init__(self) -> None:
        self.leader: LeaderReads[ReadCallback | Ask, Any] = LeaderReads()
        self.forwarded: ForwardedReads[ReadCallback] = ForwardedReads()
        self.applied: AppliedWait[ReadCallback] = AppliedWait()
        self._term: int | None = None  # the term this node leads in, while it leads

    def __len__(self) -> int:
        return len(self.leader) + len(self.forwarded) + len(self.applied)

    @property
    def round(self) -> int:
        return self.leader.round

    def before_tick(self, facts: Facts, arrived: list[ReadCallback]) -> Outbox:
        """Register what arrived; start a round when a read waits for one; then as
        :meth:`after_tick` (the engine calls this before its pass's sync, so a follower's
        request leaves and an applied read answers without waiting for that sync)."""
        out = Outbox()
        self._follow_leadership(facts, out)
        for callback in arrived:
            self._register(callback, facts, out)
        if self._term is not None and self.leader.round_due(facts.now, facts.patience):
            self.leader.start_round(facts.now)
            out.start_round = True
        self._step(facts, out)
        return out

    def after_tick(self, facts: Facts) -> Outbox:
        """Confirmed reads to their index, forwarded reads to the leader, applied reads answered."""
        out = Outbox()
        self._follow_leadership(facts, out)
        self._step(facts, out)
        return out

    def _step(self, facts: Facts, out: Outbox) -> None:
        if self._term is not None:
            self._settle(facts, out)
        else:
            self.forwarded.lost(facts.leader, facts.now, facts.patience)
            if facts.leader is None:
                out.answers += [(cb, None, READ_NO_LEADER) for cb in self.forwarded.drain()]
            else:
                request_id = self.forwarded.batch(facts.leader, facts.now)
                if request_id is not None:
                    out.sends.append((facts.leader, {"type": READ_ASK, "id": request_id}))
        out.answers += [(cb, index, READ_OK) for cb, index in self.applied.ready(facts.last_applied)]

    def on_message(self, node: Any, message: dict, facts: Facts) -> Outbox:
        """On the leader, a follower's acknowledgement of a round (the reads it confirms are
        settled at once) or its request (its round starts at once); on a follower, the
        leader's answer. Acting as the message arrives spares each read a pass of the loop,
        and a pass may hold the journal's sync."""
        out = Outbox()
        if message.get("type") == READ_ACK:
            self.leader.ack(node, int(message["round"]))
            self._follow_leadership(facts, out)
            if self._term is not None:
                self._settle(facts, out)
        elif message.get("type") == READ_ASK:
            ask = Ask(node, int(message["id"]))
            if facts.leading and self._term == facts.term:
                self.leader.register(ask, facts.commit_index, facts.term_committed)
                if self.leader.round_due(facts.now, facts.patience):
                    self.leader.start_round(facts.now)
                    out.start_round = True
            else:
                out.sends.append((node, {"type": READ_ANSWER, "id": ask.request_id, "error": READ_LEADER_CHANGED}))
        elif message.get("type") == READ_ANSWER:
            callbacks = self.forwarded.answered(int(message["id"]))
            if "index" in message:
                for cb in callbacks:
                    self.applied.add(cb, int(message["index"]))
                out.answers += [(cb, index, READ_OK) for cb, index in self.applied.ready(facts.last_applied)]
            else:
                out.answers += [(cb, None, READ_LEADER_CHANGED) for cb in callbacks]
        return out

    def _settle(self, facts: Facts, out: Outbox) -> None:
        """The leader's confirmed reads: a follower's answered, a local one waits for its apply."""
        for token, index in self.leader.settle(facts.voters, facts.commit_index, facts.term_committed):
            if isinstance(token, Ask):
                out.sends.append((token.node, {"type": READ_ANSWER, "id": token.request_id, "index": index}))
            else:
                self.applied.add(token, index)
        out.answers += [(cb, index, READ_OK) for cb, index in self.applied.ready(facts.last_applied)]

    def _register(self, callback: ReadCallback, facts: Facts, out: Outbox) -> None:
        if self._term is not None:
            self.leader.register(callback, facts.commit_index, facts.term_committed)
        elif facts.leader is not None:
            self.forwarded.add(callback)
        else:
            out.answers.append((callback, None, READ_NO_LEADER))

    def _follow_leadership(self, facts: Facts, out: Outbox) -> None:
        """A new term or a lost leadership abandons the leader's reads: none can be confirmed."""
        leads_now = facts.term if facts.leading else None
        if leads_now == self._term:
            return
        if self._term is not None:
            for token in self.leader.abandon():
                if isinstance(token, Ask):
                    out.sends.append((token.node, {"type": READ_ANSWER, "id": token.request_id,
                                                   "error": READ_LEADER_CHANGED}))
                else:
                    out.answers.append((token, None, READ_LEADER_CHANGED))
        self._term = leads_now
        if leads_now is not None:  # reads this node had forwarded are now its own to confirm
            for callback in self.forwarded.drain():
                self.leader.register(callback, facts.commit_index, facts.term_committed)
