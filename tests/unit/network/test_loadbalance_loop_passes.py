"""The load balancer's loop, pass by pass, against an in-memory kernel table (the
real nft is exercised in tests/integration/test_loadbalance_netlab.py)."""

from __future__ import annotations

import re
from dataclasses import replace

from orion.network.loadbalance import LbHost
from orion.network.loadbalance_loop import LbPass, LoadBalanceLoop, NftError
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort


class MemoryNft:
    """Holds the last applied script as the kernel would hold the table."""

    def __init__(self) -> None:
        self.table: str | None = None
        self.applies = 0
        self.reads = 0
        self.refuse: str | None = None

    def apply(self, script: str) -> None:
        if self.refuse:
            raise NftError(self.refuse)
        self.applies += 1
        self.table = script

    def digest(self) -> str | None:
        self.reads += 1
        match = re.search(r'comment "orion-lb ([0-9a-f]+)"', self.table or "")
        return match.group(1) if match else None


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


VIEW = DiscoveryView((Service("web", "vip", "10.43.0.5", (ServicePort(80),)),),
                     (Endpoint("web-1", "web", 1, "n1", "10.42.1.11"), Endpoint("web-2", "web", 2, "n1", "10.42.1.12")),
                     (Node("n1"),))


def make(view_holder: list[DiscoveryView], nft: MemoryNft, clock: Clock) -> LoadBalanceLoop:
    return LoadBalanceLoop(lambda: view_holder[0], lambda: LbHost("10.42.1.0/24"), nft,
                           verify_every=5.0, clock=clock)


def test_the_first_pass_applies_and_an_unchanged_view_applies_nothing():
    nft, clock, views = MemoryNft(), Clock(), [VIEW]
    loop = make(views, nft, clock)
    first = loop.run_once()
    assert first.applied and first.frontends == 1 and first.backends == 2
    assert first.sentence() == f"applied orion-lb {first.digest}: 1 frontends, 2 backends"
    for _ in range(5):
        clock.now += 1
        assert loop.run_once() == LbPass(False, first.digest, 1, 2)
    assert nft.applies == 1
    assert nft.reads == 2  # at start and once verify_every had passed


def test_a_changed_view_is_applied_on_the_next_pass():
    nft, clock, views = MemoryNft(), Clock(), [VIEW]
    loop = make(views, nft, clock)
    loop.run_once()
    views[0] = replace(VIEW, endpoints=VIEW.endpoints[:1])
    result = loop.run_once()
    assert result.applied and result.backends == 1 and "10.42.1.12" not in (nft.table or "")


def test_a_table_deleted_behind_the_loops_back_is_rebuilt_once_verified():
    nft, clock, views = MemoryNft(), Clock(), [VIEW]
    loop = make(views, nft, clock)
    loop.run_once()
    nft.table = None  # someone ran `nft delete table ip orion-lb`
    clock.now += 1
    assert not loop.run_once().applied  # trusted until the next verification
    clock.now += 5
    assert loop.run_once().applied and nft.table is not None


def test_a_restarted_agent_finds_its_table_and_leaves_it_alone():
    nft, views = MemoryNft(), [VIEW]
    make(views, nft, Clock()).run_once()
    again = make(views, nft, Clock()).run_once()
    assert not again.applied and nft.applies == 1


def test_a_refused_script_is_an_error_pass_and_is_retried():
    nft, clock, views = MemoryNft(), Clock(), [VIEW]
    loop = make(views, nft, clock)
    nft.refuse = "Error: syntax error"
    failed = loop.run_once()
    assert not failed.applied and failed.error == "Error: syntax error"
    assert failed.sentence() == "load balancer not updated: Error: syntax error"
    nft.refuse = None
    assert loop.run_once().applied


def test_an_unreadable_view_keeps_the_kernels_table():
    nft, clock, views = MemoryNft(), Clock(), [VIEW]
    loop = LoadBalanceLoop(lambda: views[0] if views else 1 / 0, lambda: LbHost(None), nft,
                           clock=clock)
    loop.run_once()
    views.clear()
    result = loop.run_once()
    assert result.error is not None and result.error.startswith("no view: division by zero")
    assert nft.applies == 1 and nft.table is not None


def test_a_vip_without_backends_is_named_in_the_sentence():
    nft, views = MemoryNft(), [replace(VIEW, endpoints=())]
    result = make(views, nft, Clock()).run_once()
    assert result.sentence().endswith("; no backend for web tcp/80")
