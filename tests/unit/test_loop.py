"""The loop shape (orion/loop.py): its apply listener for leader-only loops, and how it reads a pass."""

from __future__ import annotations

import logging
import threading

from orion.domain.model import TaskSpec
from orion.loop import SKIPPED, PassResult, run_loop, wake_on_leader
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


def test_the_loop_reads_a_pass_from_its_fields_not_its_words(caplog):
    """``again`` runs the next pass at once; an acted pass logs at info, a looking one at debug;
    a skipped one logs nothing. The sentences here would fool any reading of the words."""
    stop, wake = threading.Event(), threading.Event()
    passes = iter([PassResult("in sync (but acted)", acted=True, again=True),
                   PassResult("placed 3 task(s)"),
                   SKIPPED,
                   PassResult("nothing to heal", acted=True)])
    seen: list[PassResult] = []

    def one_pass() -> PassResult:
        result = next(passes)
        seen.append(result)
        if len(seen) == 2:
            wake.set()  # the next wake comes from outside, as an apply would
        if len(seen) == 3:
            wake.set()
        if len(seen) == 4:
            stop.set()
        return result

    wake.set()
    caplog.set_level(logging.DEBUG, logger="test.loop")
    worker = threading.Thread(target=run_loop, args=("t", logging.getLogger("test.loop"), wake, 60.0, stop, one_pass))
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and len(seen) == 4
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "t: in sync (but acted)"), ("DEBUG", "t: placed 3 task(s)"), ("INFO", "t: nothing to heal")]
