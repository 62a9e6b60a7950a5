"""The health rule as transcripts: check results over time in, status and reports out.

Each line is one check at ``t`` (seconds since the replica started): its
result, the status after it, and what the node reports (``report healthy``)
or ``-`` when nothing changed, which is most of the time.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orion.domain.service import HEALTHY, STARTING, UNHEALTHY, HealthCheck
from orion.node.health import OUTPUT_LIMIT, CheckResult, HealthState, next_check_at, observe, shorten

CHECK = HealthCheck("http", "80/tcp", "/healthz", interval=10.0, timeout=2.0, start_period=30.0, failures=3)


def transcript(results: str, check: HealthCheck = CHECK) -> list[str]:
    """``results``: one character per check, ``+`` passes, ``-`` fails; checks run every interval."""
    state, lines = HealthState(), []
    for ok in results:
        at = next_check_at(state, 0.0, check)
        state, change = observe(state, CheckResult(ok == "+", "HTTP 200" if ok == "+" else "HTTP 503"), at,
                                0.0, check)
        said = f"report {change.status}" if change else "-"
        lines.append(f"t={at:<3g} {'pass' if ok == '+' else 'fail'}  {state.status:<9} {said}")
    return lines


def lines(text: str) -> list[str]:
    return text.strip("\n").splitlines()


def test_a_slow_boot_is_not_sick_and_one_pass_makes_it_healthy():
    assert transcript("----+") == lines("""
t=0   fail  starting  -
t=10  fail  starting  -
t=20  fail  starting  -
t=30  fail  starting  -
t=40  pass  healthy   report healthy
""")


def test_failures_after_the_start_period_count_and_three_in_a_row_make_it_unhealthy():
    assert transcript("+--+---+") == lines("""
t=0   pass  healthy   report healthy
t=10  fail  healthy   -
t=20  fail  healthy   -
t=30  pass  healthy   -
t=40  fail  healthy   -
t=50  fail  healthy   -
t=60  fail  unhealthy report unhealthy
t=70  pass  healthy   report healthy
""")


def test_a_replica_that_never_passes_turns_unhealthy_once_the_start_period_is_over():
    assert transcript("------") == lines("""
t=0   fail  starting  -
t=10  fail  starting  -
t=20  fail  starting  -
t=30  fail  starting  -
t=40  fail  starting  -
t=50  fail  unhealthy report unhealthy
""")


def test_without_a_start_period_the_threshold_counts_from_the_first_check():
    check = HealthCheck("tcp", "80/tcp", interval=10.0, start_period=0.0, failures=2)
    assert transcript("--", check)[-1] == "t=10  fail  unhealthy report unhealthy"


def test_the_change_carries_when_and_the_short_output():
    state, change = observe(HealthState(), CheckResult(False, "x" * 1000), 50.0, 0.0,
                            HealthCheck("tcp", "80/tcp", failures=1))
    assert change is not None and (change.status, change.previous, change.at) == (UNHEALTHY, STARTING, 50.0)
    assert len(change.output) == OUTPUT_LIMIT and change.output.endswith("\u2026")
    assert (state.since, state.last_check, state.output) == (50.0, 50.0, change.output)


def test_output_is_one_short_line():
    assert shorten("connection\n  refused\t(111)") == "connection refused (111)"


@given(st.lists(st.booleans(), max_size=40), st.integers(1, 5), st.sampled_from([0.0, 15.0, 60.0]))
def test_reports_are_exactly_the_status_changes(results, failures, start_period):
    check = HealthCheck("tcp", "80/tcp", interval=10.0, start_period=start_period, failures=failures)
    state, reported, statuses = HealthState(), [STARTING], []
    for ok in results:
        at = next_check_at(state, 0.0, check)
        before = state.status
        state, change = observe(state, CheckResult(ok), at, 0.0, check)
        statuses.append(state.status)
        assert (change is not None) == (state.status != before)
        if change:
            assert change.previous == reported[-1]
            reported.append(change.status)
        # Unhealthy needs `failures` failed checks in a row, all counted.
        if state.status == UNHEALTHY and change:
            assert results[len(statuses) - failures:len(statuses)] == [False] * failures
    assert reported[-1] == state.status
    if results and results[-1]:
        assert state.status == HEALTHY and state.failures == 0
