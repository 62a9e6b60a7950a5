"""The history checker (tests/linearizability.py, linearizability_report.py) on synthetic histories.

Each scenario is a small timeline: ``w("a", 0, 1)`` is a write of "a" called at
0 and answered at 1, ``r("a", 2, 3)`` a read that returned "a". Then
properties: a history made from a sequential run with timestamps around each
operation's instant is always linearizable (and the order found is a legal one);
a stale read injected into one is always found; on tiny random histories the
search agrees with brute force over every order.
"""

from __future__ import annotations

import itertools
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from linearizability import (
    ABSENT,
    CAS,
    INITIAL,
    READ,
    WRITE,
    Op,
    Status,
    Verdict,
    is_legal_order,
    relevant,
    search,
)
from linearizability_report import check, lost_writes, shrink, stale_reads

OK, FAIL, UNKNOWN = Status.OK, Status.FAIL, Status.UNKNOWN


def w(value, call, ret=math.inf, status=OK, key="k", p="p1") -> Op:
    return Op(p, key, WRITE, value, call, math.inf if status is UNKNOWN else ret, status)


def r(value, call, ret, key="k", p="p2") -> Op:
    return Op(p, key, READ, value, call, ret)


def cas(expect, new, call, ret=math.inf, swapped=True, status=OK, key="k", p="p3") -> Op:
    return Op(p, key, CAS, new, call, math.inf if status is UNKNOWN else ret, status, expect=expect, swapped=swapped)


def verdict(*ops: Op) -> Verdict:
    report = check(ops)
    return next(iter(report.keys.values())).verdict


# ---- linearizable timelines


def test_a_read_after_a_write_sees_it():
    assert verdict(w("a", 0, 1), r("a", 2, 3)) is Verdict.LINEARIZABLE


def test_a_read_before_any_write_sees_nothing():
    assert verdict(r(ABSENT, 0, 1), w("a", 2, 3), r("a", 4, 5)) is Verdict.LINEARIZABLE


def test_a_read_concurrent_with_a_write_may_see_either_value():
    assert verdict(w("a", 0, 1), w("b", 2, 6), r("a", 3, 4)) is Verdict.LINEARIZABLE
    assert verdict(w("a", 0, 1), w("b", 2, 6), r("b", 3, 4)) is Verdict.LINEARIZABLE


def test_concurrent_writes_may_land_in_either_order():
    ops = (w("a", 0, 5, p="p1"), w("b", 0, 5, p="p2"), r("b", 6, 7, p="p3"), r("b", 8, 9, p="p4"))
    assert verdict(*ops) is Verdict.LINEARIZABLE


def test_compare_and_set_swaps_only_from_what_it_expects():
    ops = (w("a", 0, 1), cas("a", "b", 2, 3), cas("a", "c", 4, 5, swapped=False), r("b", 6, 7))
    assert verdict(*ops) is Verdict.LINEARIZABLE


def test_touching_operations_count_as_concurrent():
    """A clock tie (answer and next call at the same instant) orders nothing: no false alarm."""
    assert verdict(w("a", 0, 2), r(ABSENT, 2, 3)) is Verdict.LINEARIZABLE


# ---- not linearizable


def test_a_stale_read_is_found_with_its_witness_and_how_far_behind_it_was():
    history = (w("a", 0, 1), w("b", 2, 3), r("a", 4, 5))
    report = check(history)
    k = report.keys["k"]
    assert k.verdict is Verdict.NOT_LINEARIZABLE
    assert set(k.witness) == set(history)
    [stale] = k.stale
    assert (stale.read, stale.newer, stale.behind, stale.versions) == (history[2], history[1], 1.0, 1)
    assert "stale read 1.000 s behind" in report.text()
    assert "key k cannot be linearized; these 3 operations cannot be ordered" in report.text()


def test_a_read_of_a_value_never_written_is_named():
    report = check((w("a", 0, 1), r("zzz", 2, 3)))
    k = report.keys["k"]
    assert k.verdict is Verdict.NOT_LINEARIZABLE and [op.value for op in k.never_written] == ["zzz"]
    assert "read a value no operation wrote" in report.text()


def test_a_failed_write_never_happened_so_reading_it_is_a_violation():
    assert verdict(w("a", 0, 1, status=FAIL), r("a", 2, 3)) is Verdict.NOT_LINEARIZABLE


def test_a_lost_acknowledged_write_reads_as_the_value_before_it():
    """Write b acknowledged, then every read sees a: b was lost."""
    history = (w("a", 0, 1), w("b", 2, 3), r("a", 4, 5), r("a", 6, 7))
    assert verdict(*history) is Verdict.NOT_LINEARIZABLE
    assert lost_writes(history, {"k": "a"}) == [history[1]]
    assert lost_writes(history, {"k": "b"}) == []


def test_an_acknowledged_write_then_nothing_is_a_violation():
    assert verdict(w("a", 0, 1), r(ABSENT, 2, 3)) is Verdict.NOT_LINEARIZABLE


def test_reads_that_go_back_in_time_are_found():
    """b is certainly newer than a (its write began after a's was answered): seeing b then a."""
    history = (w("a", 0, 1), w("b", 2, 10), r("b", 3, 4), r("a", 5, 6))
    assert verdict(*history) is Verdict.NOT_LINEARIZABLE
    [stale] = stale_reads(relevant(history))
    assert stale.read == history[3] and stale.behind == 1.0  # b was certainly in place at 4 (a read saw it)
    assert set(check(history).keys["k"].witness) == set(history)  # the read of b is part of the proof


def test_a_flip_flop_between_concurrent_writes_is_found_though_times_alone_prove_no_staleness():
    history = (w("a", 0, 10, p="p1"), w("b", 0, 10, p="p2"), r("a", 1, 2), r("b", 3, 4), r("a", 5, 6))
    assert verdict(*history) is Verdict.NOT_LINEARIZABLE
    assert stale_reads(relevant(history)) == []


def test_a_swap_from_a_value_the_register_does_not_hold_is_a_violation():
    assert verdict(w("a", 0, 1), w("b", 2, 3), cas("a", "c", 4, 5)) is Verdict.NOT_LINEARIZABLE


# ---- unknown outcomes


def test_an_unknown_write_may_appear_long_after_its_call():
    history = (w("a", 0, 1), w("b", 2, status=UNKNOWN), r("a", 3, 4), r("a", 20, 21), r("b", 30, 31))
    assert verdict(*history) is Verdict.LINEARIZABLE


def test_an_unknown_write_may_never_appear():
    history = (w("a", 0, 1), w("b", 2, status=UNKNOWN), r("a", 3, 4), r("a", 30, 31))
    assert verdict(*history) is Verdict.LINEARIZABLE
    assert [op.value for op in relevant(history)] == ["a", "a", "a"]  # b, never seen, is dropped


def test_an_unknown_write_once_seen_cannot_be_unseen():
    history = (w("a", 0, 1), w("b", 2, status=UNKNOWN), r("b", 3, 4), r("a", 5, 6))
    assert verdict(*history) is Verdict.NOT_LINEARIZABLE


def test_an_unknown_write_cannot_take_effect_before_its_call():
    assert verdict(w("a", 0, 1), r("b", 2, 3), w("b", 4, status=UNKNOWN)) is Verdict.NOT_LINEARIZABLE


def test_an_unknown_compare_and_set_may_have_swapped_or_not():
    swapped = (w("a", 0, 1), cas("a", "b", 2, status=UNKNOWN), r("b", 5, 6))
    kept = (w("a", 0, 1), cas("a", "b", 2, status=UNKNOWN), r("a", 5, 6))
    assert verdict(*swapped) is Verdict.LINEARIZABLE and verdict(*kept) is Verdict.LINEARIZABLE


def test_a_read_without_an_answer_says_nothing():
    history = (w("a", 0, 1), Op("p2", "k", READ, "garbage", 2, math.inf, UNKNOWN))
    assert verdict(*history) is Verdict.LINEARIZABLE


# ---- keys, budget, report


def test_keys_are_checked_apart_and_the_report_names_the_bad_one():
    history = (w("a", 0, 1, key="x"), r("a", 2, 3, key="x"), w("a", 0, 1, key="y"), w("b", 2, 3, key="y"),
               r("a", 4, 5, key="y"))
    report = check(history)
    assert report.keys["x"].verdict is Verdict.LINEARIZABLE
    assert [k.key for k in report.violations] == ["y"] and not report.linearizable
    assert "key y cannot be linearized" in report.text()


def test_a_search_over_its_budget_answers_unknown_instead_of_hanging():
    many = [w(f"v{i}", 0, 100, p=f"p{i}") for i in range(14)] + [r("nope-but-written", 101, 102)]
    many.append(w("nope-but-written", 200, 201))  # written only after the read: no order works
    result = search(relevant(many), budget=1000)
    assert result.verdict is Verdict.UNKNOWN and result.steps == 1001
    assert search(relevant(many)).verdict is Verdict.NOT_LINEARIZABLE


def test_the_witness_is_cut_down_to_the_operations_that_cannot_be_ordered():
    noise = [op for i in range(30) for op in (w(f"n{i}", 10 * i, 10 * i + 1), r(f"n{i}", 10 * i + 2, 10 * i + 3))]
    bad = [w("a", 400, 401), w("b", 402, 403), r("a", 404, 405)]
    later = [w("z", 500, 501), r("z", 502, 503)]
    report = check(noise + bad + later)
    assert list(report.keys["k"].witness) == bad


# ---- properties


@st.composite
def sequential_runs(draw, keys=("a", "b"), max_ops=40):
    """(history, stale-injectable): ops of a sequential run, each with a call before its instant
    and an answer after it (integer times, so ties are common); some writes fail (and do not
    happen), some have unknown outcomes (and happen or not)."""
    state = dict.fromkeys(keys, ABSENT)
    now, ops = 0, []
    for i in range(draw(st.integers(1, max_ops))):
        now += draw(st.integers(0, 2))
        key, kind = draw(st.sampled_from(keys)), draw(st.sampled_from([READ, READ, WRITE, WRITE, CAS]))
        call, ret = now - draw(st.integers(0, 3)), now + draw(st.integers(0, 3))
        status = draw(st.sampled_from([OK, OK, OK, OK, UNKNOWN, FAIL])) if kind != READ else OK
        happens = status is OK or (status is UNKNOWN and draw(st.booleans()))
        value = f"{key}{i}"
        if kind == READ:
            ops.append(Op(f"p{i % 5}", key, READ, state[key], call, ret))
            continue
        if kind == CAS:
            expect = state[key] if draw(st.booleans()) else f"{key}-not-held"
            swapped = expect == state[key]
            if happens and swapped:
                state[key] = value
            ops.append(Op(f"p{i % 5}", key, CAS, value, call, math.inf if status is UNKNOWN else ret, status,
                          expect=expect, swapped=swapped))
            continue
        if happens:
            state[key] = value
        ops.append(Op(f"p{i % 5}", key, WRITE, value, call, math.inf if status is UNKNOWN else ret, status))
    return ops


@settings(max_examples=300, deadline=None)
@given(sequential_runs())
def test_a_history_of_a_sequential_run_is_always_linearizable(history):
    report = check(history)
    assert report.linearizable, report.text() + "\n" + "\n".join(f"{o.call} {o.ret} {o.describe()}" for o in history)
    for key in report.keys:
        ops = relevant(op for op in history if op.key == key)
        found = search(ops)
        assert is_legal_order(found.order) and len(found.order) == len(ops)
        position = {id(op): n for n, op in enumerate(found.order)}
        assert all(position[id(a)] < position[id(b)] for a in ops for b in ops if a.ret < b.call)


@settings(max_examples=300, deadline=None)
@given(sequential_runs(keys=("a",)), st.data())
def test_a_stale_read_injected_into_a_linearizable_history_is_found(history, data):
    acked = [op for op in history if op.f == WRITE and op.status is OK]
    if not acked:
        history = [*history, w("late", 100, 101, key="a")]
        acked = [history[-1]]
    newer = data.draw(st.sampled_from(acked))
    older = [ABSENT] + [op.value for op in history if op.may_write and op.ret < newer.call]
    value = data.draw(st.sampled_from(older))
    call = newer.ret + data.draw(st.integers(1, 5))
    injected = Op("stale", "a", READ, value, call, call + data.draw(st.integers(0, 3)))
    report = check([*history, injected])
    assert not report.linearizable
    k = report.keys["a"]
    assert search(list(k.witness)).verdict is Verdict.NOT_LINEARIZABLE  # the witness fails on its own
    assert injected in [s.read for s in k.stale] and max(s.behind for s in k.stale) >= call - newer.ret


def brute_force(ops: list[Op]) -> bool:
    """Linearizable by definition: some subset of the unknown ops plus every answered one,
    in some order that respects real time, is a legal run. Failed ops never happened."""
    sure = [op for op in ops if op.status is OK]
    maybe = [op for op in ops if op.status is UNKNOWN]
    for n in range(len(maybe) + 1):
        for extra in itertools.combinations(maybe, n):
            chosen = sure + list(extra)
            for order in itertools.permutations(chosen):
                if all(not (b.ret < a.call) for i, a in enumerate(order) for b in order[i + 1:]) and \
                        is_legal_order(order, INITIAL):
                    return True
    return False


@st.composite
def tiny_histories(draw):
    ops = []
    for i in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from([READ, READ, WRITE, WRITE, CAS]))
        call = draw(st.integers(0, 6))
        ret = call + draw(st.integers(0, 4))
        status = draw(st.sampled_from([OK, OK, UNKNOWN, FAIL])) if kind != READ else draw(
            st.sampled_from([OK, OK, OK, UNKNOWN]))
        ret = math.inf if status is UNKNOWN else ret
        if kind == READ:
            ops.append(Op(f"p{i}", "k", READ, draw(st.sampled_from([ABSENT, "v0", "v1", "v2"])), call, ret, status))
        elif kind == WRITE:
            ops.append(Op(f"p{i}", "k", WRITE, f"v{i}", call, ret, status))
        else:
            ops.append(Op(f"p{i}", "k", CAS, f"v{i}", call, ret, status,
                          expect=draw(st.sampled_from([ABSENT, "v0", "v1"])), swapped=draw(st.booleans())))
    return ops


@settings(max_examples=500, deadline=None)
@given(tiny_histories())
def test_the_search_agrees_with_brute_force_on_tiny_histories(history):
    truth = brute_force([op for op in history if not (op.f == READ and op.status is UNKNOWN)])
    assert (search(relevant(history)).verdict is Verdict.LINEARIZABLE) == truth
    if not truth:
        witness = shrink(relevant(history))
        assert not brute_force(witness), witness
