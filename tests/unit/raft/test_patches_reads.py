"""Rules 9 (ReadIndex) and 10 (pre-vote) of orion/raft/patches.py, message by message.

Three real pysyncobj engines (our ``Engine``) on the in-memory network of
``memory_net.py``: the test ticks them and decides which frame arrives when, so a
deposed leader, a round answered by one follower only, or a voter coming back
are exact sequences, not timing. Where it shows something, the same sequence
runs over the bare transport (``patched=False``) to show what upstream does.
"""

from __future__ import annotations

import inspect

import pytest
from memory_net import Network, engine, stabilize
from pysyncobj import SyncObj

from orion.raft.prevote import PRE_VOTE, PRE_VOTE_ANSWER
from orion.raft.read_index import READ_ACK, READ_ANSWER, READ_ASK, READ_LEADER_CHANGED, READ_OK, READ_ROUND

A, B, C = "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"


def three(tmp_path, patched: bool = True):
    """A leads B and C (it campaigns at its first tick; theirs never fire in a test)."""
    net = Network()
    a, ca = engine(net, tmp_path, A, [B, C], patched=patched, alone=True)
    b, cb = engine(net, tmp_path, B, [A, C], patched=patched)
    c, cc = engine(net, tmp_path, C, [A, B], patched=patched)
    for x, others in ((A, (B, C)), (B, (A, C)), (C, (A, B))):
        for o in others:
            net.transports[x].connect(o)
    stabilize(net, [a, b, c])
    assert a._isLeader() and b._getLeader().address == A and c._getLeader().address == A
    return net, (a, b, c), ca


class Answers:
    """Read callbacks that record what they were told."""

    def __init__(self) -> None:
        self.got: dict[str, tuple[int | None, int]] = {}

    def cb(self, name: str):
        return lambda index, code: self.got.__setitem__(name, (index, code))


def rounds_in_flight(net, src: str = A) -> list[int]:
    return sorted({m[READ_ROUND] for s, _, m in net.inflight if s == src and m["type"] == "append_entries"})


# -- rule 9: ReadIndex --------------------------------------------------------------------------
def test_rule9_reads_that_arrive_together_share_one_round_and_one_follower_makes_the_majority(tmp_path):
    net, (a, b, c), ca = three(tmp_path)
    ca.add("x")
    stabilize(net, [a, b, c])
    answers = Answers()
    for name in ("r1", "r2", "r3"):
        a.read_index(answers.cb(name))
    rounds = a.reads.leader.rounds_started
    a.doTick(0.0)
    assert a.reads.leader.rounds_started == rounds + 1 and rounds_in_flight(net) == [a.reads.round]
    assert answers.got == {}  # nothing before a majority confirmed the round
    net.deliver_all("append_entries", A, C)
    net.take("append_entries", A, B)  # B never hears this round
    c.doTick(0.0)
    net.deliver_all(src=C, dst=A)
    a.doTick(0.0)
    assert answers.got == {n: (a.raftCommitIndex, READ_OK) for n in ("r1", "r2", "r3")}
    assert a.raftLastApplied >= a.raftCommitIndex


def test_rule9_a_read_that_arrives_during_a_round_waits_for_the_next_one_started_when_it_returns(tmp_path):
    net, (a, b, c), _ = three(tmp_path)
    answers = Answers()
    a.read_index(answers.cb("early"))
    a.doTick(0.0)
    first = net.take("append_entries", A)
    a.read_index(answers.cb("late"))
    a.doTick(0.0)
    assert net.take("append_entries", A) == []  # one round in flight at a time: the late read waits
    net.deliver(first)
    b.doTick(0.0)
    c.doTick(0.0)
    net.deliver_all(dst=A)
    assert set(answers.got) == {"early"}  # confirmed as the majority's acknowledgement arrived
    a.doTick(0.0)  # the next round, for the late read alone
    assert {m[READ_ROUND] for _, _, m in net.inflight if m["type"] == "append_entries"} \
        == {first[0][2][READ_ROUND] + 1}
    stabilize(net, [a, b, c])
    assert set(answers.got) == {"early", "late"}


def test_rule9_a_round_is_acknowledged_at_once_not_after_the_followers_sync(tmp_path):
    net, (a, b, c), ca = three(tmp_path)
    answers = Answers()
    ca.add("x")
    a.doTick(0.0)  # an entry goes out ...
    a.read_index(answers.cb("read"))
    a.doTick(0.0)  # ... then the round, behind it
    net.deliver_all("append_entries", A, C)  # C appends the entry: its answers wait for its sync
    assert c.journal.unsynced
    assert [m["type"] for _, _, m in net.take(src=C, dst=A)] == [READ_ACK]  # the ack alone: not held
    net.deliver([(C, A, {"type": READ_ACK, "round": a.reads.round})])
    a.doTick(0.0)
    assert answers.got["read"][1] == READ_OK


def test_rule9_a_deposed_leader_never_answers_from_before_it_was_deposed(tmp_path):
    net, (a, b, c), ca = three(tmp_path)
    term = a.raftCurrentTerm
    # A is cut off (paused); B and C elect B at the next term and commit a write.
    c.last_leader_contact = None  # C has not heard from A for an election timeout
    b._SyncObj__raftElectionDeadline = 0
    for _ in range(10):
        b.doTick(0.0)
        c.doTick(0.0)
        net.take(src=A)
        net.take(dst=A)
        net.deliver_all()
    assert b._isLeader() and b.raftCurrentTerm == term + 1
    b_counter_index = b.raftCommitIndex
    # A resumes, still believing it leads, and takes a read: its round reaches B and C ...
    assert a._isLeader()
    answers = Answers()
    a.read_index(answers.cb("read"))
    a.doTick(0.0)
    net.deliver_all("append_entries", A)
    b.doTick(0.0)
    c.doTick(0.0)
    assert not [f for f in net.inflight if f[1] == A]  # ... refused (older term): no answer, no acknowledgement
    net.deliver_all(dst=A)
    a.doTick(0.0)
    assert answers.got == {}  # never confirmed
    b._SyncObj__newAppendEntriesTime = 0  # B's next heartbeat is due
    stabilize(net, [a, b, c])  # it reaches A: it follows, and the read is abandoned
    assert not a._isLeader() and answers.got == {"read": (None, READ_LEADER_CHANGED)}
    assert b.raftCommitIndex >= b_counter_index


def test_rule9_a_followers_reads_go_to_the_leader_as_one_request_and_wait_for_its_apply(tmp_path):
    net, (a, b, c), ca = three(tmp_path)
    answers = Answers()
    ca.add("x")
    a.doTick(0.0)  # appended and sent: not yet committed anywhere
    committed = a.raftCommitIndex
    b.read_index(answers.cb("r1"))
    b.read_index(answers.cb("r2"))
    b.doTick(0.0)
    asks = [m for _, _, m in net.inflight if m["type"] == READ_ASK]
    assert len(asks) == 1 and b.reads.forwarded.requests_sent == 1
    stabilize(net, [a, b, c])
    index, code = answers.got["r1"]
    assert code == READ_OK and answers.got["r2"] == (index, READ_OK)
    # The read arrived before "x" committed: its index is the commit index of that moment.
    assert index == committed and b.raftLastApplied >= index


def test_rule9_a_follower_holds_the_read_until_its_replica_applied_the_leaders_index(tmp_path):
    net, (a, b, c), ca = three(tmp_path)
    answers = Answers()
    ca.add("x")
    a.doTick(0.0)
    net.deliver_all("append_entries", A, C)  # C gets the entry, B does not (yet)
    c.doTick(0.0)
    net.deliver_all("next_node_idx", C, A)
    a.doTick(0.0)  # committed by A and C
    held_for_b = net.take("append_entries", A, B)
    b.read_index(answers.cb("read"))
    b.doTick(0.0)
    net.deliver_all(READ_ASK)
    a.doTick(0.0)  # round: B's copy of it is held back with the entry
    held_for_b += net.take("append_entries", A, B)
    net.deliver_all("append_entries", A, C)
    c.doTick(0.0)
    net.deliver_all(src=C, dst=A)
    a.doTick(0.0)
    net.deliver_all(READ_ANSWER)
    b.doTick(0.0)
    assert answers.got == {} and b.raftLastApplied < a.raftCommitIndex  # told the index, not there yet
    net.deliver(held_for_b)
    b.doTick(0.0)
    b.doTick(0.0)
    assert answers.got == {"read": (a.raftCommitIndex, READ_OK)}


def test_rule9_a_new_leader_answers_only_once_an_entry_of_its_term_committed(tmp_path):
    net = Network()
    a, _ = engine(net, tmp_path, A, [B], alone=True)
    b, _ = engine(net, tmp_path, B, [A])
    net.transports[A].connect(B)
    net.transports[B].connect(A)
    answers = Answers()
    for _ in range(3):  # pre-vote, vote: A leads, its NO_OP sent but not acknowledged
        a.doTick(0.0)
        net.deliver_all(dst=B)
        b.doTick(0.0)
        net.deliver_all(dst=A, kind=PRE_VOTE_ANSWER)
        net.deliver_all(dst=A, kind="response_vote")
    assert a._isLeader()
    noop = a._SyncObj__noopIDx
    assert a.raftCommitIndex < noop
    a.read_index(answers.cb("read"))
    a.doTick(0.0)
    stabilize(net, [a, b])
    assert answers.got == {"read": (a.raftCommitIndex, READ_OK)} and a.raftCommitIndex >= noop


# -- rule 10: pre-vote ----------------------------------------------------------------------------
def campaign_after_timeout(engine_, net, engines, rounds: int = 6, cut: str | None = None) -> None:
    """``engine_``'s election timer fires now; everything in flight is delivered (but to or
    from ``cut``: dropped)."""
    engine_._SyncObj__raftElectionDeadline = 0
    for _ in range(rounds):
        for e in engines:
            e.doTick(0.0)
        if cut is not None:
            net.take(src=cut)
            net.take(dst=cut)
        net.deliver_all()


@pytest.mark.parametrize("patched", [True, False])
def test_rule10_a_voter_whose_timer_fired_while_away_does_not_depose_a_healthy_leader(tmp_path, patched):
    net, (a, b, c), _ = three(tmp_path, patched=patched)
    term = a.raftCurrentTerm
    campaign_after_timeout(c, net, [a, b, c])  # C comes back (partitioned, or removed and re-added)
    if patched:
        assert a._isLeader() and a.raftCurrentTerm == c.raftCurrentTerm == term
        assert c.prevote.refused >= 2  # asked, refused by the leader and by B (it hears the leader)
        stabilize(net, [a, b, c])
        assert c._getLeader().address == A
    else:  # upstream: C campaigns at a new term, and A steps down for it
        assert a.raftCurrentTerm > term and c.raftCurrentTerm > term


def test_rule10_a_voter_that_asks_campaigns_once_a_majority_has_not_heard_the_leader(tmp_path):
    net, (a, b, c), _ = three(tmp_path)
    term = a.raftCurrentTerm
    c.last_leader_contact = None  # C has not heard from A for an election timeout
    campaign_after_timeout(b, net, [b, c], cut=A)  # A is gone
    assert b._isLeader() and b.raftCurrentTerm == term + 1 and b.prevote.rounds == 1


def test_rule10_an_asker_refused_with_a_higher_term_takes_it(tmp_path):
    net, (a, b, c), _ = three(tmp_path)
    behind = c.raftCurrentTerm
    c._SyncObj__setCurrentTerm(behind, None)
    a._SyncObj__setCurrentTerm(a.raftCurrentTerm + 5, None)  # A moved on (say, elections C missed)
    c._SyncObj__raftElectionDeadline = 0
    c.doTick(0.0)
    net.deliver_all(PRE_VOTE, C, A)
    a.doTick(0.0)
    net.deliver_all(PRE_VOTE_ANSWER, A, C)
    assert c.raftCurrentTerm == behind + 5 and not c._isLeader()


def test_rule10_a_leadership_transfer_is_not_asked_about(tmp_path):
    net, (a, b, c), _ = three(tmp_path)
    term = a.raftCurrentTerm
    b._SyncObj__transferInProgress = True  # A sent TimeoutNow to B
    b._SyncObj__raftElectionDeadline = 0
    b.doTick(0.0)
    assert [m["type"] for _, _, m in net.inflight if m["type"] in (PRE_VOTE, "request_vote")] == ["request_vote"] * 2
    assert b.raftCurrentTerm == term + 1


def test_the_upstream_code_rules_9_and_10_rely_on_is_still_there():
    """An upgrade of pysyncobj that moves any of these fails here, not in production."""
    source = inspect.getsource(SyncObj)
    for needle in ("self.__noopIDx = idx",  # rule 9: a leader's first entry of its term
                   "message['type'] == 'append_entries' and message['term'] >= self.__raftCurrentTerm",
                   "def __sendAppendEntries(self):", "def __applyLogEntries(self):",
                   "needSendAppendEntries = self.__applyLogEntries()",  # rule 9: applied after the pass's sync
                   # rule 10: the campaign it holds back, and the transfer it lets through
                   "if self.__raftElectionDeadline < monotonicTime() and self.__connectedToAnyone():",
                   "self.__transferInProgress = True", "def __generateRaftTimeout(self):"):
        assert needle in source, needle
