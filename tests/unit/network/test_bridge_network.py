"""The decision about the Docker network ``orion``."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from orion.network.bridge_network import (
    CreateNetwork,
    NetworkConflict,
    ObservedNetwork,
    RecreateNetwork,
    decide,
    network_spec,
)
from orion.network.overlay import OverlaySettings, lease_of

SETTINGS = OverlaySettings(cluster_cidr=IPv4Network("10.42.0.0/16"), vni=1, port=4789, mtu=1450,
                           bridge="orion0", vxlan="orion.1")
SPEC = network_spec(SETTINGS, lease_of("a", "10.42.3.0/24", "10.77.0.1"))


def observed(subnet: str = "10.42.3.0/24", gateway: str = "10.42.3.1", containers: int = 0, **options: str):
    opts = dict(SPEC.options) | options
    return ObservedNetwork("id1", "bridge", IPv4Network(subnet), IPv4Address(gateway), tuple(sorted(opts.items())),
                           containers)


def test_the_spec_is_the_lease_s_subnet_gateway_dot_one_our_bridge_and_mtu_without_docker_masquerade():
    assert (str(SPEC.subnet), str(SPEC.gateway)) == ("10.42.3.0/24", "10.42.3.1")
    assert dict(SPEC.options) == {"com.docker.network.bridge.name": "orion0",
                                  "com.docker.network.driver.mtu": "1450",
                                  "com.docker.network.bridge.enable_ip_masquerade": "false"}


def test_missing_is_created_and_right_is_left_alone():
    assert decide(SPEC, None) == CreateNetwork(SPEC)
    assert decide(SPEC, observed()) is None


def test_another_subnet_without_containers_is_recreated():
    d = decide(SPEC, observed("10.42.9.0/24", "10.42.9.1"))
    assert isinstance(d, RecreateNetwork) and "subnet 10.42.9.0/24" in d.reason


def test_another_subnet_with_containers_is_a_conflict_left_alone():
    d = decide(SPEC, observed("10.42.9.0/24", "10.42.9.1", containers=2))
    assert isinstance(d, NetworkConflict) and "2 container(s) attached" in str(d)


def test_docker_masquerade_on_or_another_mtu_counts_as_wrong():
    d = decide(SPEC, observed(**{"com.docker.network.bridge.enable_ip_masquerade": "true"}))
    assert isinstance(d, RecreateNetwork) and "enable_ip_masquerade='true'" in d.reason
    assert isinstance(decide(SPEC, observed(**{"com.docker.network.driver.mtu": "1500"})), RecreateNetwork)
