"""The overlay network inside the replicated state machine: its settings, the hosts' subnet
leases and the services' VIPs (docs/network-leases.md).

Split from ``orion/state/machine.py``: the network's commands are handled here
(``@handles``), and the machine's ``apply`` calls this registry around every other command
(:meth:`NetworkRegistry.check` before, :meth:`NetworkRegistry.follow` after it applied), so it
follows those that concern it (a holder that leaves; a service declared, rolled back, reverted
or deleted) without wrapping their handlers. Deterministic like the rest of the machine:
every subnet and VIP is chosen inside the apply, so every replica chooses the same and no
client retries a compare-and-swap (flannel's etcd loop); no clock, so "not reused for
a while" is an order, not a time (``pool.py``).

* **Settings**: ``InitNetwork``, the first one wins; the same again is a no-op.
* **Leases**, one per host (the Docker engine's ID), shared by the agents on it:
  ``AcquireLease`` gives the host's lease, or the next subnet of the pool. A holder that
  leaves cleanly holding no task gives its share up at once; a lease with no holder left is
  released. A host whose agents are dead keeps its lease until the leader's
  ``ReleaseLease`` (after ``lease_dead_grace``, ``orion/control/lease_reclaim.py``), so a
  rebooted host gets its old subnet back.
* **VIPs**: a service in ``vip`` mode on the overlay has one from the service CIDR while it
  exists (kept across updates); freed when it is deleted or stops wanting one.

The log-version gate: the network's commands and a task's ``ip`` are a newer log format
(``NETWORK_LOG_VERSION``). While a registered node that reads only an older one may read
the log again, the machine refuses the network's commands (kind ``log_version``: asked again
once the upgrade is done) as that node refuses them (unreadable), and nothing else here
changes until the settings are set, so old and new replicas stay equal during a rolling upgrade.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orion.domain.model import NODE_ALIVE, NODE_LEFT, NODE_RESTARTING, NODE_SUSPECT, NodeInfo
from orion.domain.network import NetworkSettings, SubnetLease, ipv4_problem, lease_for, settings_problem
from orion.state.commands import AcquireLease, Command, InitNetwork, ReleaseLease, SetNodeStatus, handles
from orion.state.pool import Pool
from orion.state.results import LeaseAcquired, LeaseReleased, NetworkSet, RefusalKind, Refused
from orion.state.services import ServiceRegistry
from orion.state.vips import VipRegistry

# The log format that introduced the network's commands and a task's ``ip`` (orion/version.py).
NETWORK_LOG_VERSION = 4
# A holder in one of these states may still use its lease: the leader may not release it.
_HOLDING = frozenset({NODE_ALIVE, NODE_SUSPECT, NODE_RESTARTING})


class NetworkRegistry:
    """Settings, leases and VIPs; changed only through the machine's dispatch.

    ``node`` reads a registered node, ``holds_tasks`` says whether any task holds a node,
    ``log_version`` is the machine's (the oldest format a node may read the log in).
    """

    def __init__(self, node: Callable[[str], NodeInfo | None], holds_tasks: Callable[[str], bool],
                 log_version: Callable[[], int], services: ServiceRegistry) -> None:
        self._node, self._holds_tasks, self._log_version = node, holds_tasks, log_version
        self.settings: NetworkSettings | None = None
        self._leases: dict[int, SubnetLease] = {}
        self._by_host: dict[str, int] = {}
        self._subnets = Pool(0, 0)
        self.vips = VipRegistry(services, lambda: self._log_version() >= NETWORK_LOG_VERSION)

    def enabled(self) -> bool:
        """The network is set and every node that may read the log reads its format."""
        return self.settings is not None and self._log_version() >= NETWORK_LOG_VERSION

    def _gate(self) -> Refused | None:
        if self._log_version() < NETWORK_LOG_VERSION:
            return Refused(RefusalKind.LOG_VERSION, f"a node of this cluster reads only log format "
                           f"{self._log_version()}; the network needs {NETWORK_LOG_VERSION} (finish the upgrade first)")
        return None

    # -- around the other commands (called by the machine's apply) ----------------------------
    def check(self, cmd: Command) -> Refused | None:
        """Before ``cmd`` is applied: why the network refuses the spec it declares (a port
        another service publishes, no VIP left), or None."""
        return self.vips.check(cmd)

    def follow(self, cmd: Command, index: int) -> None:
        """After ``cmd`` was applied (not refused): a holder that left gives its share of its
        lease up; the VIPs follow the services (``vips.py``)."""
        if isinstance(cmd, SetNodeStatus):
            self._node_status(cmd, index)
        else:
            self.vips.follow(cmd)

    # -- commands ----------------------------------------------------------------------------
    @handles(InitNetwork)
    def init(self, cmd: InitNetwork, index: int) -> NetworkSet | Refused:  # noqa: ARG002
        settings = NetworkSettings.from_dict(cmd.settings.to_dict())  # canonical form, as a restore would give
        gate = self._gate()
        if gate is not None:
            return gate
        problem = settings_problem(settings)
        if problem:
            return Refused(RefusalKind.INVALID, problem)
        if self.settings is not None:
            if self.settings == settings:
                return NetworkSet(settings, changed=False)
            mine, theirs = self.settings.to_dict(), settings.to_dict()
            differ = ", ".join(f"{k} {mine[k]} (asked {theirs[k]})" for k in mine if mine[k] != theirs[k])
            return Refused(RefusalKind.EXISTS, f"the cluster's network is set already and cannot change: {differ}")
        self.settings = settings
        self._subnets = Pool(0, settings.subnets)
        self.vips.start(settings)
        return NetworkSet(settings, changed=True)

    @handles(AcquireLease)
    def acquire(self, cmd: AcquireLease, index: int) -> LeaseAcquired | Refused:
        gate = self._gate()
        if gate is not None:
            return gate
        settings = self.settings
        if settings is None:
            return Refused(RefusalKind.WRONG_STATE, "the cluster's network is not set yet (the bootstrapping node "
                                                    "sets it once it leads); ask again")
        if self._node(cmd.node_id) is None:
            return Refused(RefusalKind.NOT_FOUND, f"node {cmd.node_id!r} is not registered; register first")
        problem = ("a lease needs a host key (the Docker engine's ID)" if not cmd.host
                   else ipv4_problem(cmd.underlay_ip, "underlay address"))
        if problem:
            return Refused(RefusalKind.INVALID, problem)
        if cmd.underlay_mtu < settings.underlay_mtu:
            return Refused(RefusalKind.MTU, f"node {cmd.node_id}'s underlay MTU {cmd.underlay_mtu} ({cmd.underlay_ip}) "
                                   f"cannot carry the overlay's MTU {settings.mtu} plus 50 bytes of VXLAN: it needs "
                                   f"at least {settings.underlay_mtu}; raise that interface's MTU, or bootstrap the "
                                   "cluster with a smaller network mtu")
        current = self._by_host.get(cmd.host)
        moved_from = self.lease_of_node(cmd.node_id)
        if moved_from is not None and moved_from.host == cmd.host:
            moved_from = None
        frees_one = moved_from is not None and moved_from.holders == (cmd.node_id,)
        if current is None and self._subnets.peek() is None and not frees_one:
            return Refused(RefusalKind.EXHAUSTED, f"every subnet of {settings.cidr} in /{settings.host_prefix} is "
                                                  f"leased ({settings.subnets}); release a dead host's or widen the "
                                                  "cluster CIDR")
        if moved_from is not None:  # the node runs on another engine now: it no longer holds its old host's
            self._drop_holder(moved_from, cmd.node_id, index)
        if current is not None:
            lease = self._leases[current]
            holders = (*lease.holders, cmd.node_id)
        else:
            current = self._subnets.take()
            assert current is not None  # checked above: a subnet was free, or the move just freed one
            holders = (cmd.node_id,)
        lease = lease_for(settings, current, cmd.host, holders, cmd.underlay_ip, index)
        created = current not in self._leases
        self._leases[current] = lease
        self._by_host[cmd.host] = current
        # Services declared while an older node could read the log got no VIP then; every agent
        # asks at its start, so the last one upgraded brings them in line.
        self.vips.sync()
        return LeaseAcquired(lease, created)

    @handles(ReleaseLease)
    def release(self, cmd: ReleaseLease, index: int) -> LeaseReleased | Refused:  # noqa: ARG002
        gate = self._gate()
        if gate is not None:
            return gate
        current = self._by_host.get(cmd.host)
        if current is None:
            return Refused(RefusalKind.NOT_FOUND, f"host {cmd.host!r} holds no lease")
        lease = self._leases[current]
        for holder in lease.holders:
            node = self._node(holder)
            if node is not None and node.status in _HOLDING:
                return Refused(RefusalKind.WRONG_STATE, f"the lease of host {cmd.host} ({lease.subnet}) is still "
                                                        f"held by node {holder}, which is {node.status}")
        self._free(lease)
        return LeaseReleased(lease, cmd.reason)

    # -- following the nodes -----------------------------------------------------------------
    def _node_status(self, cmd: SetNodeStatus, index: int) -> None:
        """A clean leave (``left``) gives the node's share of its lease up, unless tasks still
        hold the node (a drain's originals run until their replacements do: their addresses
        must stay reachable); the leader's reclaim pass releases it once they are gone."""
        lease = self.lease_of_node(cmd.node_id)
        if cmd.status == NODE_LEFT and lease is not None and not self._holds_tasks(cmd.node_id):
            self._drop_holder(lease, cmd.node_id, index)

    def _drop_holder(self, lease: SubnetLease, node_id: str, index: int) -> None:
        """``node_id`` no longer holds ``lease``; the lease goes back to the pool with its last holder."""
        holders = tuple(h for h in lease.holders if h != node_id)
        if holders:
            self._leases[lease.index] = lease_for(self.settings or NetworkSettings(), lease.index, lease.host,
                                                  holders, lease.underlay_ip, index)
        else:
            self._free(lease)

    def _free(self, lease: SubnetLease) -> None:
        del self._leases[lease.index]
        del self._by_host[lease.host]
        self._subnets.release(lease.index)

    # -- queries -----------------------------------------------------------------------------
    def leases(self) -> tuple[SubnetLease, ...]:
        return tuple(self._leases[i] for i in sorted(self._leases))

    def lease_of_host(self, host: str) -> SubnetLease | None:
        index = self._by_host.get(host)
        return None if index is None else self._leases[index]

    def lease_of_node(self, node_id: str) -> SubnetLease | None:
        return next((lease for lease in self._leases.values() if node_id in lease.holders), None)

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"settings": self.settings.to_dict() if self.settings else None,
                "leases": [lease.to_dict() for lease in self.leases()], "subnets": self._subnets.snapshot(),
                "vips": self.vips.snapshot()}

    def restore(self, data: dict[str, Any]) -> None:
        if data.get("settings") is None:
            return
        self.settings = NetworkSettings.from_dict(data["settings"])
        self._subnets = Pool.restore(0, self.settings.subnets, data.get("subnets") or {})
        for raw in data.get("leases") or ():
            lease = SubnetLease.from_dict(raw)
            self._leases[lease.index] = lease
            self._by_host[lease.host] = lease.index
        self.vips.restore(self.settings, data.get("vips") or {})
