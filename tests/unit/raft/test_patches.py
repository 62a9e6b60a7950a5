"""Each rule of orion/raft/patches.py, driven message by message through real pysyncobj engines.

The engines are pysyncobj's own (our ``Engine`` subclass) on an in-memory network
(``memory_net.py``): the test ticks them and decides which message is delivered when.
Where it shows something, the same sequence runs with the rule off (``patched=False``)
to show what upstream pysyncobj 0.3.17 does — so each test can fail.
"""

from __future__ import annotations

import inspect
import threading
import time

import pytest
from memory_net import Network, engine, stabilize
from pysyncobj import FAIL_REASON, SyncObj
from pysyncobj import syncobj as syncobj_module

from orion.defaults import REPLICA_HEARTBEAT
from orion.raft import patches as patches_module
from orion.raft.patches import TRUNCATION_MESSAGE, TruncationWatch

A, B, C = "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"
R = "127.0.0.1:7009"  # a non-voting replica's name on the network


def leader_and_follower(tmp_path, patched: bool = True):
    """A leads (it campaigns at its first tick), B follows (its gate is closed: it never
    campaigns); both caught up on A's NO_OP."""
    net = Network()
    a, ca = engine(net, tmp_path, A, [B], patched=patched, alone=True)
    b, cb = engine(net, tmp_path, B, [A], patched=patched, closed=True)
    net.transports[A].connect(B)
    net.transports[B].connect(A)
    stabilize(net, [a, b])
    assert a._isLeader() and b._getLeader().address == A
    return net, a, ca, b, cb


def next_index(leader, follower_addr: str) -> int:
    nodes = leader._SyncObj__raftNextIndex
    return next(v for n, v in nodes.items() if n.address == follower_addr)


def sent_indexes(net) -> list[int]:
    """The log indexes of every entry the leader's append_entries in flight carry to B."""
    return [e[1] for _, _, m in net.take("append_entries", A, B) for e in m.get("entries", ())]


def two_entries_in_flight(net, a, ca, b):
    """The leader sends two append_entries (one per command); the follower handles both and
    answers each, in order, after its sync. Returns the two answers, not yet delivered."""
    ca.add("x")
    ca.add("y")
    a.doTick(0.0)  # the leader appends both and sends one append_entries per command
    first, second = net.take("append_entries", A, B)
    net.deliver([first])
    b.doTick(0.0)  # the follower syncs, then its answer leaves
    net.deliver([second])
    b.doTick(0.0)
    answers = net.take("next_node_idx", B, A)
    assert [m["next_node_idx"] for _, _, m in answers] == [first[2]["entries"][-1][1] + 1,
                                                            second[2]["entries"][-1][1] + 1]
    return answers, second[2]["entries"][-1][1]


# -- rule 1 ------------------------------------------------------------------------------------
def test_rule1_the_answer_to_an_older_append_never_winds_the_next_index_back(tmp_path):
    net, a, ca, b, _ = leader_and_follower(tmp_path)
    answers, last = two_entries_in_flight(net, a, ca, b)
    assert next_index(a, B) == last + 1  # sent up to ``last``
    net.deliver(answers[:1])  # the answer to the first arrives
    assert next_index(a, B) == last + 1  # not wound back to the first's index
    ca.add("z")
    a.doTick(0.0)
    assert sent_indexes(net) == [last + 1]  # only the new entry: nothing sent twice


def test_rule1_off_upstream_winds_it_back_and_sends_the_second_entry_again(tmp_path):
    net, a, ca, b, _ = leader_and_follower(tmp_path, patched=False)
    answers, last = two_entries_in_flight(net, a, ca, b)
    net.deliver(answers[:1])
    assert next_index(a, B) == last  # syncobj.py:1082 sets it to the older answer's index
    ca.add("z")
    a.doTick(0.0)
    assert sent_indexes(net) == [last, last + 1]  # the second entry goes again


def test_rule1_a_refusal_still_resets_the_next_index(tmp_path):
    net, a, _, _, _ = leader_and_follower(tmp_path)
    before = next_index(a, B)
    net.deliver([(B, A, {"type": "next_node_idx", "next_node_idx": 1, "reset": True, "success": False})])
    assert next_index(a, B) == 1 < before


# -- rule 2 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("handing_over", [True, False])
def test_rule2_a_forwarded_command_is_refused_while_the_leader_hands_over(tmp_path, handing_over):
    net, a, _, b, cb = leader_and_follower(tmp_path)
    answers = []
    cb.add("from-b", callback=lambda result, error: answers.append(error))
    b.doTick(0.0)  # B forwards it to its leader
    assert [k for _, _, k in net.kinds()] == ["apply_command"]
    entries_before = len(a._SyncObj__raftLog)
    a.handing_over = handing_over
    net.deliver_all("apply_command")
    if handing_over:
        assert len(a._SyncObj__raftLog) == entries_before
        net.deliver_all("apply_command_response")
        assert answers == [FAIL_REASON.NOT_LEADER]  # pysyncobj's own answer: the follower retries
    else:
        a.doTick(0.0)
        assert len(a._SyncObj__raftLog) == entries_before + 1


# -- rule 3 ------------------------------------------------------------------------------------
def test_rule3_the_engine_logs_into_our_journal_not_pysyncobjs(tmp_path):
    net, a, ca, b, _ = leader_and_follower(tmp_path)
    assert a._SyncObj__raftLog is a.journal and b._SyncObj__raftLog is b.journal
    ca.add("x")
    a.doTick(0.0)
    assert a.journal[-1][1] == a.raftCommitIndex + 1  # the new entry, in our journal
    assert "self.__raftLog = createJournal(self.__conf.journalFile)" in inspect.getsource(SyncObj)


# -- rule 4 ------------------------------------------------------------------------------------
def test_rule4_a_followers_answer_leaves_only_after_the_sync_that_covers_it(tmp_path):
    net, a, ca, b, _ = leader_and_follower(tmp_path)
    ca.add("x")
    a.doTick(0.0)
    syncs = b.journal.fsyncs
    net.deliver_all("append_entries", A, B)
    assert b.journal.unsynced and net.take("next_node_idx") == []  # appended, not synced: held
    b.doTick(0.0)
    assert b.journal.fsyncs == syncs + 1 and not b.journal.unsynced
    assert [k for _, _, k in net.kinds()] == ["next_node_idx"]  # released right after the sync


def test_rule4_off_upstream_answers_before_any_sync(tmp_path):
    net, a, ca, b, _ = leader_and_follower(tmp_path, patched=False)
    ca.add("x")
    a.doTick(0.0)
    net.deliver_all("append_entries", A, B)
    assert b.journal.unsynced and [k for _, _, k in net.kinds()] == ["next_node_idx"]


def test_rule4_the_leader_counts_its_own_entry_only_once_synced(tmp_path):
    net, a, ca, b, _ = leader_and_follower(tmp_path)
    ca.add("x")
    a.doTick(0.0)  # appended and sent; its own sync comes in the on-tick callback of this pass
    assert not a.journal.unsynced
    commit = a.raftCommitIndex
    net.deliver_all("append_entries")
    b.doTick(0.0)
    net.deliver_all("next_node_idx")
    a.doTick(0.0)
    assert a.raftCommitIndex == commit + 1


# -- rule 5 ------------------------------------------------------------------------------------
class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def test_rule5_idle_heartbeats_to_a_replica_are_thinned_and_a_voter_hears_each(tmp_path, monkeypatch):
    net = Network()
    a, _ = engine(net, tmp_path, A, [B], alone=True)
    b, _ = engine(net, tmp_path, B, [A], closed=True)
    r, _ = engine(net, tmp_path, None, [A, B], readonly_addr=R)
    net.transports[A].connect(B)
    net.transports[B].connect(A)
    net.transports[A].connect(R, readonly=True)
    net.transports[R].connect(A)
    stabilize(net, [a, b, r])
    # pysyncobj's clock: each tick is a whole heartbeat period later. The replica rule's clock
    # stands still: every heartbeat after the first falls within REPLICA_HEARTBEAT.
    # (it starts a full period after the last heartbeat stabilize sent, on the real clock)
    raft_clock = _Clock(syncobj_module.monotonicTime())
    replica_clock = _Clock(time.monotonic() + REPLICA_HEARTBEAT)
    monkeypatch.setattr(syncobj_module, "monotonicTime", raft_clock.monotonic)
    monkeypatch.setattr(patches_module, "time", replica_clock)
    for _ in range(3):
        raft_clock.now += a.conf.appendEntriesPeriod + 1
        a.doTick(0.0)
    beats = [dst for _, dst, m in net.take("append_entries", A) if not m.get("entries")]
    assert beats.count(B) == 3 and beats.count(R) == 1  # a voter hears each; the replica once
    assert net.transports[A].replica_heartbeats.skipped == 2
    replica_clock.now += REPLICA_HEARTBEAT  # a period later the replica hears from us again
    raft_clock.now += a.conf.appendEntriesPeriod + 1
    a.doTick(0.0)
    assert sorted(dst for _, dst, _ in net.take("append_entries", A)) == [B, R]


def test_rule5_off_upstream_sends_the_replica_every_heartbeat(tmp_path, monkeypatch):
    net = Network()
    a, _ = engine(net, tmp_path, A, [], patched=False, alone=True)
    r, _ = engine(net, tmp_path, None, [A], patched=False, readonly_addr=R)
    net.transports[A].connect(R, readonly=True)
    net.transports[R].connect(A)
    stabilize(net, [a, r])
    raft_clock = _Clock(syncobj_module.monotonicTime())
    monkeypatch.setattr(syncobj_module, "monotonicTime", raft_clock.monotonic)
    for _ in range(3):
        raft_clock.now += a.conf.appendEntriesPeriod + 1
        a.doTick(0.0)
    assert [dst for _, dst, _ in net.take("append_entries", A)] == [R, R, R]


# -- rule 6 ------------------------------------------------------------------------------------
def test_rule6_a_closed_gate_never_campaigns_and_an_alone_voter_leads_at_its_first_tick(tmp_path):
    net = Network()
    gated, _ = engine(net, tmp_path, B, [A], closed=True)
    net.transports[B].connect(A)
    for _ in range(5):
        gated.doTick(0.0)
    assert net.inflight == [] and gated.raftCurrentTerm == 0
    alone, _ = engine(net, tmp_path, C, [], alone=True)
    alone.doTick(0.0)
    assert alone._isLeader() and alone.raftCurrentTerm == 1


# -- rule 7 ------------------------------------------------------------------------------------
def test_rule7_the_watch_hears_a_stale_append_truncating_applied_entries(tmp_path):
    net, a, ca, b, cb = leader_and_follower(tmp_path)
    heard: list[tuple[int, int]] = []
    watch = TruncationWatch(b, lambda frm, last: heard.append((frm, last)))
    ca.add("x")
    a.doTick(0.0)
    (stale,) = net.take("append_entries", A, B)
    net.deliver([stale])
    ca.add("y")
    stabilize(net, [a, b])  # both entries committed and applied on B
    assert cb.applied == ["x", "y"]
    net.deliver([stale])  # the old append arrives again: B holds more, so it truncates
    first = stale[2]["entries"][0][1]
    assert heard == [(first, b.raftLastApplied)]
    watch.close()
    assert TRUNCATION_MESSAGE in inspect.getsource(SyncObj)


# -- rule 8 ------------------------------------------------------------------------------------
def test_rule8_a_call_queued_from_another_thread_runs_on_the_next_tick_before_pysyncobjs(tmp_path):
    order: list[str] = []
    net = Network()
    e, _ = engine(net, tmp_path, C, [], alone=True, on_tick=lambda: order.append("pysyncobj's on-tick"))
    ran_on: list[int] = []
    queued = threading.Thread(target=lambda: e.call_on_tick(lambda: (ran_on.append(threading.get_ident()),
                                                                      order.append("queued call"))))
    queued.start()
    queued.join()
    assert ran_on == []  # nothing runs until the engine ticks
    e.doTick(0.0)
    assert ran_on == [threading.get_ident()] and order[:2] == ["queued call", "pysyncobj's on-tick"]


def test_rule9_socket_inet_ntop_works_again_once_the_backend_is_loaded():
    import socket

    import pysyncobj.win_inet_pton as upstream

    import orion.raft.patches  # noqa: F401 - the rule runs on import

    assert socket.inet_ntop(socket.AF_INET, bytes([10, 42, 1, 1])) == "10.42.1.1"
    with pytest.raises(TypeError):  # upstream still broken; once an upgrade fixes it this fails and rule 11 goes
        upstream.inet_ntop(socket.AF_INET, bytes([10, 42, 1, 1]))
