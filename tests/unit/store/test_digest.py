"""The state digest (orion/store/digest.py): equal machines, equal digests; any change shows.

What GET /raft shows as ``digest`` at ``digestIndex``, and what the parallel-join and
scale tests compare across replicas.
"""

from __future__ import annotations

import json
import random

from hypothesis import given
from hypothesis import strategies as st

from orion.domain.model import NodeInfo, Resources, TaskSpec
from orion.state.commands import CreateTask, RegisterNode, StopTask
from orion.state.machine import StateMachine
from orion.store.digest import DigestCache, canonical, digest
from orion.store.local import LocalStore

GiB = 1 << 30


def node(node_id: str) -> RegisterNode:
    return RegisterNode(request_id=f"reg-{node_id}",
                        node=NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:9000", capacity=Resources(8 * GiB, 4000)))


def create(task_id: str) -> CreateTask:
    return CreateTask(request_id=f"req-{task_id}", task_id=task_id, spec=TaskSpec("orion/busybox:latest", GiB, 500))


def replay(commands) -> StateMachine:
    machine = StateMachine()
    for index, command in enumerate(commands, start=1):
        machine.apply(command, index)
    return machine


LOG = [node("n1"), node("n2"), create("t1"), create("t2"), create("t3"), StopTask(request_id="s", task_id="t2")]


def test_two_replicas_of_one_log_have_one_digest():
    assert digest(replay(LOG).snapshot()) == digest(replay(LOG).snapshot())


def test_a_replica_restored_from_a_snapshot_has_the_same_digest():
    """A replica that installed the leader's snapshot (JSON on the wire, then restore) and one
    that applied the log agree; so do snapshots whose dicts were filled in another order."""
    snap = replay(LOG).snapshot()
    restored = StateMachine.restore(json.loads(json.dumps(snap)))
    assert digest(restored.snapshot()) == digest(snap)
    reordered = json.loads(json.dumps(snap, sort_keys=True))
    reordered = {k: reordered[k] for k in reversed(list(reordered))}
    assert list(reordered) != list(snap) and digest(reordered) == digest(snap)


def test_one_more_command_changes_the_digest():
    assert digest(replay(LOG).snapshot()) != digest(replay([*LOG, create("t4")]).snapshot())


def test_the_same_commands_in_another_order_give_another_digest_when_the_state_differs():
    """t1 then a stop of t1 vs the stop first (refused: no such task) then t1: different states."""
    stop = StopTask(request_id="s1", task_id="t1")
    assert digest(replay([create("t1"), stop]).snapshot()) != digest(replay([stop, create("t1")]).snapshot())


@given(st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=6), max_size=8), st.randoms())
def test_canonical_bytes_ignore_key_order(data, rnd):
    items = list(data.items())
    rnd.shuffle(items)
    assert canonical(dict(items)) == canonical(data)


def test_the_cache_digests_once_per_index_and_at_most_once_per_interval_while_writes_go_on():
    store, now, snapshots = LocalStore(), [100.0], []

    def read(fn):
        def counted(m):
            result = fn(m)
            if result is not m:  # the cache asked for a snapshot, not just the machine
                snapshots.append(1)
            return result
        return store.read(counted)

    cache = DigestCache(read, min_interval=1.0, clock=lambda: now[0])
    first = cache.get()
    assert cache.get() == first and first[1] == 0 and len(snapshots) == 1
    store.submit(create("t1"), 1.0)
    assert cache.get() == first  # within the interval: the last true pair, with its own index
    now[0] += 1.0
    after = cache.get()
    assert after[1] == 1 and after[0] != first[0] and len(snapshots) == 2
    assert after == (digest(store.read(lambda m: m.snapshot())[0]), 1)


def test_the_cache_digests_a_rebuilt_machine_at_the_same_index_again():
    """A resync swaps in another machine object: the cache must not serve the old digest."""
    machines = [replay(LOG), replay(LOG[:2])]
    current = {"m": machines[0]}
    cache = DigestCache(lambda fn: (fn(current["m"]), 6), clock=lambda: 0.0)
    before = cache.get()
    current["m"] = machines[1]
    assert cache.get() != before


def test_random_logs_replayed_twice_agree():
    rnd = random.Random(7)
    commands = [node("n1")] + [create(f"t{rnd.randrange(20)}") for _ in range(50)]
    assert digest(replay(commands).snapshot()) == digest(replay(commands).snapshot())
