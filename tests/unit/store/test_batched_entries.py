"""Batched writes: a batch is applied as its commands one by one, each with its own result.

The machine half (``apply_entry``) as transcripts and a property; the write-path
half (``Coalescer``) with a recording ``send`` in place of Raft.
"""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from result_kit import accepted, refused

from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.state.commands import (
    Batch,
    CreateTask,
    Placement,
    PlaceTasks,
    RegisterNode,
    StopTask,
    decode,
    encode,
)
from orion.state.entries import ReplicatedMachine, apply_entry, batch_of, batch_text
from orion.state.machine import StateMachine
from orion.state.results import BatchApplied, RefusalKind, Refused
from orion.store.coalescer import MAX_BATCH_BYTES, Coalescer, split
from orion.store.local import LocalStore
from orion.version import LOG_VERSION

GiB = 1 << 30
OK = "success"  # the backend's success code, opaque to the coalescer
UNREADABLE = '{"type":"launch_rockets","v":1}'


def create(task_id: str, rid: str = "", key: str = "", memory: int = GiB, image: str = "img") -> CreateTask:
    return CreateTask(request_id=rid, task_id=task_id, spec=TaskSpec(image, memory), idempotency_key=key)


def kinds(result: BatchApplied) -> list[RefusalKind | None]:
    """Each command's refusal kind, None where it was accepted."""
    return [r.kind if isinstance(r, Refused) else None for r in result.results]


def machine_with_a_node() -> StateMachine:
    m = StateMachine()
    m.apply(RegisterNode(node=NodeInfo("n1", "a", "b", capacity=Resources(4 * GiB, 4000))), 1)
    return m


# -- applying a batch: transcripts ------------------------------------------------------------


def test_each_command_of_a_batch_gets_its_own_result_and_a_bad_one_fails_alone():
    m = machine_with_a_node()
    batch = Batch(commands=(encode(create("t1")), encode(create("t2", image="")), encode(create("t1")),
                            UNREADABLE, encode(StopTask(task_id="nope")), encode(create("t3"))))
    result = apply_entry(m, encode(batch), 2)
    assert kinds(result) == [None, RefusalKind.INVALID, RefusalKind.EXISTS, RefusalKind.UNREADABLE,
                             RefusalKind.NOT_FOUND, None]
    # What the backend logs for the entry it could not read names it.
    assert result.results[3].detail == ("command not understood by this node's version: unreadable command: "
                                         "'{\"type\":\"launch_rockets\",\"v\":1}'")
    assert [t.id for t in m.tasks()] == ["t1", "t3"]
    assert {t.created_index for t in m.tasks()} == {2}  # one entry, one index


def test_a_request_id_repeated_inside_a_batch_or_in_a_later_one_is_applied_once():
    m = machine_with_a_node()
    first = apply_entry(m, batch_of(create("t1", rid="r1"), create("t2", rid="r1")), 2)
    assert first.results[1] == first.results[0]  # the repeat answers with the first result
    again = apply_entry(m, batch_of(create("t3", rid="r2"), create("t9", rid="r1")), 3)
    assert again.results[1] == first.results[0]
    assert [t.id for t in m.tasks()] == ["t1", "t3"]


def test_an_idempotency_key_used_twice_in_one_batch_creates_one_task():
    m = machine_with_a_node()
    result = apply_entry(m, batch_of(create("t1", key="k"), create("t2", key="k")), 2)
    assert [r.created for r in result.results] == [True, False]
    assert result.results[1].task.id == "t1"


def test_a_create_and_its_placement_in_one_batch_commit_together():
    m = machine_with_a_node()
    result = apply_entry(m, batch_of(create("t1"), PlaceTasks(placements=(Placement("t1", "n1", 0),))), 2)
    assert result.results[1].placed == ("t1",)
    assert m.task("t1").state == "assigned" and m.task("t1").node_id == "n1"


def test_a_batch_inside_a_batch_is_unwrapped_too():
    m = machine_with_a_node()
    inner = batch_of(create("t1"), PlaceTasks(placements=(Placement("t1", "n1", 0),)))
    result = apply_entry(m, batch_text([encode(create("t0")), encode(inner)]), 2)
    assert result.results[1].results[1].placed == ("t1",)


def test_an_entry_that_is_not_a_batch_is_applied_as_before():
    a, b = machine_with_a_node(), machine_with_a_node()
    assert apply_entry(a, encode(create("t1")), 2) == b.apply(encode(create("t1")), 2)
    assert apply_entry(a, UNREADABLE, 3) == b.apply(UNREADABLE, 3)
    assert apply_entry(a, create("t2"), 4) == b.apply(create("t2"), 4)
    assert a.snapshot() == b.snapshot()


def test_a_batch_given_to_the_machine_itself_is_refused_not_half_applied():
    """Only the stores unwrap batches (through apply_entry); the machine has no such command."""
    m = machine_with_a_node()
    refused(m.apply(batch_of(create("t1")), 2), RefusalKind.UNREADABLE)
    assert m.tasks() == []


def test_the_local_store_applies_a_batch_as_raft_would():
    store = LocalStore(machine_with_a_node())
    result = store.submit(batch_of(create("t1"), create("t1")), timeout=1)
    assert kinds(result) == [None, RefusalKind.EXISTS]


# -- applying a batch: the property ---------------------------------------------------------

TASK_IDS = ["t1", "t2", "t3"]
commands = st.one_of(
    st.builds(create, st.sampled_from(TASK_IDS), st.sampled_from(["", "r1", "r2"]), st.sampled_from(["", "k"]),
              st.sampled_from([GiB, 3 * GiB, -1]), st.sampled_from(["img", ""])),
    st.builds(lambda t, g: PlaceTasks(placements=(Placement(t, "n1", g),)), st.sampled_from(TASK_IDS),
              st.integers(0, 1)),
    st.builds(lambda t, r: StopTask(request_id=r, task_id=t), st.sampled_from(TASK_IDS), st.sampled_from(["", "r3"])),
).map(encode) | st.just(UNREADABLE)


@settings(max_examples=200, deadline=None)
@given(st.lists(commands, max_size=20), st.lists(st.integers(1, 5), max_size=20))
def test_any_grouping_of_any_commands_gives_each_the_result_it_gets_alone(texts, sizes):
    """Valid and invalid commands, cut into batches anywhere: every command's result, and the
    state after all of them, are what applying them one at a time (at their entry's index) gives."""
    batched, alone = machine_with_a_node(), machine_with_a_node()
    got, want = [], []
    index, rest, sizes = 1, list(texts), list(sizes)
    while rest:
        index += 1
        size = sizes.pop(0) if sizes else len(rest)
        group, rest = rest[:size], rest[size:]
        entry = group[0] if len(group) == 1 else batch_text(group)
        result = apply_entry(batched, entry, index)
        got += [result] if len(group) == 1 else list(result.results)
        want += [alone.apply(text, index) for text in group]
    assert got == want
    assert batched.snapshot() == alone.snapshot()


# -- the coalescer ----------------------------------------------------------------------------


class Raft:
    """Records what the coalescer sends; answers each entry as a replica would apply it."""

    def __init__(self) -> None:
        self.machine = machine_with_a_node()
        self.entries: list[str] = []
        self._lock = threading.Lock()  # one log: entries are applied one at a time

    def send(self, text: str, done) -> None:
        with self._lock:
            self.entries.append(text)
            result = apply_entry(self.machine, text, len(self.entries) + 1)
        done(result, OK)


class Answers:
    def __init__(self) -> None:
        self.got: list[tuple[object, object]] = []

    def __call__(self, result, error) -> None:
        self.got.append((result, error))


def test_only_the_first_write_into_an_empty_queue_asks_for_a_wake():
    c = Coalescer(Raft().send, OK)
    assert c.add(encode(create("t1")), Answers()) is True
    assert c.add(encode(create("t2")), Answers()) is False
    c.flush()
    assert c.add(encode(create("t3")), Answers()) is True


def test_a_lone_write_goes_out_as_itself():
    raft, answer = Raft(), Answers()
    c = Coalescer(raft.send, OK)
    c.add(encode(create("t1")), answer)
    assert c.flush() == 1
    assert raft.entries == [encode(create("t1"))]
    accepted(answer.got[0][0])


def test_writes_queued_together_share_one_entry_and_each_hears_its_own_result():
    raft = Raft()
    c = Coalescer(raft.send, OK)
    answers = [Answers() for _ in range(3)]
    for task_id, answer in zip(["t1", "t1", "t2"], answers, strict=True):
        c.add(encode(create(task_id)), answer)
    assert c.flush() == 1
    assert len(raft.entries) == 1 and isinstance(decode(raft.entries[0]), Batch)
    assert [isinstance(a.got[0][0], Refused) for a in answers] == [False, True, False]
    refused(answers[1].got[0][0], RefusalKind.EXISTS)
    assert c.flush() == 0  # nothing left


class SlowRaft(Raft):
    """Answers only when told: entries stay in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.unanswered: list = []

    def send(self, text: str, done) -> None:
        self.unanswered.append((text, done))

    def answer_next(self) -> None:
        text, done = self.unanswered.pop(0)
        super().send(text, done)


def test_writes_arriving_while_the_nodes_entry_commits_wait_for_it_and_go_together():
    raft = SlowRaft()
    c = Coalescer(raft.send, OK)  # one entry in flight at a time
    first = Answers()
    assert c.add(encode(create("t1")), first) is True
    assert c.flush() == 1
    later = [Answers() for _ in range(3)]
    for i, answer in enumerate(later):
        assert c.add(encode(create(f"t{i + 2}")), answer) is False  # the answer will flush them
    assert c.flush() == 0 and len(raft.unanswered) == 1
    raft.answer_next()
    accepted(first.got[0][0])
    assert c.flush() == 1  # the loop's next turn: all three in one entry
    raft.answer_next()
    assert len(raft.entries) == 2 and len(decode(raft.entries[1]).commands) == 3
    assert not any(isinstance(a.got[0][0], Refused) for a in later)


def test_an_entry_never_answered_stops_holding_the_queue_after_the_patience():
    """pysyncobj drops a command whose leader died: its writers retry, the queue must not stall."""
    now = [0.0]
    raft = SlowRaft()
    c = Coalescer(raft.send, OK, patience=0.5, clock=lambda: now[0])
    c.add(encode(create("t1")), Answers())
    c.flush()
    raft.unanswered.clear()  # lost with the leader
    c.add(encode(create("t2")), Answers())
    now[0] = 0.4
    assert c.flush() == 0
    now[0] = 0.6
    assert c.flush() == 1


def test_entries_whose_engine_is_gone_fail_their_writers_at_once_and_free_the_queue():
    raft = SlowRaft()
    c = Coalescer(raft.send, OK)
    writers = [Answers() for _ in range(3)]
    for i, answer in enumerate(writers):
        c.add(encode(create(f"t{i}")), answer)
    c.flush()
    late = Answers()
    c.add(encode(create("t9")), late)
    assert c.abandon("discarded") == 1
    assert [a.got for a in writers] == [[(None, "discarded")]] * 3  # each retries on its own
    assert c.flush() == 1 and late.got == []  # the queue goes on at once


def test_more_entries_in_flight_when_allowed():
    raft = SlowRaft()
    c = Coalescer(raft.send, OK, max_in_flight=2)
    c.add(encode(create("t1")), Answers())
    assert c.flush() == 1
    assert c.add(encode(create("t2")), Answers()) is True  # a second place is free: wake at once
    assert c.flush() == 1
    assert c.add(encode(create("t3")), Answers()) is False
    assert c.flush() == 0


def test_a_batch_that_failed_whole_fails_each_writer_with_the_reason():
    answers = [Answers(), Answers()]
    c = Coalescer(lambda text, done: done(None, "leader changed"), OK)
    for answer in answers:
        c.add(encode(create("t1")), answer)
    c.flush()
    assert [a.got for a in answers] == [[(None, "leader changed")]] * 2


def test_a_leader_that_does_not_know_batches_refuses_each_writer_not_none():
    refusal = Refused(RefusalKind.UNREADABLE, "unknown command type 'batch'")
    answers = [Answers(), Answers()]
    c = Coalescer(lambda text, done: done(refusal, OK), OK)
    for answer in answers:
        c.add(encode(create("t1")), answer)
    c.flush()
    assert [a.got for a in answers] == [[(refusal, OK)]] * 2


def test_entries_stay_under_the_size_cap_and_keep_the_order():
    raft = Raft()
    c = Coalescer(raft.send, OK, max_bytes=3 * len(encode(create("t0"))))
    for i in range(7):
        c.add(encode(create(f"t{i}")), Answers())
    assert [c.flush(), c.flush(), c.flush(), c.flush()] == [1, 1, 1, 0]  # one in flight at a time
    applied = [decode(t) for e in raft.entries for t in (decode(e).commands if e.startswith('{"commands"') else [e])]
    assert [a.task_id for a in applied] == [f"t{i}" for i in range(7)]


@given(st.lists(st.integers(1, 100), max_size=30), st.integers(1, 300))
def test_split_keeps_every_write_once_in_order_and_under_the_cap(sizes, cap):
    queued = [("x" * n, i) for i, n in enumerate(sizes)]
    groups = split(queued, cap)
    assert [item for g in groups for item in g] == queued
    assert all(g and (len(g) == 1 or sum(len(t) for t, _ in g) <= cap) for g in groups)


def test_the_default_cap_keeps_an_entry_below_pysyncobjs_append_batch():
    assert MAX_BATCH_BYTES < 1 << 16


def test_writers_on_many_threads_are_each_answered_once():
    raft = Raft()
    c = Coalescer(raft.send, OK)
    answers = [Answers() for _ in range(64)]

    def write(i: int) -> None:
        if c.add(encode(create(f"t{i}")), answers[i]):
            c.flush()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    while c.flush():
        pass
    assert all(len(a.got) == 1 and not isinstance(a.got[0][0], Refused) for a in answers)
    assert len(raft.machine.tasks()) == 64


@pytest.mark.parametrize("entry", ['{"type":"batch","v":9,"commands":[]}', '{"type":"batch","v":1}'])
def test_a_newer_or_malformed_batch_is_refused_whole_and_changes_nothing(entry):
    m = machine_with_a_node()
    before = json.dumps(m.snapshot())
    result = apply_entry(m, entry, 2)
    refused(result, RefusalKind.UNREADABLE)
    assert json.dumps(m.snapshot()) == before


def test_an_element_that_is_not_a_command_is_refused_alone():
    m = machine_with_a_node()
    result = apply_entry(m, '{"type":"batch","v":1,"commands":[7,' + json.dumps(encode(create("t1"))) + "]}", 2)
    assert kinds(result) == [RefusalKind.UNREADABLE, None]


# -- a rolling upgrade: no batch until every node reads one -------------------------------------


def register(machine: StateMachine, node_id: str, log_version: int, index: int, status: str = "alive") -> None:
    node = NodeInfo(node_id, f"{node_id}:1", f"{node_id}:2", capacity=Resources(8 * GiB, 4000),
                    status=status, log_version=log_version)
    accepted(apply_entry(machine, encode(RegisterNode(node=node)), index))


def test_the_clusters_log_version_is_the_oldest_a_node_that_may_read_again_reads():
    m = StateMachine()
    assert m.log_version() == LOG_VERSION  # nobody registered yet: this build's own
    register(m, "new", LOG_VERSION, 1)
    assert m.log_version() == LOG_VERSION
    register(m, "old", 0, 2)  # an agent from before log formats were announced
    assert m.log_version() == 0
    register(m, "old", 0, 3, status="left")  # drained for good: it never reads the log again
    assert m.log_version() == LOG_VERSION
    register(m, "old", LOG_VERSION, 4)  # came back upgraded
    assert m.log_version() == LOG_VERSION
    assert StateMachine.restore(m.snapshot()).log_version() == LOG_VERSION


def test_reads_are_confirmed_by_the_leader_only_once_no_node_of_the_release_before_is_left():
    """A node of the release before read-index requests (format 1) would never answer one:
    while it may lead, reads stay local instead of timing out (``RaftStore.barrier``)."""
    app, m = ReplicatedMachine(), StateMachine()
    register(m, "new", LOG_VERSION, 1)
    assert app.reads_confirmed(m)
    register(m, "old", 1, 2)
    assert not app.reads_confirmed(m)
    register(m, "old", LOG_VERSION, 3)  # upgraded
    assert app.reads_confirmed(m)


def test_while_a_node_cannot_read_batches_each_write_goes_as_its_own_entry_at_once():
    raft = SlowRaft()
    readable = [False]
    c = Coalescer(raft.send, OK, batches_read=lambda: readable[0])
    answers = [Answers() for _ in range(3)]
    for i, answer in enumerate(answers):
        c.add(encode(create(f"t{i}")), answer)
    assert c.flush() == 3  # no in-flight limit either: as writes went before batches
    assert [decode(text).TYPE for text, _ in raft.unanswered] == ["create_task"] * 3
    while raft.unanswered:
        raft.answer_next()
    assert not any(isinstance(a.got[0][0], Refused) for a in answers)
    readable[0] = True  # the last node upgraded: writes share entries again
    for i in range(3, 5):
        c.add(encode(create(f"t{i}")), Answers())
    assert c.flush() == 1 and isinstance(decode(raft.unanswered[0][0]), Batch)


def test_a_registration_without_a_log_version_reads_as_zero():
    """What an agent of the previous release sends: no ``log_version`` in its node."""
    body = NodeInfo("old", "a:1", "a:2").to_dict()
    del body["log_version"]
    assert NodeInfo.from_dict(body).log_version == 0
