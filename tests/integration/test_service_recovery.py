"""Rollouts that go wrong, with real agents and real Docker.

* A version that fails its health check: the deployment fails well within its
  healthyDeadline and auto-reverts; every replica serves the previous version
  again and the history reads v1, v2 (reverted), v3 = v1.
* The leader SIGKILLed in the middle of a rollout: a new leader carries it on
  from the replicated record, and it completes with no replica replaced twice
  (each slot got exactly one new replica: the ids are derived per deployment
  and slot, and a stale plan is refused by the state machine).
"""

from __future__ import annotations

import time

import pytest
from service_kit import SERVE, BalancerProbe, answer, api, deployment_state, replicas, service, serving, web_spec

pytestmark = [pytest.mark.docker, pytest.mark.cluster]

DEADLINE = 20.0


def test_a_version_failing_its_check_is_reverted_within_its_deadline(cluster):
    node = cluster.nodes[0]
    assert node.post("/services", json=web_spec("1", autoRevert=True)).status_code == 201
    deployment_state(cluster, 1, ("successful",), 60)
    broken = web_spec("2", autoRevert=True, healthyDeadline=f"{DEADLINE:g}s")
    broken["command"] = ["sh", "-c", SERVE.replace("-p 80", "-p 81")]  # answers on the wrong port
    with BalancerProbe(cluster) as probe:
        started = time.monotonic()
        resp = node.put("/services/web", json=broken)
        assert resp.status_code == 201, resp.text
        cluster.wait(lambda: api(cluster).get("/services/web").json()["version"] == 3, DEADLINE + 10,
                     "the failed version to be reverted (version 3)")
        failed_after = time.monotonic() - started
        done = deployment_state(cluster, 3, ("successful",), 60)
    assert failed_after < DEADLINE, f"the deployment failed after {failed_after:.1f}s"
    versions = api(cluster).get("/services/web/versions").json()
    assert [(v["version"], v["copyOf"], v["deployment"]["state"]) for v in versions] == [
        (1, None, "successful"), (2, None, "reverted"), (3, 1, "successful")]
    assert "unhealthy" in versions[1]["deployment"]["reason"] or "exited" in versions[1]["deployment"]["reason"]
    assert done["healthy"] == 3
    assert {answer("127.0.0.1", t["ports"]["80/tcp"]) for t in serving(cluster)} == {"version 1"}
    # The replicas that never left version 1 were relabelled, not restarted: still the d1 ones.
    assert sorted(t["id"] for t in serving(cluster)) == ["web.0.d1", "web.1.d1", "web.2.d1"]
    assert probe.failed == [], f"{len(probe.failed)} of {probe.sent} probes failed"
    print(f"failed and reverted {failed_after:.1f}s after the update (deadline {DEADLINE:g}s); "
          f"{probe.sent} probes, 0 failed")


def test_a_leader_killed_mid_rollout_is_followed_by_one_that_finishes_it_replacing_no_replica_twice(cluster):
    node = cluster.nodes[0]
    spec = web_spec("1", minHealthyTime="3s", healthyDeadline="60s")
    assert node.post("/services", json=spec).status_code == 201
    deployment_state(cluster, 1, ("successful",), 60)
    leader = cluster.wait(cluster.leader, 10, "a leader")
    other = next(n for n in cluster.nodes if n is not leader)
    assert other.put("/services/web", json={**spec, "env": {"V": "2"}}).status_code == 201

    def one_slot_done() -> bool:
        progress = other.get("/services/web").json()["deployment"].get("progress", [])
        return sum(p["phase"] == "done" for p in progress) == 1

    cluster.wait(one_slot_done, 60, "the rollout one slot in")
    cluster.kill(leader)
    killed_at = time.monotonic()
    new_leader = cluster.wait(lambda: (n := cluster.leader()) is not None and n is not leader and n, 20,
                              "a new leader")
    done = deployment_state(cluster, 2, ("successful", "failed", "reverted"), 90)
    took = time.monotonic() - killed_at
    assert done["deployment"]["state"] == "successful", done
    cluster.restart(leader)  # back, its stale containers are retired by its reconciler
    ids = sorted(t["id"] for t in replicas(cluster))
    assert ids == ["web.0.d1", "web.0.d2", "web.1.d1", "web.1.d2", "web.2.d1", "web.2.d2"], ids
    now_serving = serving(cluster)
    assert sorted(t["id"] for t in now_serving) == ["web.0.d2", "web.1.d2", "web.2.d2"]
    assert {answer("127.0.0.1", t["ports"]["80/tcp"]) for t in now_serving} == {"version 2"}
    print(f"leader {leader.id} killed one slot in; {new_leader.id} finished the rollout {took:.1f}s later")


def test_a_replica_stopped_by_request_is_replaced_in_its_slot(cluster):
    node = cluster.nodes[0]
    assert node.post("/services", json=web_spec("1", count=2)).status_code == 201
    deployment_state(cluster, 1, ("successful",), 60)
    assert len({t["nodeId"] for t in serving(cluster)}) == 2  # spread, not packed on one node
    assert node.delete("/tasks/web.1.d1").status_code in (200, 202)
    refilled = cluster.wait(lambda: [t for t in serving(cluster) if t["id"].startswith("web.1.d1.")], 30,
                            "slot 1 refilled with a new replica, serving")
    assert refilled[0]["version"] == 1  # its id names slot 1
    assert {answer("127.0.0.1", t["ports"]["80/tcp"]) for t in serving(cluster)} == {"version 1"}
    assert sorted(t["id"] for t in serving(cluster)) == ["web.0.d1", refilled[0]["id"]]
    assert service(cluster)["deployment"]["state"] == "successful"  # a refill is no new deployment
