"""What this node asks of the replicated state about the overlay, decided from one read.

Level-triggered, like the reconciler: every pass compares what the replica says with what
this node is, and returns the one command that would close the gap, or None.

* No network in the cluster: the leader proposes this node's configured settings
  (``InitNetwork``: the first one wins, an equal repeat changes nothing). In practice that is
  the bootstrapping node, the first leader; a later leader only proposes if none was set.
* The network is set but this host's lease does not list this node, or names another
  underlay address: ``AcquireLease`` (the host's existing lease, else a new one; inside the
  apply). An agent restart re-asks and gets the same lease; a lease released while the host
  was away is acquired again.
"""

from __future__ import annotations

from dataclasses import dataclass

from orion.domain.network import NetworkSettings, SubnetLease
from orion.state.commands import AcquireLease, InitNetwork

LeaseCommand = InitNetwork | AcquireLease


@dataclass(frozen=True)
class HostFacts:
    """This node as the overlay sees it: measured once at start."""

    node_id: str
    host: str  # the engine's ID: the lease's key
    underlay_ip: str  # the advertise address: where peers send VXLAN
    underlay_mtu: int  # of the interface carrying that address


def plan(settings: NetworkSettings | None, lease: SubnetLease | None, facts: HostFacts, leader: bool,
         proposal: NetworkSettings) -> LeaseCommand | None:
    """``settings``: the cluster's (None: not set yet); ``lease``: this host's, if any."""
    if settings is None:
        return InitNetwork(settings=proposal) if leader else None
    if lease is not None and facts.node_id in lease.holders and str(lease.underlay_ip) == facts.underlay_ip:
        return None
    return AcquireLease(node_id=facts.node_id, host=facts.host, underlay_ip=facts.underlay_ip,
                        underlay_mtu=facts.underlay_mtu)
