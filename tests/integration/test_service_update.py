"""Rolling updates with real agents and real Docker, probed while they happen.

* start-first on dynamic ports (one shared engine): a client behind a balancer
  fed by Orion's view of the healthy replicas never sees the service down.
* start-first asked with a static host port (one engine per node, each
  publishing on its node's address): the update runs stop-first, and at no
  moment are more than ``maxParallel`` of the nodes' ports down.

Both end with every replica serving the new version.
"""

from __future__ import annotations

import time

import pytest
from harness import free_ports
from selfheal_kit import IPS
from service_kit import BalancerProbe, NodeProbe, answer, deployment_state, replicas, serving, web_spec

pytestmark = [pytest.mark.docker, pytest.mark.cluster]
# Each node's engine publishes on its own address (tests/integration/conftest.py, engines).
PUBLISH_ON_NODE_IPS = True


def test_start_first_on_dynamic_ports_updates_every_replica_without_one_failed_probe(cluster):
    node = cluster.nodes[1]
    resp = node.post("/services", json=web_spec("1"))
    assert resp.status_code == 201, resp.text
    deployment_state(cluster, 1, ("successful",), 60)
    assert {answer("127.0.0.1", t["ports"]["80/tcp"]) for t in serving(cluster)} == {"version 1"}

    with BalancerProbe(cluster) as probe:
        time.sleep(0.5)
        started = time.monotonic()
        resp = node.put("/services/web", json=web_spec("2"))
        assert resp.status_code == 201 and resp.json()["diff"]["replace"], resp.text
        done = deployment_state(cluster, 2, ("successful", "failed", "reverted"), 90)
        took = time.monotonic() - started
        time.sleep(0.5)
    assert done["deployment"]["state"] == "successful", done
    now_serving = serving(cluster)
    assert len(now_serving) == 3 and {t["version"] for t in now_serving} == {2}
    assert {answer("127.0.0.1", t["ports"]["80/tcp"]) for t in now_serving} == {"version 2"}
    assert sorted(t["id"] for t in replicas(cluster) if t["desired"] == "run") == ["web.0.d2", "web.1.d2", "web.2.d2"]
    assert probe.sent > 100 and set(probe.seen) == {"version 1", "version 2"}
    assert probe.failed == [], f"{len(probe.failed)} of {probe.sent} probes failed"
    print(f"start-first: 3 replicas updated in {took:.1f}s; {probe.sent} probes, 0 failed, "
          f"{probe.retried} answered by a second replica")


def test_a_static_host_port_updates_stop_first_with_at_most_max_parallel_replicas_down(heal):
    cluster = heal.cluster
    (port,) = free_ports(1)
    node = cluster.nodes[0]
    resp = node.post("/services", json=web_spec("1", port=str(port), order="start-first"))
    assert resp.status_code == 201, resp.text
    assert any("stop-first" in note for note in resp.json()["notes"])
    deployment_state(cluster, 1, ("successful",), 60)
    assert sorted(t["nodeId"] for t in serving(cluster)) == sorted(n.id for n in cluster.nodes)

    with NodeProbe(IPS[:3], port) as probe:
        time.sleep(0.5)
        assert probe.most_down == 0
        started = time.monotonic()
        resp = node.put("/services/web", json=web_spec("2", port=str(port)))
        assert resp.status_code == 201, resp.text
        done = deployment_state(cluster, 2, ("successful", "failed", "reverted"), 90)
        took = time.monotonic() - started
        time.sleep(0.5)
    assert done["deployment"]["state"] == "successful", done
    assert {answer(ip, port) for ip in IPS[:3]} == {"version 2"}
    down_rounds = [r for r in probe.rounds if r[1]]
    assert probe.most_down == 1, f"at most maxParallel (1) down at once, saw {probe.most_down}"
    assert down_rounds, "stop-first costs each replica a moment down: the probe must have seen it"
    print(f"stop-first (static port): 3 replicas updated in {took:.1f}s; {len(probe.rounds)} rounds, "
          f"{len(down_rounds)} with one replica down, never more")
