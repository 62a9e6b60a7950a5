"""The election gate and the truncation watch (orion/raft/patches.py, rules 6 and 7), without sockets or time.

The gate's effect on a running engine (a joiner's term stays 0) and a real truncation are
in tests/integration/test_raft_join.py; here: the configuration the gate hands pysyncobj,
the routing of pysyncobj's record, and that the installed pysyncobj still has the code
paths the guards rely on (an upgrade that changes them fails here first).
"""

from __future__ import annotations

import inspect
import logging
import threading

from pysyncobj import SyncObj

from orion.raft.patches import TRUNCATION_MESSAGE, ElectionGate, TruncationWatch


def test_a_closed_gate_answers_never_and_an_open_one_the_configured_timeouts():
    gate = ElectionGate(closed=True, raftMinTimeout=0.4, raftMaxTimeout=1.4, appendEntriesPeriod=0.1)
    assert gate.closed and gate.raftMinTimeout > 10**8 and gate.raftMaxTimeout > 10**8
    gate.validate()  # pysyncobj's own checks pass, against the real values
    assert gate.closed
    gate.open()
    assert (gate.raftMinTimeout, gate.raftMaxTimeout) == (0.4, 1.4)


def test_an_open_gate_is_an_ordinary_configuration():
    gate = ElectionGate(closed=False, raftMinTimeout=0.5, raftMaxTimeout=0.9, appendEntriesPeriod=0.1)
    gate.validate()
    assert (gate.raftMinTimeout, gate.raftMaxTimeout) == (0.5, 0.9)


def test_pysyncobj_draws_each_election_timeout_from_its_configuration():
    """The gate works only because the timeout is read from conf every time it is armed."""
    source = inspect.getsource(SyncObj)
    assert "minTimeout = self.__conf.raftMinTimeout" in source
    assert source.count("self.__raftElectionDeadline = monotonicTime() + self.__generateRaftTimeout()") >= 3


def test_pysyncobj_still_logs_the_truncation_of_applied_entries():
    assert TRUNCATION_MESSAGE in inspect.getsource(SyncObj)


class _Engine:
    """Only what TruncationWatch uses of an engine: its on-tick callbacks."""

    def __init__(self) -> None:
        self.callbacks: list = []

    def addOnTickCallback(self, fn) -> None:  # noqa: N802 - pysyncobj's name
        self.callbacks.append(fn)

    def removeOnTickCallback(self, fn) -> None:  # noqa: N802
        self.callbacks.remove(fn)

    def tick(self) -> None:
        for fn in self.callbacks:
            fn()


def _on_a_thread(fn) -> None:
    """Run ``fn`` on a thread of its own, as an engine's tick thread would."""
    t = threading.Thread(target=fn)
    t.start()
    t.join()


def test_the_record_reaches_the_watch_of_the_engine_whose_thread_logged_it():
    heard: dict[str, list[tuple[int, int]]] = {"a": [], "b": []}
    engines = {name: _Engine() for name in heard}
    watches = {name: TruncationWatch(e, lambda f, a, name=name: heard[name].append((f, a)))
               for name, e in engines.items()}
    logger = logging.getLogger("pysyncobj.syncobj")

    def engine_a_thread() -> None:
        engines["a"].tick()  # the watch learns this thread is a's
        logger.critical("truncating already-applied log entries from index %d (last applied: %d) - x", 15, 17)
        logger.critical("something else %d %d", 1, 2)

    _on_a_thread(engine_a_thread)
    assert heard == {"a": [(15, 17)], "b": []}
    for watch in watches.values():
        watch.close()
    _on_a_thread(engine_a_thread)  # closed: nobody hears it any more
    assert heard == {"a": [(15, 17)], "b": []}


def test_a_voter_alone_campaigns_at_once_and_a_peer_brings_back_the_randomized_timeout():
    peers: set[str] = set()
    gate = ElectionGate(closed=False, alone=lambda: not peers, raftMinTimeout=0.4, raftMaxTimeout=1.4,
                        appendEntriesPeriod=0.1)
    gate.validate()  # checked against the ordinary timeouts, not the zero
    assert (gate.raftMinTimeout, gate.raftMaxTimeout) == (0.0, 0.0)
    peers.add("127.0.0.1:7001")  # a voter joined: the next draw is an ordinary one
    assert (gate.raftMinTimeout, gate.raftMaxTimeout) == (0.4, 1.4)


def test_a_closed_gate_wins_over_alone():
    """A joiner not admitted yet must not campaign, whatever its configuration looks like."""
    gate = ElectionGate(closed=True, alone=lambda: True, raftMinTimeout=0.4, raftMaxTimeout=1.4,
                        appendEntriesPeriod=0.1)
    assert gate.raftMinTimeout > 10**8
    gate.open()
    assert gate.raftMinTimeout == 0.0


def test_watch_alone_replaces_the_start_time_answer():
    gate = ElectionGate(closed=False, alone=lambda: True, raftMinTimeout=0.4, raftMaxTimeout=1.4,
                        appendEntriesPeriod=0.1)
    gate.watch_alone(lambda: False)
    assert (gate.raftMinTimeout, gate.raftMaxTimeout) == (0.4, 1.4)
