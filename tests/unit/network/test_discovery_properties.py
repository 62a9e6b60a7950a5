"""Hypothesis properties of the orion. zone: what it must never answer, whatever the view."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from orion.network.discovery import A, Answer, Outcome, Srv, resolve
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort

NODE_IDS = ["n1", "n2", "n3", "n4"]


@st.composite
def views(draw) -> DiscoveryView:
    alive = draw(st.lists(st.booleans(), min_size=len(NODE_IDS), max_size=len(NODE_IDS)))
    nodes = tuple(Node(n, ok, f"10.42.{i}.1") for i, (n, ok) in enumerate(zip(NODE_IDS, alive, strict=True)))
    services = []
    endpoints = []
    for s in range(draw(st.integers(1, 3))):
        mode = draw(st.sampled_from(["vip", "dnsrr"]))
        services.append(Service(f"svc{s}", mode, f"10.43.0.{s + 1}" if mode == "vip" else None,
                                (ServicePort(80 + s),)))
        for slot in range(draw(st.integers(0, 8))):
            endpoints.append(Endpoint(
                task_id=f"svc{s}-{slot}", service=f"svc{s}", slot=slot,
                node_id=draw(st.sampled_from([*NODE_IDS, "gone"])),
                ip=draw(st.one_of(st.none(), st.just(f"10.42.{s}.{slot + 2}"))),
                port=80 + s, running=draw(st.booleans()),
                healthy=draw(st.sampled_from([None, True, False]))))
    return DiscoveryView(tuple(services), tuple(endpoints), nodes)


def eligible(view: DiscoveryView, endpoint: Endpoint) -> bool:
    """The rule, written out again by definition (not with the view's helpers)."""
    node = next((n for n in view.nodes if n.node_id == endpoint.node_id), None)
    return (endpoint.running and endpoint.ip is not None and endpoint.healthy is not False
            and node is not None and node.alive)


@settings(max_examples=300)
@given(views(), st.integers(0, 2**32))
def test_never_answers_an_unhealthy_stopped_or_dead_node_endpoint(view, seed):
    for service in view.services:
        for qtype in ("A", "SRV"):
            result = resolve(view, f"{service.name}.service.orion", qtype, random.Random(seed))
            assert isinstance(result, Answer)
            answered = {r.ip for r in (*result.answers, *result.additional) if isinstance(r, A)}
            mine = [e for e in view.endpoints if e.service == service.name]
            if service.mode == "vip":
                continue  # the next property
            expected = {e.ip for e in mine if eligible(view, e)}
            assert answered == expected if qtype == "A" else answered <= expected
            if not expected:
                assert result.outcome is Outcome.NODATA


@settings(max_examples=200)
@given(views(), st.integers(0, 2**32))
def test_a_vip_service_always_answers_exactly_its_vip(view, seed):
    for service in view.services:
        if service.mode != "vip":
            continue
        result = resolve(view, f"{service.name}.service.orion", "A", random.Random(seed))
        assert isinstance(result, Answer)
        assert result.answers == (A(f"{service.name}.service.orion.", service.vip),)
        srv = resolve(view, f"{service.name}.service.orion", "SRV", random.Random(seed))
        assert isinstance(srv, Answer)
        assert {r.target for r in srv.answers if isinstance(r, Srv)} == {f"{service.name}.service.orion."}
        assert {r.ip for r in srv.additional if isinstance(r, A)} == {service.vip}


@settings(max_examples=50)
@given(st.integers(2, 6))
def test_shuffling_covers_all_endpoints_in_every_position(n):
    view = DiscoveryView(
        services=(Service("web", "dnsrr"),),
        endpoints=tuple(Endpoint(f"w{i}", "web", i, "n1", f"10.42.1.{i + 2}") for i in range(n)),
        nodes=(Node("n1"),))
    firsts = set()
    lasts = set()
    for seed in range(40 * n):
        result = resolve(view, "web.service.orion", "A", random.Random(seed))
        assert isinstance(result, Answer)
        ips = [r.ip for r in result.answers]
        assert sorted(ips) == sorted(e.ip for e in view.endpoints)  # every one, once
        firsts.add(ips[0])
        lasts.add(ips[-1])
    assert firsts == lasts == {e.ip for e in view.endpoints}
