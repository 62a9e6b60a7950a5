"""The worker's held reads: an apply releases exactly those waiting below it, the clock exactly
those whose wait ended, and a read released one way is never released again the other way."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from orion.agent.held_reads import HeldReads


def test_an_apply_releases_the_reads_waiting_below_it_and_no_other() -> None:
    held: HeldReads[str] = HeldReads()
    held.hold("a", index=5, deadline=100.0)
    held.hold("b", index=7, deadline=100.0)
    held.hold("c", index=5, deadline=100.0)
    assert held.lowest_index() == 5
    assert held.passed(5) == []  # index 5 is not beyond 5
    assert sorted(held.passed(6)) == ["a", "c"]
    assert held.lowest_index() == 7
    assert held.passed(8) == ["b"]
    assert len(held) == 0 and held.lowest_index() is None and held.next_deadline() is None


def test_the_clock_releases_the_reads_whose_wait_ended() -> None:
    held: HeldReads[str] = HeldReads()
    held.hold("late", index=1, deadline=30.0)
    held.hold("soon", index=1, deadline=10.0)
    assert held.next_deadline() == 10.0
    assert held.due(9.99) == []
    assert held.due(10.0) == ["soon"]
    assert held.next_deadline() == 30.0


def test_a_read_released_by_its_client_is_not_released_again() -> None:
    held: HeldReads[str] = HeldReads()
    held.hold("gone", index=1, deadline=10.0)
    held.hold("stays", index=3, deadline=20.0)
    assert held.forget("gone") and not held.forget("gone")
    assert held.lowest_index() == 3 and held.next_deadline() == 20.0
    assert held.passed(100) == ["stays"]
    assert held.due(100.0) == []


def test_a_connection_held_again_keeps_only_its_new_hold() -> None:
    """Keep-alive: the same connection asks again after its answer; the old entries are stale."""
    held: HeldReads[str] = HeldReads()
    held.hold("conn", index=1, deadline=5.0)
    assert held.passed(2) == ["conn"]
    held.hold("conn", index=9, deadline=50.0)
    assert held.due(6.0) == [] and held.passed(5) == []
    assert held.passed(10) == ["conn"]


def test_stopping_releases_every_read_once() -> None:
    held: HeldReads[int] = HeldReads()
    for key in range(5):
        held.hold(key, index=key, deadline=float(key))
    held.forget(2)
    assert sorted(held.all()) == [0, 1, 3, 4]
    assert held.all() == [] and held.passed(99) == [] and held.due(99.0) == []


# hold(key, index, deadline) | forget(key) | passed(index) | due(now)
OPS = st.lists(st.one_of(
    st.tuples(st.just("hold"), st.integers(0, 6), st.integers(0, 20), st.integers(0, 20)),
    st.tuples(st.just("forget"), st.integers(0, 6)),
    st.tuples(st.just("passed"), st.integers(0, 22)),
    st.tuples(st.just("due"), st.integers(0, 22)),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_it_releases_what_a_plain_dictionary_says_it_should(ops: list[tuple]) -> None:
    """The oracle: a dict key -> (index, deadline), scanned in full at every step."""
    held: HeldReads[int] = HeldReads()
    oracle: dict[int, tuple[int, int]] = {}
    for op in ops:
        if op[0] == "hold":
            _, key, index, deadline = op
            held.hold(key, index, float(deadline))
            oracle[key] = (index, deadline)
        elif op[0] == "forget":
            assert held.forget(op[1]) == (op[1] in oracle)
            oracle.pop(op[1], None)
        elif op[0] == "passed":
            expected = {k for k, (index, _) in oracle.items() if index < op[1]}
            assert set(held.passed(op[1])) == expected
            for k in expected:
                del oracle[k]
        else:
            expected = {k for k, (_, deadline) in oracle.items() if deadline <= op[1]}
            assert set(held.due(float(op[1]))) == expected
            for k in expected:
                del oracle[k]
        assert len(held) == len(oracle)
        assert held.lowest_index() == min((i for i, _ in oracle.values()), default=None)
        assert held.next_deadline() == min((float(d) for _, d in oracle.values()), default=None)
