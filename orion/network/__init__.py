"""Orion's overlay network: the datapath between hosts, service discovery (DNS)
and the in-kernel load balancer for service VIPs and published ports.

Pure planners (``discovery``, ``loadbalance``) read one :class:`view.DiscoveryView`
and return typed decisions; the edges (``dns_server``, ``loadbalance_loop``) carry
them out against sockets and nftables.
"""
