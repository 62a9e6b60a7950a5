"""Orion's overlay network: flat task IPs over VXLAN between hosts.

Kernel side (this package's datapath half): ``overlay`` holds the input values (settings, a
host's lease), ``datapath`` plans the VXLAN device and the per-peer FDB, neighbour and route
entries, ``kernel`` applies them with pyroute2, ``firewall`` renders Orion's nftables table,
``bridge_network`` keeps the Docker network ``orion`` and ``datapath_loop`` runs them all.
Nothing here imports the rest of Orion: the agent hands in values.
"""
