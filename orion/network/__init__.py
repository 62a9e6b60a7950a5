"""Orion's overlay network: flat task IPs over VXLAN between hosts, service discovery
(DNS) and the in-kernel load balancer for service VIPs and published ports.

Each part is a pure planner beside its adapter, and nothing here imports the rest of
Orion but the bottom layer (the VTEP MAC rule, ``orion/domain/network.py``, which the
state machine writes into each lease): the agent hands in values (the leases and the
discovery view from its Raft replica).

* The kernel's half: ``overlay`` holds the input values (settings, a host's lease, the VTEP
  MAC rule); ``datapath`` plans the VXLAN device and each peer's neighbour, FDB entry and
  route over the values in ``datapath_state``, and ``kernel`` applies them with pyroute2;
  ``firewall`` renders Orion's nftables table and ``nft`` applies it; ``bridge_network``
  keeps the Docker network ``orion``; ``datapath_loop`` runs all three on every wake and
  every few seconds.
* Discovery and balancing: ``discovery`` and ``loadbalance`` read one
  :class:`view.DiscoveryView` and return typed decisions; ``dns_server`` and
  ``loadbalance_loop`` carry them out against sockets and nftables.
"""
