"""A client reaches a service by its name: Orion's DNS server on its host's bridge
gateway answers ``web.service.orion``, the host's load balancer carries the
connection to a replica on the other host. The client resolves with glibc (its
namespace's resolv.conf names the gateway), as a container would."""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pytest
from lb_lab import BACKENDS, SUBNETS, Lab, missing_prerequisites, remove_leftovers

from orion.network.loadbalance import LbHost
from orion.network.loadbalance_loop import LoadBalanceLoop, Nft
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort

pytestmark = [pytest.mark.netlab, pytest.mark.skipif(missing_prerequisites() is not None,
                                                     reason=missing_prerequisites() or "")]

SERVER = str(Path(__file__).with_name("lab_dns_server.py"))
GATEWAY_B = "10.42.2.1"
NODES = (Node("hA", True, "10.42.1.1"), Node("hB", True, "10.42.2.1"))


def view(mode: str, unhealthy: tuple[str, ...] = ()) -> DiscoveryView:
    web = Service("web", mode, "10.43.0.20" if mode == "vip" else None, (ServicePort(80),))
    endpoints = tuple(Endpoint(f"web-{name}", "web", i, "hA", ip, 80, True, name not in unhealthy)
                      for i, (name, ip) in enumerate(sorted(BACKENDS.items()), start=1))
    return DiscoveryView((web,), endpoints, NODES, serial=1)


def write_view(path: Path, current: DiscoveryView) -> None:
    data = {"services": [asdict(s) for s in current.services], "endpoints": [asdict(e) for e in current.endpoints],
            "nodes": [asdict(n) for n in current.nodes], "serial": current.serial}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    remove_leftovers()
    lab = Lab()
    work = tmp_path_factory.mktemp("named")
    try:
        lab.build()
        view_file = work / "view.json"
        write_view(view_file, view("vip"))
        (work / "resolv.conf").write_text("")  # nothing outside the zone in this lab
        lab.spawn("hB", sys.executable, SERVER, GATEWAY_B, str(view_file), str(work / "resolv.conf"))
        lab.use_resolver("cB", GATEWAY_B, "orion")
        yield lab, view_file
    finally:
        lab.destroy()


def apply(lab: Lab, view_file: Path, current: DiscoveryView) -> None:
    write_view(view_file, current)
    loop = LoadBalanceLoop(lambda: current, lambda: LbHost(SUBNETS["hB"]), Nft(lab.prefix("hB")))
    assert loop.run_once().error is None


def test_a_client_reaches_every_replica_through_the_name_and_the_vip(named):
    lab, view_file = named
    apply(lab, view_file, view("vip"))
    answers = Counter(lab.get("cB", "http://web.service.orion", 60))
    assert set(answers) == set(BACKENDS), answers
    short = Counter(lab.get("cB", "http://web.service", 15))  # the search domain
    assert set(short) <= set(BACKENDS) and sum(short.values()) == 15


def test_in_dnsrr_mode_the_name_spreads_clients_over_the_replicas_addresses(named):
    lab, view_file = named
    apply(lab, view_file, view("dnsrr"))
    answers = Counter(lab.get("cB", "http://web.service.orion", 60))
    assert set(answers) == set(BACKENDS), answers


def test_an_unhealthy_replica_leaves_the_name_at_the_next_query(named):
    lab, view_file = named
    apply(lab, view_file, view("dnsrr", unhealthy=("b2",)))
    answers = Counter(lab.get("cB", "http://web.service.orion", 40))
    assert set(answers) == {"b1", "b3"}, answers


def test_the_server_binds_the_gateway_before_the_bridge_has_it_and_answers_once_it_does(named, tmp_path):
    """The agent may start before the datapath creates the bridge (IP_FREEBIND)."""
    lab, view_file = named
    future_gateway = "10.42.1.53"
    (tmp_path / "resolv.conf").write_text("")
    lab.spawn("hA", sys.executable, SERVER, future_gateway, str(view_file), str(tmp_path / "resolv.conf"))
    lab.use_resolver("cA", future_gateway, "orion")
    assert lab.resolve("cA", "web-b1.task.orion")[0].startswith("error")
    lab.sh("hA", "ip", "addr", "add", f"{future_gateway}/32", "dev", "orion0")
    assert lab.resolve("cA", "web-b1.task.orion") == ["10.42.1.11"]
