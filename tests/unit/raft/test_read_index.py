"""The pure decisions of ReadIndex (orion/raft/read_index.py) and pre-vote (prevote.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orion.raft.prevote import LogPosition, PreVote, answer, grant
from orion.raft.read_index import (
    READ_ACK,
    READ_ANSWER,
    READ_ASK,
    READ_LEADER_CHANGED,
    READ_NO_LEADER,
    READ_OK,
    Facts,
    ForwardedReads,
    LeaderReads,
    NodeReads,
)


def facts(**kw) -> Facts:
    base = {"leading": True, "term": 3, "commit_index": 10, "term_committed": True, "last_applied": 10,
            "leader": "A", "voters": frozenset({"B", "C"})}
    return Facts(**{**base, **kw})


# -- LeaderReads --------------------------------------------------------------------------------
def test_reads_registered_before_a_round_share_it_and_take_the_commit_index_of_their_arrival():
    reads: LeaderReads[str, str] = LeaderReads()
    reads.register("r1", 10, True)
    reads.register("r2", 12, True)
    assert reads.round_due(now=0.0, patience=1.0)
    reads.start_round()
    assert not reads.round_due(now=0.0, patience=1.0) and reads.rounds_started == 1
    assert reads.settle({"B", "C"}, 15, True) == []  # no answer yet
    reads.ack("C", 1)
    assert reads.settle({"B", "C"}, 15, True) == [("r1", 10), ("r2", 12)]


def test_an_answer_to_an_older_round_confirms_nothing_newer():
    reads: LeaderReads[str, str] = LeaderReads()
    reads.register("early", 5, True)
    reads.start_round()
    reads.register("late", 6, True)
    reads.start_round()
    reads.ack("B", 1)
    assert reads.settle({"B", "C"}, 6, True) == [("early", 5)]
    reads.ack("B", 2)
    assert reads.settle({"B", "C"}, 6, True) == [("late", 6)]


def test_before_its_term_committed_a_read_takes_the_commit_index_once_it_has():
    reads: LeaderReads[str, str] = LeaderReads()
    reads.register("r", 4, term_committed=False)
    reads.start_round()
    reads.ack("B", 1)
    assert reads.settle({"B", "C"}, 4, False) == []
    assert reads.settle({"B", "C"}, 7, True) == [("r", 7)]


def test_a_voter_alone_confirms_its_own_rounds():
    reads: LeaderReads[str, str] = LeaderReads()
    reads.register("r", 3, True)
    reads.start_round()
    assert reads.settle(set(), 3, True) == [("r", 3)]


@given(st.lists(st.integers(0, 5), min_size=0, max_size=6), st.integers(1, 5))
def test_the_confirmed_round_is_the_newest_a_majority_acknowledged(acks, started):
    reads: LeaderReads[str, int] = LeaderReads()
    for _ in range(started):
        reads.start_round()
    voters = list(range(len(acks)))
    for node, round_ in zip(voters, acks, strict=True):
        if round_:
            reads.ack(node, min(round_, started))
    majority = (len(voters) + 1) // 2 + 1

    def confirmed(r: int) -> bool:  # by definition: the leader and enough voters acknowledged r
        return r <= started and 1 + sum(min(a, started) >= r for a in acks) >= majority

    assert reads.confirmed_round(voters) == max((r for r in range(started + 1) if confirmed(r)), default=0)


def test_abandon_hands_back_every_pending_read_and_forgets_the_answers():
    reads: LeaderReads[str, str] = LeaderReads()
    reads.register("r", 1, True)
    reads.start_round()
    reads.ack("B", 1)
    assert reads.abandon() == ["r"] and len(reads) == 0
    assert reads.confirmed_round({"B", "C"}) == 0


def test_one_round_in_flight_and_one_unconfirmed_for_too_long_is_replaced():
    reads: LeaderReads[str, str] = LeaderReads()
    reads.register("r1", 1, True)
    reads.start_round(now=10.0)
    reads.register("r2", 1, True)
    assert not reads.round_due(now=10.1, patience=0.4)  # r2 waits for the round in flight
    assert reads.round_due(now=10.4, patience=0.4)  # its acknowledgements may have been lost
    reads.start_round(now=10.4)
    reads.ack("B", 2)
    assert reads.settle({"B", "C"}, 1, True) == [("r1", 1), ("r2", 1)]  # the new round covers both


# -- ForwardedReads -----------------------------------------------------------------------------
def test_a_followers_reads_between_two_ticks_go_as_one_request():
    fwd: ForwardedReads[str] = ForwardedReads()
    fwd.add("r1")
    fwd.add("r2")
    request = fwd.batch("A")
    assert fwd.batch("A") is None and fwd.requests_sent == 1
    assert request is not None and fwd.answered(request) == ["r1", "r2"]


def test_a_request_unanswered_for_too_long_is_asked_again_and_its_late_answer_ignored():
    fwd: ForwardedReads[str] = ForwardedReads()
    fwd.add("r")
    old = fwd.batch("A", now=5.0)
    fwd.lost("A", now=5.3, patience=0.4)
    assert fwd.batch("A", now=5.3) is None  # still waiting: one request at a time
    fwd.lost("A", now=5.4, patience=0.4)
    new = fwd.batch("A", now=5.4)
    assert new is not None and new != old
    assert old is not None and fwd.answered(old) == [] and fwd.answered(new) == ["r"]


def test_a_request_to_a_leader_no_longer_reached_is_asked_again():
    fwd: ForwardedReads[str] = ForwardedReads()
    fwd.add("r")
    fwd.batch("A")
    fwd.lost("A")
    assert fwd.batch("B") is None  # still with A
    fwd.lost("B")
    assert fwd.batch("B") is not None


# -- NodeReads ----------------------------------------------------------------------------------
def test_on_the_leader_a_followers_request_starts_a_round_and_is_answered_as_a_majority_acknowledges():
    reads = NodeReads()
    reads.before_tick(facts(), [])
    out = reads.on_message("B", {"type": READ_ASK, "id": 7}, facts())
    assert out.sends == [] and out.start_round
    out = reads.on_message("C", {"type": READ_ACK, "round": reads.round}, facts(commit_index=11))
    assert out.sends == [("B", {"type": READ_ANSWER, "id": 7, "index": 10})]


def test_a_node_that_does_not_lead_refuses_a_request_and_its_reads_fail_without_a_leader():
    reads = NodeReads()
    out = reads.on_message("B", {"type": READ_ASK, "id": 1}, facts(leading=False, leader="C"))
    assert out.sends == [("B", {"type": READ_ANSWER, "id": 1, "error": READ_LEADER_CHANGED})]
    got = []
    out = reads.before_tick(facts(leading=False, leader=None), [lambda i, c: got.append((i, c))])
    for cb, index, code in out.answers:
        cb(index, code)
    assert got == [(None, READ_NO_LEADER)]


def test_losing_leadership_abandons_local_reads_and_refuses_the_followers():
    reads = NodeReads()
    got = []
    reads.before_tick(facts(), [lambda i, c: got.append((i, c))])
    reads.on_message("B", {"type": READ_ASK, "id": 2}, facts())
    out = reads.after_tick(facts(leading=False, term=4, leader="B"))
    assert [(i, c) for _, i, c in out.answers] == [(None, READ_LEADER_CHANGED)]
    assert out.sends == [("B", {"type": READ_ANSWER, "id": 2, "error": READ_LEADER_CHANGED})]


def test_a_follower_answers_once_its_replica_applied_the_leaders_index():
    reads = NodeReads()
    follower = facts(leading=False, leader="A", last_applied=8)
    (ask,) = reads.before_tick(follower, [lambda i, c: None]).sends  # asked at once, before the pass's sync
    out = reads.on_message("A", {"type": READ_ANSWER, "id": ask[1]["id"], "index": 9}, follower)
    assert out.answers == []
    assert [(i, c) for _, i, c in reads.after_tick(facts(leading=False, leader="A", last_applied=9)).answers] \
        == [(9, READ_OK)]


# -- pre-vote -----------------------------------------------------------------------------------
LOG = LogPosition(term=3, index=20)


def test_a_voter_that_hears_a_leader_or_leads_refuses():
    assert not grant(4, LOG, term=3, log=LOG, leading=True, since_leader=None, election_min=0.4)
    assert not grant(4, LOG, term=3, log=LOG, leading=False, since_leader=0.1, election_min=0.4)
    assert grant(4, LOG, term=3, log=LOG, leading=False, since_leader=0.5, election_min=0.4)
    assert grant(4, LOG, term=3, log=LOG, leading=False, since_leader=None, election_min=0.4)


def test_a_voter_refuses_an_asker_behind_in_term_or_log():
    assert not grant(3, LOG, term=3, log=LOG, leading=False, since_leader=None, election_min=0.4)
    assert not grant(4, LogPosition(3, 19), term=3, log=LOG, leading=False, since_leader=None, election_min=0.4)
    assert not grant(4, LogPosition(2, 99), term=3, log=LOG, leading=False, since_leader=None, election_min=0.4)
    assert grant(4, LogPosition(4, 1), term=3, log=LOG, leading=False, since_leader=None, election_min=0.4)


def test_a_round_is_won_with_a_majority_and_late_or_foreign_answers_do_not_count():
    pv: PreVote[str] = PreVote()
    ask = pv.start(3, LOG)
    assert ask["term"] == 4 and ask["round"] == 1
    assert not pv.answer("X", 1, True, {"B", "C", "D", "E"})  # not a voter
    assert not pv.answer("B", 0, True, {"B", "C", "D", "E"})  # an older round
    assert not pv.answer("B", 1, True, {"B", "C", "D", "E"})  # 2 of 5
    assert pv.answer("C", 1, True, {"B", "C", "D", "E"})  # 3 of 5
    pv.cancel()  # then a leader was heard
    assert not pv.campaign()


def test_the_answer_carries_the_voters_term():
    reply = answer({"round": 2, "term": 4, "last_log_index": 20, "last_log_term": 3}, term=6, log=LOG,
                   leading=False, since_leader=None, election_min=0.4)
    assert reply == {"type": "orion_pre_vote_answer", "round": 2, "granted": False, "term": 6}
