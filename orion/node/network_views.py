"""What this node's network parts are given, read from its Raft replica: pure functions.

The overlay's parts (orion/network/) never read the state machine: they take plain values.
This module turns one read of the replica (:class:`NetworkRead`) into those values:

* :func:`datapath_inputs` — the overlay's settings, this host's lease and its peers' leases
  (:class:`orion.network.datapath.DatapathInputs`), or None while this host has no lease;
* :func:`discovery_view` — services (VIP, endpoint mode, ports), their replicas as endpoints
  (overlay IP, running, health) and the nodes (alive unless the registry says dead or left),
  the one :class:`orion.network.view.DiscoveryView` both DNS and the load balancer read;
* :func:`attachment_for` — whether a task's container joins the overlay, and how.

A lease is keyed by its host: the Docker engine's ID. Agents that drive one engine share its
network, so they share one lease (the loopback demo's three agents); ``holders`` lists them.

:class:`ViewCache` keeps one view per applied Raft index: building a view validates every
address (~80 ms at 9,000 endpoints) while answering from one takes ~15 µs, so DNS and the load
balancer share the view until the next apply (orion/network/view.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from orion.defaults import DNS_SEARCH, NETWORK_BRIDGE, NETWORK_NAME
from orion.domain.model import DESIRED_RUN, NODE_DEAD, NODE_LEFT, RUNNING, NodeInfo, Task
from orion.domain.network import NetworkSettings, SubnetLease
from orion.domain.network import service_ports as declared_ports
from orion.domain.service import HEALTHY, UNHEALTHY, ServiceSpec
from orion.network.datapath import DatapathInputs
from orion.network.overlay import Lease, OverlaySettings
from orion.network.view import DiscoveryView, Endpoint, Node, Service, ServicePort, ViewError
from orion.runtime import NetworkAttachment
from orion.state.services import ServiceRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkRead:
    """One consistent read of what the network parts need (taken under the replica's lock,
    turned into views outside it). ``settings`` None: the cluster has no network yet."""

    settings: NetworkSettings | None
    leases: tuple[SubnetLease, ...]
    services: tuple[ServiceRecord, ...]
    tasks: tuple[Task, ...]
    nodes: tuple[NodeInfo, ...]
    vips: tuple[tuple[str, str | None], ...] = ()  # service -> its VIP (allocated in Raft)


def read_network(machine: Any) -> NetworkRead:
    """The read, for ``store.read`` (``machine``: the replica's StateMachine): its records,
    all frozen values."""
    services = tuple(machine.services.all())
    return NetworkRead(machine.network(), tuple(machine.leases()), services, tuple(machine.tasks()),
                       tuple(machine.nodes()), tuple((r.name, machine.vip(r.name)) for r in services))


def overlay_settings(settings: NetworkSettings) -> OverlaySettings:
    """The Raft settings as the datapath takes them; the device names are every host's own."""
    return OverlaySettings(cluster_cidr=settings.network, vni=settings.vni, port=settings.port, mtu=settings.mtu,
                           bridge=NETWORK_BRIDGE, vxlan=f"orion.{settings.vni}", network_name=NETWORK_NAME)


def as_lease(lease: SubnetLease) -> Lease:
    """A replicated lease as the datapath takes it (its ``node_id`` names the holders)."""
    holders = ",".join(lease.holders) or lease.host
    return Lease(node_id=holders, subnet=IPv4Network(lease.subnet), underlay_ip=IPv4Address(lease.underlay_ip),
                 vtep_mac=lease.vtep_mac)


def own_lease(read: NetworkRead, host: str) -> SubnetLease | None:
    return next((lease for lease in read.leases if lease.host == host), None)


def datapath_inputs(read: NetworkRead, host: str) -> DatapathInputs | None:
    """Settings, this host's lease and every other lease; None until the network is set and
    this host holds a lease (the datapath loop then does nothing: "no lease yet")."""
    mine = own_lease(read, host)
    if read.settings is None or mine is None:
        return None
    peers = tuple(as_lease(lease) for lease in read.leases if lease.host != host)
    return DatapathInputs(overlay_settings(read.settings), as_lease(mine), peers)


def gateway(read: NetworkRead, host: str) -> str | None:
    """This host's bridge gateway (where its DNS server listens), or None without a lease."""
    mine = own_lease(read, host)
    return None if mine is None else str(IPv4Network(mine.subnet).network_address + 1)


def attachment_for(task: Task, read: NetworkRead, host: str) -> NetworkAttachment | None | str:
    """How ``task`` joins the overlay: an attachment, None when it does not (no network in the
    cluster, or the task or its service opted out), or a sentence saying what it waits for
    (this host has no lease yet): the start is retried, the task is not failed."""
    if read.settings is None or not task.spec.overlay:
        return None
    gw = gateway(read, host)
    if gw is None:
        return f"host {host[:12]} has no subnet lease yet"
    return NetworkAttachment(NETWORK_NAME, (gw,), DNS_SEARCH)


# -- discovery -----------------------------------------------------------------------------------

def _health(task: Task, checked: bool) -> bool | None:
    """Whether the replica passes, the API's rule (``orion/api/network.py`` ``serving``): with a
    check, only ``healthy`` passes (a replica still ``starting`` its checks is not sent traffic:
    its server may not listen yet); without one, None (no opinion) unless reported unhealthy."""
    if checked:
        return task.health == HEALTHY
    return False if task.health == UNHEALTHY else None


def service_ports(spec: ServiceSpec) -> tuple[ServicePort, ...]:
    """The ports a service's VIP carries (orion/domain/service.py's rule): every container port
    its replicas declare and every published one, with its ingress port."""
    return tuple(ServicePort(target, protocol, published)  # type: ignore[arg-type]
                 for target, protocol, published in declared_ports(spec.publish, spec.task.ports))


def _service(record: ServiceRecord, vip: str | None) -> Service | None:
    spec = record.spec
    if not spec.overlay or (spec.endpoint_mode == "vip" and vip is None):
        return None  # off the overlay, or its VIP not given yet (declared before InitNetwork)
    try:
        return Service(record.name, spec.endpoint_mode, vip, service_ports(spec))  # type: ignore[arg-type]
    except ViewError as exc:  # e.g. a vip service whose VIP is not allocated: not served
        log.warning("service %s left out of discovery: %s", record.name, exc)
        return None


def _endpoint(task: Task, port: int | None, checked: bool) -> Endpoint:
    ip = task.ip or None
    running = task.state == RUNNING and task.desired == DESIRED_RUN
    return Endpoint(task.id, task.service, task.slot, task.node_id or "", ip, port, running, _health(task, checked))


def discovery_view(read: NetworkRead, index: int) -> DiscoveryView:
    """Services in the overlay, their replicas and the nodes, at Raft index ``index``."""
    vips = dict(read.vips)
    services = tuple(s for s in (_service(r, vips.get(r.name)) for r in read.services) if s is not None)
    first_port = {s.name: (s.ports[0].target if s.ports else None) for s in services}
    checked = {r.name: r.spec.health_check is not None for r in read.services}
    endpoints = tuple(_endpoint(t, first_port[t.service], checked[t.service]) for t in read.tasks
                      if t.service in first_port and t.node_id)
    gateways = {holder: str(IPv4Network(lease.subnet).network_address + 1)
                for lease in read.leases for holder in lease.holders}
    nodes = tuple(Node(n.id, n.status not in (NODE_DEAD, NODE_LEFT), gateways.get(n.id)) for n in read.nodes)
    return DiscoveryView(services, endpoints, nodes, serial=index)


def serving_counts(view: DiscoveryView) -> dict[str, int]:
    """Serving replicas per service (``orion_service_endpoints{service}``)."""
    return {s.name: len(view.serving(s.name)) for s in view.services}


class ViewCache:
    """One :class:`DiscoveryView` per applied index, shared by every reader until the next.

    ``read()`` returns (:class:`NetworkRead`, index) from the replica; ``noticed(index)`` is
    the replica's apply listener. A reader between two applies gets the same object without
    touching the replica; the first after an apply reads once and builds outside the lock.
    """

    def __init__(self, read: Callable[[], tuple[NetworkRead, int]]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._latest = -1  # the newest index the replica announced
        self._index = -2  # the index the cached view was read at
        self._view: DiscoveryView | None = None
        self._network: NetworkRead | None = None

    def noticed(self, index: int) -> None:
        self._latest = max(self._latest, index)

    def network(self) -> NetworkRead:
        """The read behind the current view (leases, settings), refreshed as the view is."""
        self.view()
        assert self._network is not None
        return self._network

    def view(self) -> DiscoveryView:
        with self._lock:
            if self._view is not None and self._index >= self._latest:
                return self._view
            read, index = self._read()
            self._network = read
            self._view = discovery_view(read, index)
            self._index = max(index, self._latest) if index >= self._latest else index
            return self._view
