"""The modes' routes on the in-process app (tests/service_world.py): redeploy, rebalance and a job's
runs, and the gate that keeps the modes out of the log until every node reads them."""

from __future__ import annotations

from dataclasses import replace

from api_kit import NODE
from service_world import WEB, ServiceWorld

from orion.state.commands import RegisterNode


def test_redeploy_declares_a_copy_that_replaces_every_replica():
    world = ServiceWorld()
    world.http.put("/services/web", json=WEB)
    world.settle()
    before = {t.id for t in world.replicas() if t.desired == "run"}
    resp = world.http.post("/services/web/redeploy")
    assert resp.status_code == 201 and resp.json["deployment"]["kind"] == "redeploy"
    world.settle()
    after = {t.id for t in world.replicas() if t.desired == "run"}
    assert len(after) == 2 and before.isdisjoint(after)
    history = world.http.get("/services/web/versions").json
    assert [(v["version"], v["copyOf"]) for v in history] == [(1, None), (2, 1)]


def test_rebalance_on_one_node_has_nothing_to_move_and_runs_are_only_a_jobs():
    world = ServiceWorld()
    world.http.put("/services/web", json=WEB)
    world.settle()
    resp = world.http.post("/services/web/rebalance")
    assert resp.status_code == 200 and resp.json["moves"] == []
    assert resp.json["sentence"] == f"web is spread evenly ({NODE.id} 2)"
    resp = world.http.get("/services/web/runs")
    assert resp.status_code == 400 and resp.json == {"error": "web is a replicated service: only a job has runs",
                                                     "field": "name"}
    assert world.http.post("/services/nope/redeploy").status_code == 404


def test_a_job_and_its_runs_over_http():
    world = ServiceWorld()
    resp = world.http.put("/services/batch", json={"image": "app:1", "memory": "64M", "mode": "job",
                                                   "job": {"completions": 2}})
    assert resp.status_code == 201 and resp.json["mode"] == "job" and resp.json["count"] == 2
    runs = world.http.get("/services/batch/runs").json
    assert [(r["run"], r["state"], r["attempts"]) for r in runs] == [(1, "running", 0)]
    listed = world.http.get("/services").json
    assert listed[0]["job"]["lastRun"]["run"] == 1 and listed[0]["job"]["nextRun"] is None


def test_no_mode_is_declared_while_a_node_reads_an_older_log_format():
    world = ServiceWorld()
    world.submit(RegisterNode(node=replace(NODE, id="old", log_version=2)))
    resp = world.http.put("/services/agent", json={"image": "app:1", "memory": "64M", "mode": "global"})
    assert resp.status_code == 409 and "log format 3" in resp.json["error"] and resp.json["field"] == "mode"
    assert world.http.get("/services/agent").status_code == 404  # nothing changed
    assert world.http.put("/services/web", json=WEB).status_code == 201  # a plain service still is
    assert world.http.post("/services/web/redeploy").status_code == 409
