"""The DNS keeper with real servers on loopback: one of two agents sharing an address binds
it, the other keeps trying and takes over once the first stops; the server follows the
gateway when the lease moves."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import dns.message
import dns.query

from orion.network.dns_server import DnsServer
from orion.network.view import DiscoveryView, Node
from orion.node.dns_keeper import DnsKeeper

VIEW = DiscoveryView(nodes=(Node("n1", True, "10.42.1.1"),), serial=1)


def free_port() -> int:
    """A port free for both UDP and TCP on loopback (the server binds both): a UDP-free port may
    be a busy TCP one on a shared machine."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp, socket.socket() as tcp:
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def keeper(gateway: dict, port: int, tmp_path: Path) -> DnsKeeper:
    (tmp_path / "resolv.conf").write_text("")
    return DnsKeeper(lambda: gateway["ip"], lambda gw: DnsServer(gw, port, lambda: VIEW, tmp_path / "resolv.conf"),
                     retry=0.05)


def answers(address: str, port: int) -> bool:
    reply = dns.query.udp(dns.message.make_query("n1.node.orion", "A"), address, port=port, timeout=2)
    return any(rd.address == "10.42.1.1" for rrset in reply.answer for rd in rrset)


def test_no_lease_no_server_then_it_binds_the_gateway(tmp_path):
    gateway: dict = {"ip": None}
    k = keeper(gateway, free_port(), tmp_path)
    assert k.run_once() is None and k.serving is None
    gateway["ip"] = "127.0.0.1"
    assert k.run_once().startswith("DNS serving on 127.0.0.1:")
    assert k.serving == "127.0.0.1"
    stop = threading.Event()
    stop.set()
    k.run_forever(stop)  # a stopped keeper closes its server
    assert k.serving is None


def test_of_two_agents_on_one_address_one_serves_and_the_other_takes_over(tmp_path):
    port, gateway = free_port(), {"ip": "127.0.0.1"}
    first, second = keeper(gateway, port, tmp_path), keeper(gateway, port, tmp_path)
    assert first.run_once().startswith("DNS serving")
    taken = second.run_once()
    assert taken is not None and "not bound" in taken and second.serving is None
    assert second.run_once() is None  # said once per cause, not every retry
    assert answers("127.0.0.1", port)
    stop_first, stop_second = threading.Event(), threading.Event()
    stop_first.set()
    first.run_forever(stop_first)  # the serving agent stops
    runner = threading.Thread(target=second.run_forever, args=(stop_second,))
    runner.start()
    try:
        for _ in range(100):
            if second.serving:
                break
            stop_second.wait(0.02)
        assert second.serving == "127.0.0.1"
        assert answers("127.0.0.1", port)
    finally:
        stop_second.set()
        second.wake.set()
        runner.join(5)


def test_the_server_follows_the_gateway(tmp_path):
    port, gateway = free_port(), {"ip": "127.0.0.1"}
    k = keeper(gateway, port, tmp_path)
    k.run_once()
    gateway["ip"] = "127.0.0.2"
    assert k.run_once().startswith("DNS serving on 127.0.0.2:")
    assert answers("127.0.0.2", port)
    stop = threading.Event()
    stop.set()
    k.run_forever(stop)
