"""The registration planner: register again when the state no longer says who this node is
(a restore replaced the records), name the cluster once every node reads the command."""

from __future__ import annotations

from dataclasses import replace

from orion.domain.model import NodeInfo, Resources
from orion.node.registration import plan
from orion.state.commands import NameCluster, RegisterNode

ME = NodeInfo("n1", "10.0.0.1:8000", "10.0.0.1:7000", gossip_addr="10.0.0.1:6000",
              capacity=Resources(1 << 30, 1000), labels=(("zone", "a"),))


def ids():
    n = iter(range(100))
    return lambda: f"id{next(n)}"


def test_a_true_record_in_a_named_cluster_needs_nothing():
    recorded = replace(ME, status="dead", incarnation=7, ready=False, capacity=Resources(1, 1))
    assert plan(recorded, ME, "c-1", 2) == ([], "")


def test_a_missing_record_is_registered_again():
    commands, why = plan(None, ME, "c-1", 2, ids())
    assert commands == [RegisterNode(request_id="id0", node=ME)]
    assert why == "registering again: node n1 is not registered (a restored state without it?)"


def test_a_record_with_another_hosts_address_is_registered_again():
    commands, why = plan(replace(ME, api_addr="10.9.9.9:8000"), ME, "c-1", 2, ids())
    assert [type(c) for c in commands] == [RegisterNode]
    assert "recorded at api_addr 10.9.9.9:8000, it is 10.0.0.1:8000" in why


def test_other_labels_are_registered_again():
    commands, _ = plan(replace(ME, labels=()), ME, "c-1", 2, ids())
    assert [type(c) for c in commands] == [RegisterNode]


def test_an_unnamed_cluster_is_named_once_every_node_reads_the_command():
    assert plan(ME, ME, "", 1) == ([], "")  # an upgrade under way: an old node could not apply it
    commands, why = plan(ME, ME, "", 2, ids())
    assert commands == [NameCluster(request_id="id1", cluster_id="id0")]
    assert why == "naming the cluster id0"
