"""LivenessCore: the rules that turn the leader's gossip view into registry statuses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orion.domain.model import NodeInfo
from orion.membership.liveness import LivenessCore


def node(node_id: str, status: str = "alive", incarnation: int = 100) -> NodeInfo:
    return NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:7000", status=status, incarnation=incarnation)


def decide(core: LivenessCore, now: float, gossip: dict, nodes: list, leader: bool = True) -> dict[str, str]:
    return {c.node_id: c.status for c in core.observe(now, leader, gossip, nodes)}


gossip_entries = st.one_of(st.none(), st.tuples(st.sampled_from(["alive", "suspect", "dead", "left"]),
                                                 st.integers(0, 300)))
views = st.lists(st.tuples(st.floats(0.0, 29.9), gossip_entries), max_size=30)


def core() -> LivenessCore:
    return LivenessCore(node_dead_after=3.0, failover_grace=5.0, restart_grace=30.0)


def test_a_dead_member_is_declared_dead_once_the_failover_grace_is_over():
    c = core()
    nodes = [node("a"), node("b")]
    gossip = {"a": ("alive", 100), "b": ("dead", 100)}
    assert decide(c, 0.0, gossip, nodes) == {}           # just became leader: grace
    assert decide(c, 4.9, gossip, nodes) == {}
    assert decide(c, 5.0, gossip, nodes) == {"b": "dead"}


def test_suspect_is_recorded_at_once_and_decides_nothing_else():
    c = core()
    assert decide(c, 0.0, {"a": ("suspect", 100)}, [node("a")]) == {"a": "suspect"}


def test_news_about_an_earlier_life_is_stale():
    """A node restarted (new incarnation 200) and registered; the leader's gossip still says
    its old life (100) died. That is not a reason to mark the new one dead."""
    c = core()
    nodes = [node("a", incarnation=200)]
    assert decide(c, 10.0, {"a": ("dead", 100)}, nodes) == {}
    assert decide(c, 11.0, {"a": ("left", 100)}, nodes) == {}
    assert decide(c, 12.0, {"a": ("alive", 200)}, nodes) == {}


def test_stale_news_that_never_clears_counts_as_missing():
    c = core()
    nodes = [node("a", incarnation=200)]
    assert decide(c, 0.0, {"a": ("alive", 200)}, nodes) == {}  # leader since 0: grace over at 5
    assert decide(c, 10.0, {"a": ("dead", 100)}, nodes) == {}
    assert decide(c, 13.0, {"a": ("dead", 100)}, nodes) == {"a": "dead"}


def test_a_drained_node_stays_left_while_gossip_still_sees_it_alive():
    c = core()
    nodes = [node("a", status="left")]
    assert decide(c, 10.0, {"a": ("alive", 100)}, nodes) == {}
    assert decide(c, 11.0, {"a": ("dead", 100)}, nodes) == {}  # and shutting down after is no death


@given(views)
def test_a_drained_node_stays_left_whatever_gossip_says(seen):
    """Its agent stopping after the drain makes gossip say suspect, then dead, then nothing:
    none of it turns `left` into another status (it was once overwritten by `suspect`)."""
    c = core()
    nodes = [node("a", status="left")]
    for at, entry in sorted(seen, key=lambda x: x[0]):
        assert decide(c, 10.0 + at, {"a": entry} if entry else {}, nodes) == {}


def test_a_registered_node_gossip_never_saw_is_dead_after_node_dead_after():
    c = core()
    nodes = [node("a")]
    assert decide(c, 0.0, {"a": ("alive", 100)}, nodes) == {}
    assert decide(c, 10.0, {}, nodes) == {}
    assert decide(c, 12.9, {}, nodes) == {}
    assert decide(c, 13.0, {}, nodes) == {"a": "dead"}


def test_only_the_leader_decides_and_a_new_term_starts_a_new_grace():
    c = core()
    gossip, nodes = {"a": ("dead", 100)}, [node("a")]
    assert decide(c, 0.0, gossip, nodes, leader=False) == {}
    assert decide(c, 100.0, gossip, nodes) == {}
    assert decide(c, 105.0, gossip, nodes) == {"a": "dead"}


# -- an announced restart (SIGTERM: the agent goes, its containers stay) ----------------------------


def test_an_announced_restart_is_not_a_death_within_the_restart_grace():
    """t=10 the agent of b commits `restarting` and exits; gossip sees it die ~3 s later and
    then lose it altogether. Within 30 s of the leader first seeing it restarting: nothing."""
    c = core()
    assert decide(c, 0.0, {"a": ("alive", 100), "b": ("alive", 100)}, [node("a"), node("b")]) == {}
    nodes = [node("a"), node("b", status="restarting")]
    assert decide(c, 10.0, {"a": ("alive", 100), "b": ("alive", 100)}, nodes) == {}  # still shutting down
    assert decide(c, 13.5, {"a": ("alive", 100), "b": ("suspect", 100)}, nodes) == {}
    assert decide(c, 14.0, {"a": ("alive", 100), "b": ("dead", 100)}, nodes) == {}
    assert decide(c, 25.0, {"a": ("alive", 100)}, nodes) == {}  # gossip forgot it
    assert decide(c, 39.9, {"a": ("alive", 100)}, nodes) == {}


def test_past_the_restart_grace_a_node_that_never_came_back_is_dead():
    c = core()
    assert decide(c, 0.0, {"a": ("alive", 100)}, [node("a")]) == {}
    nodes = [node("a"), node("b", status="restarting")]
    gossip = {"a": ("alive", 100), "b": ("dead", 100)}
    assert decide(c, 10.0, gossip, nodes) == {}       # first seen restarting at 10
    assert decide(c, 39.9, gossip, nodes) == {}
    assert decide(c, 40.0, gossip, nodes) == {"b": "dead"}


def test_past_the_restart_grace_a_missing_node_is_dead_at_once():
    """Its absence was counted all along: the grace delays the verdict, not the clock."""
    c = core()
    nodes = [node("b", status="restarting")]
    assert decide(c, 0.0, {}, nodes) == {}
    assert decide(c, 29.9, {}, nodes) == {}
    assert decide(c, 30.0, {}, nodes) == {"b": "dead"}


def test_a_restarted_node_registers_alive_and_stale_news_of_its_old_life_is_ignored():
    """b restarts within the grace: its RegisterNode (new incarnation 200, status alive) ends
    the restart; gossip's "dead" about life 100 is stale; nothing is committed."""
    c = core()
    restarting = [node("b", status="restarting", incarnation=100)]
    assert decide(c, 0.0, {"b": ("alive", 100)}, restarting) == {}
    assert decide(c, 6.0, {"b": ("dead", 100)}, restarting) == {}
    registered = [node("b", status="alive", incarnation=200)]
    assert decide(c, 8.0, {"b": ("dead", 100)}, registered) == {}
    assert decide(c, 9.0, {"b": ("alive", 200)}, registered) == {}
    assert c.restarting_since == {}


def test_a_node_back_after_gossip_forgot_it_gets_a_fresh_count_for_its_new_life():
    """b was away 20 s: gossip reaped its tombstone, so its old life counts as missing. It
    registers again (incarnation 200) before gossip has heard of the new life: that absence
    is new, not 20 s old, and must not make the node dead (its tasks would move)."""
    c = core()
    assert decide(c, 0.0, {"b": ("alive", 100)}, [node("b", status="restarting")]) == {}
    assert decide(c, 20.0, {}, [node("b", status="restarting")]) == {}
    back = [node("b", status="alive", incarnation=200)]
    assert decide(c, 21.0, {}, back) == {}
    assert decide(c, 23.9, {}, back) == {}
    assert decide(c, 24.0, {"b": ("alive", 200)}, back) == {}


def test_an_announced_restart_that_never_happened_is_alive_again_after_the_grace():
    """The agent said `restarting` but its process stayed (a stop that hung): gossip still sees
    the same life alive, so once the grace is over the node is alive again, not dead."""
    c = core()
    nodes = [node("b", status="restarting")]
    assert decide(c, 0.0, {"b": ("alive", 100)}, nodes) == {}
    assert decide(c, 30.0, {"b": ("alive", 100)}, nodes) == {"b": "alive"}


def test_the_grace_is_counted_from_when_this_leader_first_saw_the_restart():
    """A leader change restarts the clock (the machine has none): a new leader gives the node
    its full grace, never less, and only after its own failover grace."""
    c = core()
    nodes, gossip = [node("b", status="restarting")], {"b": ("dead", 100)}
    assert decide(c, 0.0, gossip, nodes) == {}
    assert decide(c, 20.0, gossip, nodes, leader=False) == {}  # lost leadership: clocks dropped
    assert decide(c, 21.0, gossip, nodes) == {}                # leads again from 21
    assert decide(c, 50.9, gossip, nodes) == {}
    assert decide(c, 51.0, gossip, nodes) == {"b": "dead"}


def test_an_unannounced_death_keeps_the_fast_failover():
    """SIGKILL: no `restarting` in the registry, so the restart grace plays no part."""
    c = core()
    nodes = [node("a"), node("b")]
    assert decide(c, 0.0, {"a": ("alive", 100), "b": ("alive", 100)}, nodes) == {}
    assert decide(c, 10.0, {"a": ("alive", 100), "b": ("dead", 100)}, nodes) == {"b": "dead"}
    assert decide(c, 20.0, {"a": ("alive", 100)}, [node("a"), node("c")]) == {}
    assert decide(c, 23.0, {"a": ("alive", 100)}, [node("a"), node("c")]) == {"c": "dead"}




@given(views)
def test_within_the_grace_no_gossip_news_changes_a_restarting_node(seen):
    """Whatever gossip says of b (any state, any incarnation, or nothing) in the 30 s after the
    leader first saw it restarting, the leader commits nothing about b."""
    c = core()
    nodes = [node("b", status="restarting")]
    assert decide(c, 0.0, {"b": ("alive", 100)}, nodes) == {}
    for at, entry in sorted(seen, key=lambda x: x[0]):
        assert decide(c, at, {"b": entry} if entry else {}, nodes) == {}
