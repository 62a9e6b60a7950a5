"""The loop shape's apply listener for leader-only loops (orion/loop.py)."""

from __future__ import annotations

import threading

from orion.domain.model import TaskSpec
from orion.loop import wake_on_leader
from orion.state.commands import CreateTask
from orion.store.local import LocalStore


def test_a_leader_only_loop_is_woken_by_applies_on_the_leader_alone():
    store, wake = LocalStore(), threading.Event()
    listener = wake_on_leader(store, wake)
    store.add_listener(listener)
    store.submit(CreateTask(request_id="r1", task_id="t1", spec=TaskSpec("img", 1 << 30)), timeout=1)
    assert wake.is_set()  # a real apply, on the leader
    wake.clear()
    store.leader = False  # a follower applies too, but its pass would do nothing
    listener(2)
    assert not wake.is_set()
    store.leader = True  # leadership won: the next apply wakes it again
    listener(3)
    assert wake.is_set()
