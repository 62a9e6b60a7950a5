"""Autopilot: which voter to remove or add, as rules and as a fleet scenario."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orion.domain.model import NODE_ALIVE, NODE_DEAD, NODE_LEFT, NodeInfo
from orion.membership import autopilot
from orion.membership.autopilot import ADD, REMOVE, AutopilotConfig, quorum

CFG = AutopilotConfig(voter_cap=5, dead_voter_cleanup=30.0)


def fleet(n: int, dead: set[int] = frozenset(), left: set[int] = frozenset()) -> list[NodeInfo]:
    def status(i: int) -> str:
        return NODE_DEAD if i in dead else NODE_LEFT if i in left else NODE_ALIVE
    return [NodeInfo(f"n{i}", f"a{i}", f"r{i}", status=status(i)) for i in range(1, n + 1)]


def voters(*ids: int) -> list[str]:
    return [f"r{i}" for i in ids]


def test_a_dead_voter_is_kept_during_the_cleanup_period_then_removed():
    nodes = fleet(5, dead={5})
    assert autopilot.plan(voters(1, 2, 3, 4, 5), nodes, "r1", {"n5": 0.0}, set(), 29.0, CFG) is None
    change = autopilot.plan(voters(1, 2, 3, 4, 5), nodes, "r1", {"n5": 0.0}, set(), 30.0, CFG)
    assert (change.action, change.node_id) == (REMOVE, "n5")
    assert "dead for 30s" in change.sentence


def test_a_restarting_voter_is_healthy_and_never_removed():
    """An announced restart keeps its vote: the agent is back in seconds, and removing it would
    cost a membership change twice over (Consul keeps a voter through a restart too)."""
    nodes = [NodeInfo(n.id, n.api_addr, n.raft_addr, status="restarting" if n.id == "n5" else n.status)
             for n in fleet(5)]
    assert autopilot.plan(voters(1, 2, 3, 4, 5), nodes, "r1", {}, set(), 1000.0, CFG) is None


def test_the_leader_never_removes_itself():
    nodes = fleet(3, dead={1})
    assert autopilot.plan(voters(1, 2, 3), nodes, "r1", {"n1": 0.0}, set(), 100.0, CFG) is None


def test_no_removal_when_the_healthy_voters_would_not_be_a_majority():
    # 5 voters, 3 dead: 2 healthy; removing one leaves 4 voters needing 3 healthy.
    nodes = fleet(5, dead={3, 4, 5})
    gone = {"n3": 0.0, "n4": 0.0, "n5": 0.0}
    assert autopilot.plan(voters(1, 2, 3, 4, 5), nodes, "r1", gone, set(), 100.0, CFG) is None


def test_one_change_per_pass():
    nodes = fleet(5, dead={4, 5})
    gone = {"n4": 0.0, "n5": 0.0}
    change = autopilot.plan(voters(1, 2, 3, 4, 5), nodes, "r1", gone, set(), 100.0, CFG)
    assert change.node_id == "n4"  # n5 waits for the next pass, against the new member list


def test_a_healthy_non_voter_is_promoted_below_the_cap_but_not_above():
    nodes = fleet(6)
    change = autopilot.plan(voters(1, 2, 3, 4), nodes, "r1", {}, {"n5", "n6"}, 0.0, CFG)
    assert (change.action, change.node_id) == (ADD, "n5")
    assert autopilot.plan(voters(1, 2, 3, 4, 5), nodes, "r1", {}, {"n6"}, 0.0, CFG) is None


def test_a_record_that_says_alive_is_not_enough_to_become_a_voter():
    """After a majority loss and ``raft recover``, the dead nodes' records still say alive: adding
    one back would leave the recovered voter without a quorum."""
    assert autopilot.plan(voters(1), fleet(3), "r1", {}, set(), 0.0, CFG) is None
    change = autopilot.plan(voters(1), fleet(3), "r1", {}, {"n3"}, 0.0, CFG)
    assert (change.action, change.node_id) == (ADD, "n3")


def test_a_removed_node_that_is_back_is_promoted_when_its_agent_answers():
    nodes = fleet(3, dead={3})
    assert autopilot.plan(voters(1, 2), nodes, "r1", {"n3": 0.0}, set(), 5.0, CFG) is None
    change = autopilot.plan(voters(1, 2), nodes, "r1", {"n3": 0.0}, {"n3"}, 5.0, CFG)
    assert (change.action, change.node_id) == (ADD, "n3")


def test_a_five_node_fleet_survives_losing_two_nodes_one_after_another_and_then_a_third():
    members = voters(1, 2, 3, 4, 5)
    down: set[int] = set()
    gone: dict[str, float] = {}
    now = 0.0
    for victim in (5, 4, 3):
        down.add(victim)
        gone[f"n{victim}"] = now
        alive = [m for m in members if int(m[1:]) not in down]
        assert len(alive) >= quorum(len(members)), f"quorum lost after n{victim} died: {members}"
        now += CFG.dead_voter_cleanup
        change = autopilot.plan(members, fleet(5, dead=down), "r1", gone, set(), now, CFG)
        assert change is not None and change.action == REMOVE
        members = [m for m in members if m != change.raft_addr]
        now += 1
    assert members == voters(1, 2)


@given(st.integers(1, 7), st.sets(st.integers(1, 7)), st.floats(0, 100))
def test_a_removal_always_leaves_a_healthy_majority(n, dead, now):
    dead = {d for d in dead if d <= n and d != 1}
    nodes = fleet(n, dead=dead)
    members = voters(*range(1, n + 1))
    change = autopilot.plan(members, nodes, "r1", {f"n{d}": 0.0 for d in dead}, set(), now, CFG)
    if change is not None and change.action == REMOVE:
        remaining = [m for m in members if m != change.raft_addr]
        healthy = [m for m in remaining if int(m[1:]) not in dead]
        assert len(healthy) >= quorum(len(remaining))
        assert now >= CFG.dead_voter_cleanup and change.raft_addr != "r1"
