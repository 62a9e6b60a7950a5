"""The leader's admission decision (orion/store/admission.py): voters, cap, joiner -> role.

The old race, for the record: every joiner read "fewer than cap voters" before any of
them was added, and decided by itself. Here the decision is the leader's, one at a time
against its current configuration, so a parallel start ends with min(N, cap) voters.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orion.store.admission import REPLICA, VOTER, decide


def test_below_the_cap_a_joiner_becomes_the_next_voter():
    answer = decide(["a", "b"], 5, "c")
    assert answer.role == VOTER and answer.reason == "voter 3 of at most 5"


def test_at_the_cap_a_joiner_becomes_a_replica_not_a_refusal():
    answer = decide(["a", "b", "c"], 3, "d")
    assert answer.role == REPLICA
    assert answer.reason == "3 voters already (voter_cap 3): a non-voting replica"


def test_a_voter_asking_again_is_a_voter_even_at_the_cap():
    assert decide(["a", "b", "c"], 3, "b").role == VOTER


def test_a_cluster_over_its_cap_admits_no_more_voters():
    """A lowered voter_cap: the voters stay (autopilot removes none for it), newcomers replicate."""
    assert decide(["a", "b", "c", "d", "e"], 3, "f").role == REPLICA


def admit_all(first: str, arrivals: list[str], cap: int) -> tuple[list[str], dict[str, list[str]]]:
    """The leader's loop: one request at a time, a voter is added before the next is decided.
    Returns the voters and every answer each joiner got."""
    voters, answers = [first], {}
    for joiner in arrivals:
        answer = decide(voters, cap, joiner)
        if answer.role == VOTER and joiner not in voters:
            voters.append(joiner)
        answers.setdefault(joiner, []).append(answer.role)
    return voters, answers


@given(st.integers(min_value=0, max_value=120), st.integers(min_value=1, max_value=9), st.randoms())
def test_any_arrival_order_with_retries_ends_with_min_n_cap_voters_and_the_rest_replicas(n, cap, rnd):
    joiners = [f"10.0.0.{i}:7000" for i in range(n)]
    arrivals = joiners + [rnd.choice(joiners) for _ in range(n // 2)] if joiners else []  # some ask twice
    rnd.shuffle(arrivals)
    voters, answers = admit_all("seed:7000", arrivals, cap)
    assert len(voters) == min(n + 1, cap)
    first = {joiner: got[0] for joiner, got in answers.items()}
    assert sum(1 for role in first.values() if role == VOTER) == len(voters) - 1
    assert sum(1 for role in first.values() if role == REPLICA) == n - (len(voters) - 1)
    for got in answers.values():  # a voter asking again stays a voter
        assert got[0] == REPLICA or set(got) == {VOTER}


@given(st.lists(st.text(min_size=1, max_size=8), max_size=12, unique=True), st.integers(1, 9), st.text(min_size=1))
def test_the_decision_is_a_function_of_its_inputs(voters, cap, joiner):
    assert decide(voters, cap, joiner) == decide(list(reversed(voters)), cap, joiner)
