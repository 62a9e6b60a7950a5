"""The overlay over HTTP: ``/cluster/network``, ``/services/<name>/endpoints``, the network fields
of a service and their refusals, and the addresses in task, node and service views (a real
StateMachine in a LocalStore; Raft itself is not under test)."""

from __future__ import annotations

import jsonschema
import pytest
from api_kit import NODE, full_app, registered_store

from orion.control.deployment_loop import DeploymentLoop
from orion.domain.model import NodeInfo
from orion.domain.network import NetworkSettings
from orion.domain.service import HEALTHY, UNHEALTHY
from orion.state.commands import (
    AcquireLease,
    InitNetwork,
    Placement,
    PlaceTasks,
    RegisterNode,
    ReportTaskHealth,
    ReportTaskState,
    SetNodeStatus,
)

WEB = {"image": "app:1", "memory": "64M", "count": 2, "portBindings": {"80/tcp": ""},
       "publish": [{"published": 8080, "target": 80}]}


class World:
    def __init__(self, network: bool = True) -> None:
        self.store = registered_store()
        self.http = full_app(self.store).test_client()
        if network:
            self.submit(InitNetwork(settings=NetworkSettings()))
            self.submit(AcquireLease(node_id=NODE.id, host="engine-1", underlay_ip="192.0.2.7", underlay_mtu=1500))

    def submit(self, command) -> dict:  # noqa: ANN001
        return self.store.submit(command, 1.0)

    def deploy(self) -> None:
        """The leader's deployment pass: creates the replicas of what was declared."""
        DeploymentLoop(self.store, interval=0.5, write_timeout=1.0, clock=lambda: 1.0).run_once()

    def run(self, task_id: str, ip: str | None, health: str = HEALTHY) -> None:
        """What the scheduler and the node do: place it, run it, report its address and health."""
        self.submit(PlaceTasks(placements=(Placement(task_id, NODE.id, 0),)))
        self.submit(ReportTaskState(task_id=task_id, node_id=NODE.id, generation=1, state="running",
                                    container_id="c-" + task_id, ip=ip))
        self.submit(ReportTaskHealth(task_id=task_id, node_id=NODE.id, generation=1, status=health, since=1.0))


@pytest.fixture
def world() -> World:
    return World()


def test_the_cluster_network_shows_settings_leases_and_vips(world):
    assert world.http.put("/services/web", json=WEB).status_code == 201
    resp = world.http.get("/v1/cluster/network")
    assert resp.status_code == 200 and int(resp.headers["X-Orion-Index"]) > 0
    assert resp.json == {
        "settings": {"cidr": "10.42.0.0/16", "hostPrefix": 24, "vni": 1, "port": 4789, "mtu": 1450,
                     "serviceCidr": "10.43.0.0/16"},
        "leases": [{"index": 0, "subnet": "10.42.0.0/24", "host": "engine-1", "holders": ["node1"],
                    "underlayIp": "192.0.2.7", "vtepMac": "0e:42:0a:2a:00:00", "updatedIndex": 3}],
        "vips": {"web": "10.43.0.1"}}


def test_before_the_network_is_set_it_says_so():
    world = World(network=False)
    assert world.http.get("/cluster/network").json == {"settings": None, "leases": [], "vips": {}}
    (node,) = world.http.get("/nodes").json
    assert (node["subnet"], node["vtep"]) == (None, None)


def test_nodes_show_their_hosts_subnet_and_vtep(world):
    (node,) = world.http.get("/nodes").json
    assert node["subnet"] == "10.42.0.0/24"
    assert node["vtep"] == {"ip": "192.0.2.7", "mac": "0e:42:0a:2a:00:00"}


def test_a_service_shows_how_it_is_reached_and_its_spec_round_trips(world):
    body = world.http.put("/services/web", json=WEB).json
    assert (body["endpointMode"], body["vip"], body["publish"]) == (
        "vip", "10.43.0.1", [{"published": 8080, "target": 80, "protocol": "tcp"}])
    spec = body["spec"]
    assert (spec["endpointMode"], spec["overlay"]) == ("vip", True)
    again = world.http.put("/services/web", json=spec)  # GET, change nothing, PUT back: no new version
    assert again.status_code == 200 and again.json["changed"] is False
    listed = world.http.get("/services").json
    assert listed[0]["vip"] == "10.43.0.1"
    dnsrr = world.http.put("/services/web", json={**spec, "endpointMode": "dnsrr"}).json
    assert (dnsrr["vip"], dnsrr["diff"]) == (None, {"changed": ["endpointMode"], "replace": False, "scale": False})


def test_endpoints_list_each_replica_with_its_address_and_whether_it_serves(world):
    world.http.put("/services/web", json=WEB)
    world.deploy()
    world.run("web.0.d1", "10.42.0.2")
    world.run("web.1.d1", "10.42.0.3", health=UNHEALTHY)
    resp = world.http.get("/services/web/endpoints")
    assert resp.status_code == 200
    body = resp.json
    assert (body["service"], body["endpointMode"], body["vip"]) == ("web", "vip", "10.43.0.1")
    assert [(e["task"], e["slot"], e["nodeId"], e["ip"], e["health"], e["serving"]) for e in body["endpoints"]] == [
        ("web.0.d1", 0, "node1", "10.42.0.2", "healthy", True),
        ("web.1.d1", 1, "node1", "10.42.0.3", "unhealthy", False)]
    assert body["endpoints"][0]["ports"] == [{"target": 80, "protocol": "tcp", "published": 8080}]
    tasks = {t["id"]: t["ip"] for t in world.http.get("/tasks?service=web").json}
    assert tasks == {"web.0.d1": "10.42.0.2", "web.1.d1": "10.42.0.3"}
    replicas = world.http.get("/services/web").json["replicas"]
    assert [r["ip"] for r in replicas] == ["10.42.0.2", "10.42.0.3"]
    world.submit(SetNodeStatus(node_id=NODE.id, status="dead"))
    assert [e["serving"] for e in world.http.get("/services/web/endpoints").json["endpoints"]] == [False, False]


def test_endpoints_of_an_unknown_service_are_404_naming_it(world):
    resp = world.http.get("/services/nope/endpoints")
    assert resp.status_code == 404 and resp.json == {"error": "no service nope", "field": "name"}


@pytest.mark.parametrize("publish, field, words", [
    ([{"published": 53, "target": 53, "protocol": "udp"}], "publish[0].published", "53 is reserved (DNS)"),
    ([{"published": 22, "target": 22}], "publish[0].published", "(SSH)"),
    ([{"published": 4789, "target": 80}], "publish[0].published", "VXLAN"),
    ([{"published": 8000, "target": 80}], "publish[0].published", "agent's own API, gossip or Raft port"),
    ([{"published": 8080, "target": 80}, {"published": 8080, "target": 81}], "publish[1].published",
     "already published by publish[0]"),
    ([{"published": 70000, "target": 80}], "publish[0].published", "from 1 to 65535"),
    ([{"published": 8080}], "publish[0].target", "is required"),
    ([{"published": 8080, "target": 80, "protocol": "sctp"}], "publish[0].protocol", "not one of tcp, udp"),
    ([{"published": 8080, "target": 80, "port": 1}], "publish[0].port", "did you mean 'published'"),
    ({"published": 8080, "target": 80}, "publish", "must be a list"),
])
def test_a_bad_publish_is_400_naming_the_field_and_nothing_is_written(world, publish, field, words):
    resp = world.http.put("/services/web", json={**WEB, "publish": publish})
    assert resp.status_code == 400, resp.json
    assert resp.json["field"] == field and words in resp.json["error"]
    assert world.http.get("/services").json == []


@pytest.mark.parametrize("body, field", [
    ({"endpointMode": "ipvs"}, "endpointMode"),
    ({"overlay": "yes"}, "overlay"),
    ({"overlay": False}, "publish"),  # WEB publishes: the ingress needs overlay addresses
])
def test_bad_network_fields_are_400_naming_them(world, body, field):
    resp = world.http.put("/services/web", json={**WEB, **body})
    assert resp.status_code == 400 and resp.json["field"] == field, resp.json


def test_a_port_another_service_publishes_is_a_conflict_naming_it(world):
    world.http.put("/services/web", json=WEB)
    resp = world.http.put("/services/api", json={**WEB, "publish": [{"published": 8080, "target": 9000}]})
    assert resp.status_code == 409 and resp.json["field"] == "publish"
    assert "already published by service web" in resp.json["error"]


def test_a_task_may_stay_off_the_overlay(world):
    resp = world.http.post("/tasks", json={"image": "app:1", "memory": "64M", "overlay": False})
    assert resp.status_code == 201 and resp.json["overlay"] is False and resp.json["ip"] is None
    bad = world.http.post("/tasks", json={"image": "app:1", "memory": "64M", "overlay": 0})
    assert bad.status_code == 400 and bad.json["field"] == "overlay"


def test_while_an_old_node_may_read_the_log_network_fields_are_refused(world):
    old = NodeInfo.from_dict({**NodeInfo("old", "127.0.0.1:8100", "old").to_dict(), "log_version": 1})
    world.submit(RegisterNode(node=old))
    resp = world.http.put("/services/web", json={**WEB, "endpointMode": "dnsrr"})
    assert resp.status_code == 409 and resp.json["field"] == "endpointMode"
    assert "older Orion (log format 1)" in resp.json["error"]
    plain = world.http.put("/services/web", json={"image": "app:1", "memory": "64M"})
    assert plain.status_code == 201  # the defaults are what an old node reads anyway


def test_the_network_answers_are_what_the_document_says(world):
    doc = world.http.get("/v1/openapi.json").json

    def conforms(path: str, method: str, status: str, body: object) -> None:
        answer = doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
        jsonschema.Draft202012Validator({**answer, "components": doc["components"]}).validate(body)

    declared = world.http.put("/services/web", json=WEB)
    conforms("/v1/services/{name}", "put", "201", declared.json)
    world.deploy()
    world.run("web.0.d1", "10.42.0.2")
    conforms("/v1/cluster/network", "get", "200", world.http.get("/v1/cluster/network").json)
    conforms("/v1/services/{name}/endpoints", "get", "200", world.http.get("/v1/services/web/endpoints").json)
    conforms("/v1/services/{name}", "get", "200", world.http.get("/v1/services/web").json)
    conforms("/v1/nodes", "get", "200", world.http.get("/v1/nodes").json)
    conforms("/v1/tasks/{task_id}", "get", "200", world.http.get("/v1/tasks/web.0.d1").json)
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        conforms("/v1/cluster/network", "get", "200", {"settings": None, "leases": [{"index": "0"}], "vips": {}})
