"""The agent's overlay parts, composed: lease, datapath, load balancer, DNS, their metrics.

Started with the agent (``Agent.start``), in two steps:

1. once the host key (the engine's ID) is known: the DNS keeper (the server on the bridge
   gateway), answering from the replica as it is; once the underlay's MTU is measured and
   this replica has caught up (``Store.ready``: it has applied what the leader had committed
   when it first heard from it, so it holds every lease a peer has): the datapath loop (Docker
   network ``orion``, Orion's nft table, VXLAN device, peers) and the load balancer (``ip
   orion-lb``). Every Raft apply wakes all three, and each also runs on its period. They
   read leases, never write one, so they need no
   registration: an agent that restarts puts a flushed table back as soon as its replica has
   caught up, without waiting for its registration round. Never earlier: a replica still
   replaying an old journal lacks newer peers' leases, and the datapath would remove their
   routes;
2. once the node has registered (its lease names a registered node): the lease loop proposes
   the network (as leader, when none is set) and acquires this host's lease
   (orion/node/lease.py); a lease refused for the underlay's MTU ends the agent with exit 2
   (orion/agent/fatal.py).

All of them read one :class:`~orion.node.network_views.ViewCache`, rebuilt once per apply.
Stopping ends their threads and closes the DNS socket; nothing in the kernel or the engine
is torn down: the containers, the datapath and the load balancer keep working while the
agent is away, and the next agent finds them converged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker

if TYPE_CHECKING:
    from orion.network.kernel import NetlinkKernel

from orion.agent.fatal import end_agent
from orion.config import AgentConfig
from orion.defaults import DNS_BIND_RETRY, MAX_AUTO_MTU, VXLAN_OVERHEAD
from orion.domain.model import Task
from orion.domain.network import NetworkSettings
from orion.metrics.network import NetworkMetrics
from orion.network.bridge_network import DockerNetworks
from orion.network.datapath_loop import DatapathLoop
from orion.network.dns_server import DnsServer
from orion.network.loadbalance import LbHost
from orion.network.loadbalance_loop import LoadBalanceLoop, Nft
from orion.network.nft import NftFirewall
from orion.node.dns_keeper import DnsKeeper
from orion.node.lease import HostFacts
from orion.node.lease_loop import LeaseLoop
from orion.node.network_views import (
    ViewCache,
    attachment_for,
    datapath_inputs,
    gateway,
    overlay_settings,
    own_lease,
    read_network,
    serving_counts,
)
from orion.runtime import NetworkAttachment, RuntimeFailure
from orion.runtime.docker import DockerRuntime
from orion.store.port import Store

log = logging.getLogger(__name__)


def proposal(cfg: AgentConfig, underlay_mtu: int) -> NetworkSettings:
    """The settings this node proposes if it is the one to initialize the network."""
    mtu = cfg.network_mtu or min(underlay_mtu - VXLAN_OVERHEAD, MAX_AUTO_MTU)
    return NetworkSettings(cidr=cfg.network_cidr, host_prefix=cfg.network_host_prefix, vni=cfg.network_vni,
                           port=cfg.network_port, mtu=mtu, service_cidr=cfg.service_cidr)


@dataclass
class NetworkParts:
    cfg: AgentConfig
    store: Store
    runtime: DockerRuntime
    metrics: NetworkMetrics | None = None
    cache: ViewCache = field(init=False)
    host: str | None = None  # the engine's ID, once known
    lease: LeaseLoop | None = None
    datapath: DatapathLoop | None = None
    balancer: LoadBalanceLoop | None = None
    dns: DnsKeeper | None = None

    def __post_init__(self) -> None:
        self.cache = ViewCache(lambda: self.store.read(read_network))
        self.store.add_listener(self._on_apply)

    def _on_apply(self, index: int) -> None:
        """Runs on the apply path: only notes and wakes."""
        self.cache.noticed(index)
        for part in (self.datapath, self.balancer):
            if part is not None:
                part.wake()
        if self.dns is not None:
            self.dns.wake.set()

    # -- what other parts read ------------------------------------------------------------------
    def attachment(self, task: Task) -> NetworkAttachment | None | str:
        """The reconciler's: how ``task`` joins the overlay (orion/node/network_views.py)."""
        if self.host is None:
            read = self.cache.network()
            return None if read.settings is None or not task.spec.overlay else "the engine's ID is not known yet"
        return attachment_for(task, self.cache.network(), self.host)

    def peers(self) -> int | None:
        read = self.cache.network()
        if self.host is None or own_lease(read, self.host) is None:
            return None
        return sum(1 for lease in read.leases if lease.host != self.host)

    def endpoints(self) -> dict[str, int]:
        return serving_counts(self.cache.view())

    # -- life -----------------------------------------------------------------------------------
    def run(self, stop: threading.Event, spawn: Callable[[str, Callable[[], None]], None],
            registered: threading.Event) -> None:
        """Measure the host; start DNS at once, the datapath and load balancer once the replica
        has caught up, and the lease loop once the node has registered (in the caller's thread)."""
        cfg = self.cfg
        while self.host is None and not stop.is_set():
            try:
                self.host = self.runtime.engine_id()
            except RuntimeFailure as exc:
                log.warning("network waits for the engine: %s", exc)
                stop.wait(1.0)
        if stop.is_set():
            return
        host = self.host
        self._start_dns(host, spawn, stop)
        # pyroute2 is imported here, in this thread, not with the agent: it is a fifth of the
        # agent's import time, and /health answers once the imports are done (issue #14).
        from orion.network.kernel import interface_mtu  # noqa: PLC0415
        mtu = interface_mtu(cfg.advertise)
        if mtu is None:
            end_agent(cfg.data_dir, f"network: no interface of this host holds the advertise address "
                      f"{cfg.advertise}, so its underlay MTU is unknown; set --advertise to a local address "
                      "or run with --no-network")
            return
        while not self.store.ready():
            if stop.wait(0.02):
                return
        self._start_local(host, spawn, stop)
        log.info("network: host %s, underlay %s mtu %d", host[:12], cfg.advertise, mtu)
        while not registered.wait(0.1):
            if stop.is_set():
                return
        facts = HostFacts(cfg.id, host, cfg.advertise, mtu)
        self.lease = LeaseLoop(self.store, facts, proposal(cfg, mtu), interval=cfg.datapath_interval,
                               write_timeout=cfg.write_timeout,
                               on_refused=lambda line: end_agent(cfg.data_dir, line))
        spawn("lease", lambda: self.lease.run_forever(stop))

    def _start_dns(self, host: str, spawn: Callable[[str, Callable[[], None]], None],
                   stop: threading.Event) -> None:
        """DNS on the bridge gateway, from whatever the replica holds now: after an agent
        restart, the containers of this host resolve names again as soon as the engine answered,
        without waiting for the replica to catch up (an answer a moment old, TTL 5 s, beats none:
        a resolver that gets no answer retries only after seconds). It writes nothing."""
        cfg = self.cfg
        on_query = self.metrics.dns_query if self.metrics is not None else None
        self.dns = DnsKeeper(lambda: gateway(self.cache.network(), host),
                             lambda gw: DnsServer(gw, cfg.dns_port, self.cache.view, Path(cfg.dns_resolv_conf),
                                                  on_query=on_query),
                             DNS_BIND_RETRY)
        spawn("dns", lambda: self.dns.run_forever(stop))

    def _start_local(self, host: str, spawn: Callable[[str, Callable[[], None]], None],
                     stop: threading.Event) -> None:
        """The parts that keep this host's kernel in step with the replica (caught up: a stale one
        would remove newer peers' routes and backends)."""
        cfg = self.cfg

        def inputs():
            return datapath_inputs(self.cache.network(), host)

        kernel = _LazyKernel(self.cache)
        client = docker.DockerClient(base_url=cfg.docker_host, timeout=30)
        self.datapath = DatapathLoop(inputs, kernel, NftFirewall(), DockerNetworks(client),
                                     interval_s=cfg.datapath_interval)
        self.datapath.start()

        def lb_host() -> LbHost:
            mine = own_lease(self.cache.network(), host)
            return LbHost(str(mine.subnet) if mine is not None else None)

        self.balancer = LoadBalanceLoop(self.cache.view, lb_host, Nft(), interval=cfg.datapath_interval,
                                        verify_every=cfg.datapath_interval)
        self.balancer.start()

    def stop(self) -> None:
        """End the threads; the kernel's datapath and load balancer stay as they are."""
        for part in (self.datapath, self.balancer):
            if part is not None:
                part.stop()
        if self.dns is not None:
            self.dns.wake.set()


class _LazyKernel:
    """The netlink adapter for the settings Raft holds: built on first use (the settings arrive
    with InitNetwork) and again if they ever differ."""

    def __init__(self, cache: ViewCache) -> None:
        self._cache = cache
        self._kernel: NetlinkKernel | None = None

    def _current(self) -> NetlinkKernel:
        settings = self._cache.network().settings
        if settings is None:
            raise RuntimeError("the cluster has no network settings yet")
        wanted = overlay_settings(settings)
        if self._kernel is None or self._kernel.settings != wanted:
            from orion.network.kernel import NetlinkKernel  # noqa: PLC0415 - see NetworkParts.run
            self._kernel = NetlinkKernel(wanted)
        return self._kernel

    def observe(self):
        return self._current().observe()

    def apply(self, change) -> None:
        self._current().apply(change)
