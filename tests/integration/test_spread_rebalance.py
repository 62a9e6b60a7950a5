"""Placement beyond label equality on real agents and a real Docker engine (issue #22): a spread
over ``zone`` labels puts replicas in every zone, ``maxPerNode`` keeps a replica pending with a
reason when every node holds its share, and a rebalance after a drained node returns evens the
count per node, with the update rules, while a balancer-style probe loses no request.
"""

from __future__ import annotations

from harness import Cluster
from modes_kit import BUSYBOX, api, per_node, restart, started, tasks, wait_node, wait_per_node
from service_kit import BalancerProbe, web_spec


def test_spread_over_zones_and_max_per_node(request, tmp_path, docker_host, docker_client):
    cluster = Cluster(root=tmp_path, docker_host=docker_host, labels=[{"zone": "a"}, {"zone": "a"}, {"zone": "b"}])
    n1, n2, n3 = cluster.nodes
    with started(request, cluster, docker_client):
        spread = {"image": BUSYBOX, "memory": "16M", "command": ["sleep", "3600"], "count": 4, "spread": "zone",
                  "update": {"minHealthyTime": "0s"}}
        assert api(cluster).put("/services/zoned", json=spread).status_code == 201
        # Half in each zone: zone b's one node takes two (a spread per node alone would give it one).
        wait_per_node(cluster, "zoned", {n1.id: 1, n2.id: 1, n3.id: 2})

        capped = {"image": BUSYBOX, "memory": "16M", "command": ["sleep", "3600"], "count": 4, "maxPerNode": 1,
                  "update": {"minHealthyTime": "0s"}}
        resp = api(cluster).put("/services/capped", json=capped)
        assert resp.status_code == 201 and any("maxPerNode 1" in n for n in resp.json()["notes"]), resp.text
        wait_per_node(cluster, "capped", {n1.id: 1, n2.id: 1, n3.id: 1})

        def pending() -> list[dict]:
            return [t for t in tasks(cluster, "capped") if t["state"] == "pending" and t["reasonKind"]]

        (waiting,) = cluster.wait(pending, 30, "the fourth replica pending with its reason")
        assert waiting["reasonKind"] == "max_per_node"
        assert waiting["reason"] == "every eligible node already runs 1 replica of capped (maxPerNode 1)"

        bad = api(cluster).put("/services/bad", json={**capped, "maxPerNode": 0})
        assert bad.status_code == 400 and bad.json()["field"] == "maxPerNode", bad.text
        bad = api(cluster).put("/services/bad", json={**capped, "constraints": ["node.labels.zone ~ a"]})
        assert bad.status_code == 400 and bad.json()["field"] == "constraints[0]", bad.text


def deployed(cluster: Cluster) -> bool:
    """The service's current deployment succeeded (a failed one fails the test, saying why)."""
    dep = api(cluster).get("/services/web").json()["deployment"]
    assert dep["state"] in ("running", "successful"), dep
    return dep["state"] == "successful"


def test_rebalance_after_a_node_returns_evens_the_count_with_no_failed_probe(request, tmp_path, docker_host,
                                                                           docker_client):
    cluster = Cluster(root=tmp_path, docker_host=docker_host)
    n1, n2, n3 = cluster.nodes
    with started(request, cluster, docker_client):
        # A generous healthy deadline: six replicas start at once on a shared, loaded machine.
        spec = web_spec(count=6, minHealthyTime="1s", healthyDeadline="120s")
        assert api(cluster).put("/services/web", json=spec).status_code == 201
        wait_per_node(cluster, "web", {n1.id: 2, n2.id: 2, n3.id: 2}, timeout=120)
        cluster.wait(lambda: deployed(cluster), 120, "the first rollout to succeed")

        assert api(cluster).post(f"/nodes/{n3.id}/drain").status_code == 202  # its replicas move away
        cluster.wait(lambda: sum(per_node(cluster, "web").values()) == 6 and n3.id not in per_node(cluster, "web"),
                     120, "the drained node's replicas running elsewhere")
        restart(cluster, n3)  # it returns: registered again, alive, and empty
        wait_node(cluster, n3, "alive")
        assert n3.id not in per_node(cluster, "web")

        with BalancerProbe(cluster) as probe:
            resp = api(cluster).post("/services/web/rebalance")
            assert resp.status_code == 201, resp.text
            body = resp.json()
            assert len(body["moves"]) == 2 and body["deployment"]["kind"] == "rebalance", body
            cluster.wait(lambda: deployed(cluster), 120, "the rebalance to succeed")
            wait_per_node(cluster, "web", {n1.id: 2, n2.id: 2, n3.id: 2})
        assert probe.sent > 20 and probe.failed == [], f"{len(probe.failed)} of {probe.sent} probes failed"
        again = api(cluster).post("/services/web/rebalance")
        assert again.status_code == 200 and again.json()["moves"] == [], again.text

        resp = api(cluster).post("/services/web/redeploy")  # every replica replaced, same spec
        assert resp.status_code == 201 and resp.json()["deployment"]["kind"] == "redeploy", resp.text
        version = resp.json()["version"]
        cluster.wait(lambda: deployed(cluster), 180, "the redeploy to succeed")
        running = [t for t in tasks(cluster, "web") if t["desired"] == "run" and t["state"] == "running"]
        assert len(running) == 6 and {t["version"] for t in running} == {version}
