"""A global service on real agents and a real Docker engine (issue #22): one replica on every
eligible node, following a join, a drain and a label change.

Three agents start (zones a, a, b); the service wants nodes with a zone label. A fourth (zone c)
joins and gets its replica; one node is drained and its replica stops with none started
elsewhere; one node restarts without its zone label and loses its replica, then with it again
and gets one back.
"""

from __future__ import annotations

from harness import Cluster
from modes_kit import BUSYBOX, api, join, per_node, restart, started, tasks, wait_per_node

SPEC = {"image": BUSYBOX, "memory": "16M", "command": ["sleep", "3600"], "mode": "global",
        "constraints": ["node.labels.zone exists"],
        "update": {"minHealthyTime": "0s", "healthyDeadline": "60s"}}


def test_one_replica_per_eligible_node_following_joins_drains_and_label_changes(request, tmp_path, docker_host,
                                                                                docker_client):
    cluster = Cluster(root=tmp_path, docker_host=docker_host, size=4,
                      labels=[{"zone": "a"}, {"zone": "a"}, {"zone": "b"}, {"zone": "c"}])
    n1, n2, n3, n4 = cluster.nodes
    with started(request, cluster, docker_client, first=3):
        resp = api(cluster).put("/services/agent", json=SPEC)
        assert resp.status_code == 201, resp.text
        wait_per_node(cluster, "agent", {n1.id: 1, n2.id: 1, n3.id: 1})
        assert api(cluster).get("/services/agent").json()["count"] == 3

        join(cluster, n4)  # a fourth node joins: it gets its replica
        wait_per_node(cluster, "agent", {n1.id: 1, n2.id: 1, n3.id: 1, n4.id: 1})

        resp = api(cluster).post(f"/nodes/{n2.id}/drain")  # drained: its replica stops, none elsewhere
        assert resp.status_code == 202, resp.text
        wait_per_node(cluster, "agent", {n1.id: 1, n3.id: 1, n4.id: 1})
        on_n2 = [t for t in tasks(cluster, "agent") if t["nodeId"] == n2.id]
        cluster.wait(lambda: all(t["state"] == "stopped" for t in tasks(cluster, "agent") if t["nodeId"] == n2.id),
                     60, "the drained node's replica stopped")
        assert on_n2 and all(t["desired"] == "stop" for t in tasks(cluster, "agent") if t["nodeId"] == n2.id)

        cluster.labels[2] = {"rack": "r1"}  # n3 restarts without a zone: it is no longer eligible
        restart(cluster, n3)
        wait_per_node(cluster, "agent", {n1.id: 1, n4.id: 1})
        cluster.labels[2] = {"zone": "b"}  # and with one again: its replica comes back
        restart(cluster, n3)
        wait_per_node(cluster, "agent", {n1.id: 1, n3.id: 1, n4.id: 1})
        # Never two running replicas on one node, and the service says so.
        assert all(n == 1 for n in per_node(cluster, "agent").values())
        service = api(cluster).get("/services/agent").json()
        assert (service["mode"], service["count"], service["deployment"]["state"]) == ("global", 3, "successful")
