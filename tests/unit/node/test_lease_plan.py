"""What a node asks of the replicated state about the overlay (orion/node/lease.py), and the loop
that asks it against a real state machine in a LocalStore (orion/node/lease_loop.py)."""

from __future__ import annotations

import pytest

from orion.domain.model import NodeInfo, Resources
from orion.domain.network import NetworkSettings, SubnetLease
from orion.node.lease import HostFacts, plan
from orion.node.lease_loop import LeaseLoop
from orion.state.commands import AcquireLease, InitNetwork, RegisterNode
from orion.store.local import LocalStore

FACTS = HostFacts("n1", "ENGINE-1", "10.77.0.1", 1500)
PROPOSAL = NetworkSettings()


def lease(holders: tuple[str, ...] = ("n1",), underlay: str = "10.77.0.1") -> SubnetLease:
    return SubnetLease(index=0, subnet="10.42.0.0/24", host="ENGINE-1", holders=holders, underlay_ip=underlay,
                       vtep_mac="0e:42:0a:2a:00:00")


def test_without_a_network_only_the_leader_proposes_its_settings():
    assert plan(None, None, FACTS, leader=True, proposal=PROPOSAL) == InitNetwork(settings=PROPOSAL)
    assert plan(None, None, FACTS, leader=False, proposal=PROPOSAL) is None


def test_a_host_without_a_lease_asks_for_one_with_its_engine_underlay_and_mtu():
    assert plan(PROPOSAL, None, FACTS, leader=False, proposal=PROPOSAL) == AcquireLease(
        node_id="n1", host="ENGINE-1", underlay_ip="10.77.0.1", underlay_mtu=1500)


def test_a_lease_that_lists_this_node_at_its_address_needs_nothing():
    assert plan(PROPOSAL, lease(), FACTS, leader=True, proposal=PROPOSAL) is None


@pytest.mark.parametrize("held", [lease(holders=("n2",)), lease(underlay="10.77.0.9")],
                         ids=["another-agent-on-the-engine", "the-host-moved"])
def test_a_lease_without_this_node_or_at_another_address_is_asked_again(held):
    assert isinstance(plan(PROPOSAL, held, FACTS, leader=False, proposal=PROPOSAL), AcquireLease)


def register(store: LocalStore, node_id: str) -> None:
    store.submit(RegisterNode(node=NodeInfo(node_id, f"{node_id}:8000", f"{node_id}:9000",
                                            capacity=Resources(1 << 30, 1000))), 1.0)


def loop(store: LocalStore, facts: HostFacts = FACTS) -> tuple[LeaseLoop, list[str]]:
    ended: list[str] = []
    return LeaseLoop(store, facts, PROPOSAL, interval=1.0, write_timeout=1.0, on_refused=ended.append), ended


def test_the_leader_sets_the_network_then_the_registered_node_gets_its_lease():
    store = LocalStore()
    register(store, "n1")
    lease_loop, ended = loop(store)
    assert lease_loop.run_once().sentence == "init_network applied"
    assert lease_loop.run_once().sentence == "acquire_lease applied"
    assert not lease_loop.run_once().acted
    (held, _) = store.read(lambda m: m.lease_of_host("ENGINE-1"))
    assert held.holders == ("n1",) and held.underlay_ip == "10.77.0.1" and not ended


def test_a_refusal_the_next_pass_can_outlive_does_not_end_the_agent():
    """Not registered yet: refused with kind not_found, asked again once registered."""
    store = LocalStore()
    store.submit(InitNetwork(settings=PROPOSAL), 1.0)
    lease_loop, ended = loop(store)
    assert lease_loop.run_once().sentence.startswith("acquire_lease refused: node 'n1' is not registered")
    assert not ended
    register(store, "n1")
    assert lease_loop.run_once().sentence == "acquire_lease applied"


def test_an_underlay_that_cannot_carry_the_overlay_ends_the_agent_with_both_mtus_named():
    store = LocalStore()
    register(store, "n1")
    store.submit(InitNetwork(settings=PROPOSAL), 1.0)
    lease_loop, ended = loop(store, HostFacts("n1", "ENGINE-1", "10.77.0.1", 1400))
    lease_loop.run_once()
    assert len(ended) == 1 and "1400" in ended[0] and "1450" in ended[0], ended
