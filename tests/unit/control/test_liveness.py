"""LivenessCore: the rules that turn the leader's gossip view into registry statuses."""

from __future__ import annotations

from orion.control.liveness import LivenessCore
from orion.model import NodeInfo


def node(node_id: str, status: str = "alive", incarnation: int = 100) -> NodeInfo:
    return NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:7000", status=status, incarnation=incarnation)


def decide(core: LivenessCore, now: float, gossip: dict, nodes: list, leader: bool = True) -> dict[str, str]:
    return {c.node_id: c.status for c in core.observe(now, leader, gossip, nodes)}


def core() -> LivenessCore:
    return LivenessCore(node_dead_after=3.0, failover_grace=5.0)


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
