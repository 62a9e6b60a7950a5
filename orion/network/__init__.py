"""Orion's overlay network: flat task IPs over VXLAN between hosts.

The kernel's half, each a pure planner beside its adapter: ``overlay`` holds the input values
(settings, a host's lease, the VTEP MAC rule); ``datapath`` plans the VXLAN device and each
peer's neighbour, FDB entry and route over the values in ``datapath_state``, and ``kernel``
applies them with pyroute2; ``firewall`` renders Orion's nftables table and ``nft`` applies
it; ``bridge_network`` keeps the Docker network ``orion``; ``datapath_loop`` runs all three on
every wake and every few seconds. Nothing here imports the rest of Orion: the agent hands in
values (the leases from its Raft replica).
"""
