"""What the orion. zone answers, name by name (orion/network/discovery.py)."""

from __future__ import annotations

import random

import pytest

from orion.network.discovery import A, Answer, Forward, Outcome, Soa, Srv, resolve
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort, ViewError

WEB = Service("web", "dnsrr", None, (ServicePort(80),))
API = Service("api", "vip", "10.43.0.7", (ServicePort(8080), ServicePort(9090, published=9090)))
NODES = (Node("n1", True, "10.42.1.1"), Node("n2", True, "10.42.2.1"), Node("n3", False, "10.42.3.1"))


def ep(task: str, slot: int, node: str, ip: str, *, service: str = "web", running: bool = True,
       healthy: bool | None = None, port: int | None = 80) -> Endpoint:
    return Endpoint(task, service, slot, node, ip, port, running, healthy)


VIEW = DiscoveryView(
    services=(WEB, API),
    endpoints=(
        ep("web-1", 1, "n1", "10.42.1.2", healthy=True),
        ep("web-2", 2, "n2", "10.42.2.2"),  # no health check: serves
        ep("web-3", 3, "n2", "10.42.2.3", healthy=False),
        ep("web-4", 4, "n3", "10.42.3.2", healthy=True),  # its node is dead
        ep("web-5", 5, "n1", "10.42.1.5", running=False),
        ep("api-1", 1, "n1", "10.42.1.9", service="api", port=8080),
    ),
    nodes=NODES,
    serial=42,
)


def ask(name: str, qtype: str = "A", view: DiscoveryView = VIEW, seed: int = 0) -> Answer:
    result = resolve(view, name, qtype, random.Random(seed))
    assert isinstance(result, Answer)
    return result


def test_a_dnsrr_service_answers_its_serving_replicas_only():
    answer = ask("web.service.orion.")
    assert answer.outcome is Outcome.ANSWER
    assert sorted(r.ip for r in answer.answers) == ["10.42.1.2", "10.42.2.2"]
    assert all(r.ttl == 5 and r.name == "web.service.orion." for r in answer.answers)


def test_a_vip_service_answers_its_vip_whatever_its_replicas_do():
    assert ask("api.service.orion").answers == (A("api.service.orion.", "10.43.0.7"),)
    lonely = DiscoveryView(services=(API,), nodes=NODES)
    assert ask("api.service.orion", view=lonely).answers == (A("api.service.orion.", "10.43.0.7"),)


def test_names_are_case_insensitive_and_the_trailing_dot_optional():
    assert ask("WEB.Service.ORION").answers == ask("web.service.orion.").answers


def test_dnsrr_srv_follows_consul_one_record_per_replica_with_the_target_in_additional():
    answer = ask("web.service.orion", "SRV")
    assert sorted(answer.answers, key=lambda r: r.target) == [
        Srv("web.service.orion.", 80, "web-1.task.orion."), Srv("web.service.orion.", 80, "web-2.task.orion.")]
    assert sorted(answer.additional, key=lambda r: r.name) == [
        A("web-1.task.orion.", "10.42.1.2"), A("web-2.task.orion.", "10.42.2.2")]


def test_vip_srv_points_every_port_at_the_vip():
    answer = ask("api.service.orion", "SRV")
    assert answer.answers == (Srv("api.service.orion.", 8080, "api.service.orion."),
                              Srv("api.service.orion.", 9090, "api.service.orion."))
    assert answer.additional == (A("api.service.orion.", "10.43.0.7"),)


def test_task_names_answer_running_tasks_on_live_nodes_even_when_unhealthy():
    assert ask("web-3.task.orion").answers == (A("web-3.task.orion.", "10.42.2.3"),)
    assert ask("web-5.task.orion").outcome is Outcome.NODATA  # stopped: its address may be reused
    assert ask("web-4.task.orion").outcome is Outcome.NODATA  # on a dead node


def test_node_names_answer_the_nodes_gateway():
    assert ask("n2.node.orion").answers == (A("n2.node.orion.", "10.42.2.1"),)
    assert ask("n3.node.orion").answers == (A("n3.node.orion.", "10.42.3.1"),)


def test_a_missing_name_is_nxdomain_with_the_soa_minimum_five():
    for name in ("nope.service.orion", "nope.task.orion", "nope.node.orion", "x.web.service.orion",
                 "_80._tcp.web.service.orion", "web.pod.orion", "a.b.c.d.orion"):
        answer = ask(name)
        assert answer.outcome is Outcome.NXDOMAIN, name
        assert answer.answers == ()
        assert answer.authority == (Soa(serial=42),)
        assert answer.authority[0].minimum == 5


def test_an_existing_name_without_that_type_is_nodata_with_the_soa():
    for name, qtype in (("web.service.orion", "AAAA"), ("web-1.task.orion", "MX"), ("n1.node.orion", "SRV"),
                        ("service.orion", "A"), ("orion", "A"), ("task.orion", "SRV")):
        answer = ask(name, qtype)
        assert answer.outcome is Outcome.NODATA, (name, qtype)
        assert answer.authority == (Soa(serial=42),)


def test_the_apex_answers_its_soa():
    assert ask("orion.", "SOA").answers == (Soa(serial=42),)


def test_a_dnsrr_service_with_nobody_serving_is_nodata_not_nxdomain():
    view = DiscoveryView(services=(WEB,), endpoints=(ep("web-1", 1, "n1", "10.42.1.2", healthy=False),),
                         nodes=NODES)
    assert ask("web.service.orion", view=view).outcome is Outcome.NODATA


def test_names_outside_the_zone_are_forwarded():
    for name in ("example.com.", "orion.example.com", "notorion.", "."):
        assert resolve(VIEW, name, "A", random.Random(0)) == Forward(name)


def test_an_endpoint_on_a_node_the_view_does_not_know_is_not_answered():
    view = DiscoveryView(services=(WEB,), endpoints=(ep("web-1", 1, "ghost", "10.42.9.2"),), nodes=NODES)
    assert ask("web.service.orion", view=view).outcome is Outcome.NODATA


@pytest.mark.parametrize("build, message", [
    (lambda: Service("s", "vip", None), "has no VIP"),
    (lambda: Service("s", "anycast", None), "endpoint mode"),
    (lambda: Service("s", "vip", "10.43.0.300"), "not an IPv4 address"),
    (lambda: ServicePort(0), "outside 1..65535"),
    (lambda: ServicePort(80, "sctp"), "protocol"),
    (lambda: Endpoint("t", "s", 1, "n", "fe80::1"), "not an IPv4 address"),
    (lambda: DiscoveryView(services=(WEB, Service("Web", "dnsrr"))), "unique ignoring case: web"),
])
def test_a_view_that_cannot_be_right_is_refused_with_the_field_named(build, message):
    with pytest.raises(ViewError, match=message):
        build()
