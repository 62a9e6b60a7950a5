"""AckQueue: a follower's answers to append_entries wait for the sync that covers them.

The transport asks the queue about every message it sends; what the queue
holds leaves, in order, after the next sync. These transcripts pin down which
messages wait and which may be merged.
"""

from __future__ import annotations

from orion.raft.ack_queue import AckQueue


def ack(next_idx: int, success: bool = True, reset: bool = False) -> dict:
    return {"type": "next_node_idx", "next_node_idx": next_idx, "success": success, "reset": reset}


VOTE = {"type": "response_vote", "term": 3}
ENTRIES = {"type": "append_entries", "term": 3, "entries": []}


def test_only_answers_to_append_entries_ever_wait():
    queue = AckQueue()
    assert not queue.hold("leader", VOTE, unsynced=True)  # the vote is synced by the journal itself
    assert not queue.hold("peer", ENTRIES, unsynced=True)  # a leader may send before its own sync
    assert len(queue) == 0


def test_an_answer_waits_only_while_the_journal_has_unsynced_bytes():
    queue = AckQueue()
    assert not queue.hold("leader", ack(5), unsynced=False)
    assert queue.hold("leader", ack(6), unsynced=True)
    assert queue.drain() == [("leader", ack(6))]
    assert not queue.hold("leader", ack(6), unsynced=False)


def test_answers_after_a_waiting_one_wait_too_so_they_leave_in_order():
    queue = AckQueue()
    assert queue.hold("leader", ack(6, success=False, reset=True), unsynced=True)
    assert queue.hold("leader", ack(9), unsynced=False)
    assert queue.drain() == [("leader", ack(6, success=False, reset=True)), ("leader", ack(9))]


def test_successes_in_a_row_leave_as_the_newest_one():
    """Each says 'my log matches up to here': the newest implies the others, and sending
    each would make pysyncobj's leader wind its next index back to every one."""
    queue = AckQueue()
    for next_idx in (11, 12, 13):
        assert queue.hold("leader", ack(next_idx), unsynced=True)
    assert queue.drain() == [("leader", ack(13))]


def test_a_refusal_between_successes_keeps_all_three_in_order():
    queue = AckQueue()
    queue.hold("leader", ack(11), unsynced=True)
    queue.hold("leader", ack(8, success=False, reset=True), unsynced=True)
    queue.hold("leader", ack(9), unsynced=True)
    assert [m["next_node_idx"] for _, m in queue.drain()] == [11, 8, 9]


def test_answers_to_different_leaders_are_not_merged():
    queue = AckQueue()
    queue.hold("old-leader", ack(11), unsynced=True)
    queue.hold("new-leader", ack(12), unsynced=True)
    assert queue.drain() == [("old-leader", ack(11)), ("new-leader", ack(12))]
    assert queue.drain() == []
