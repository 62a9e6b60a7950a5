"""Service VIPs and published ports, balanced in the kernel: a pure plan from the
discovery view and its rendering as one nftables table, ``ip orion-lb``.

This kernel has no IPVS, so the balancing is nftables NAT, the way kube-proxy's
nftables mode does it: a connection's first packet to ``VIP:port`` jumps to the
service's chain, ``numgen random mod N`` picks one of N backend chains through a
verdict map, and that chain DNATs to ``overlay-ip:target``. Conntrack remembers
the choice, so every later packet of the connection follows it and a new ruleset
never moves or cuts an established connection. The backends are exactly
:meth:`DiscoveryView.serving` (the rule DNS uses).

Hooks: ``prerouting`` (containers, other hosts) and ``output`` (the host's own
processes), both just before Docker's NAT (priority dstnat - 1). What the DNAT did
not translate and is still addressed to a VIP has no backend: a filter chain right
after it rejects it (a TCP reset, ICMP port unreachable for UDP) so clients fail at
once instead of hanging until a timeout.

Hairpin: a container whose connection lands on a backend on its own bridge would get
the reply straight from the backend's address and drop it, so that case is marked
(source in the local subnet, backend in the local subnet) and masqueraded to the
bridge gateway, kube-proxy's way, which holds with or without br_netfilter.

Ingress (Swarm's routing mesh): a published port on any of the host's own addresses
(``fib daddr type local``; loopback excluded, the kernel would not route it out)
DNATs to the service's backends anywhere in the cluster and is always masqueraded,
so the reply returns through the host that received the connection and a host with
no replica still answers. The client's address is lost to the backend, as in Swarm.
Docker's FORWARD policy is DROP and only its DOCKER-USER chain can accept (see
``firewall``): an ingress connection carries ``ACCEPT_MARK`` in its conntrack mark, and
the ``forward`` chain copies it onto each of its packets, both ways, for that one rule.

Ownership: this table is the load balancer's alone. Filtering and masquerade for
the overlay live in the datapath's ``inet orion`` table; the mark bit below is the
only thing the two share a packet on, and only between its NAT hooks.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass

from orion.network.firewall import ACCEPT_MARK
from orion.network.view import DiscoveryView, Protocol, Service

TABLE = "orion-lb"
FAMILY = "ip"
# The packet-mark bit that asks postrouting to masquerade (hairpin and ingress). kube-proxy
# uses 0x4000, Docker's Swarm ingress sets whole marks on its own table; this bit is
# chosen apart from both and set with a bitwise OR, so other users' bits survive.
MASQ_MARK = 0x00200000
# Just before Docker's nat chains (-100) so a VIP or published port is ours even if a
# container maps the same host port; the reject after Orion's DNAT and before filter.
NAT_PRIORITY = "dstnat - 1"
OUTPUT_NAT_PRIORITY = "-101"
REJECT_PRE_PRIORITY = "dstnat + 10"
REJECT_OUT_PRIORITY = "filter - 1"
# Before Docker's filter chains (0) and Orion's datapath table (filter - 1): marks the packets
# of ingress connections in both directions so DOCKER-USER's one rule lets them through.
FORWARD_PRIORITY = "filter - 2"
SNAT_PRIORITY = "srcnat - 1"


@dataclass(frozen=True)
class LbHost:
    """What the plan needs to know about this host: its bridge's subnet (hairpin), or
    None when it has none yet (nothing is local, nothing hairpins)."""

    local_subnet: str | None = None

    def __post_init__(self) -> None:
        if self.local_subnet is not None:
            ipaddress.IPv4Network(self.local_subnet)  # raises ValueError naming the value


@dataclass(frozen=True)
class Backend:
    ip: str
    port: int
    local: bool  # on this host's bridge: hairpin applies


@dataclass(frozen=True)
class Frontend:
    """Where connections arrive (``vip``:``port``, or ``port`` on every local address when
    ``vip`` is None: ingress) and where they may go."""

    service: str
    protocol: Protocol
    port: int
    vip: str | None
    backends: tuple[Backend, ...]


@dataclass(frozen=True)
class LbPlan:
    frontends: tuple[Frontend, ...]
    vips: tuple[str, ...]  # every VIP, served or not: what is not DNATed to them is rejected
    local_subnet: str | None

    @property
    def backend_count(self) -> int:
        return sum(len(f.backends) for f in self.frontends)

    def without_backends(self) -> tuple[Frontend, ...]:
        return tuple(f for f in self.frontends if not f.backends)


@dataclass(frozen=True)
class Ruleset:
    """The nft script that replaces the table in one transaction, and its digest (kept in
    the table's comment, so an agent that restarts can tell the kernel already has it)."""

    text: str
    digest: str


def plan(view: DiscoveryView, host: LbHost) -> LbPlan:
    subnet = ipaddress.IPv4Network(host.local_subnet) if host.local_subnet else None
    frontends: list[Frontend] = []
    vips: list[str] = []
    for service in sorted(view.services, key=lambda s: s.name.lower()):
        backends_by_port = {(p.protocol, p.target): _backends(view, service, p.target, subnet) for p in service.ports}
        if service.mode == "vip" and service.vip is not None:
            vips.append(service.vip)
            for (protocol, target), backends in sorted(backends_by_port.items()):
                frontends.append(Frontend(service.name, protocol, target, service.vip, backends))
        for port in sorted(service.ports, key=lambda p: (p.protocol, p.published or 0)):
            if port.published is not None:
                frontends.append(Frontend(service.name, port.protocol, port.published, None,
                                          backends_by_port[(port.protocol, port.target)]))
    return LbPlan(tuple(frontends), tuple(sorted(set(vips), key=ipaddress.IPv4Address)), host.local_subnet)


def _backends(view: DiscoveryView, service: Service, target: int,
              subnet: ipaddress.IPv4Network | None) -> tuple[Backend, ...]:
    return tuple(Backend(e.ip, target, subnet is not None and ipaddress.IPv4Address(e.ip) in subnet)
                 for e in view.serving(service.name) if e.ip is not None)


def render(lb: LbPlan) -> Ruleset:
    body = _body(lb)
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    text = (f"table {FAMILY} {TABLE} {{\n}}\n"  # so the delete below never fails on a fresh host
            f"delete table {FAMILY} {TABLE}\n"
            f"table {FAMILY} {TABLE} {{\n"
            f'\tcomment "{TABLE} {digest}"\n'
            f"{body}}}\n")
    return Ruleset(text, digest)


def _body(lb: LbPlan) -> str:
    lines: list[str] = []
    names = _ChainNames()
    lines += ["\tset vips {", "\t\ttype ipv4_addr"]
    if lb.vips:
        lines.append(f"\t\telements = {{ {', '.join(lb.vips)} }}")
    lines.append("\t}")
    services: list[str] = []
    ingress: list[str] = []
    for frontend in lb.frontends:
        if not frontend.backends:
            continue  # a VIP falls through to the reject chains; a published port to the host's own stack
        chain = names.take("svc" if frontend.vip else "in", frontend)
        match = f"meta l4proto {frontend.protocol} th dport {frontend.port}"
        if frontend.vip:
            services.append(f"ip daddr {frontend.vip} {match} goto {chain}")
        else:
            ingress.append(f"{match} goto {chain}")
        picks = []
        for i, backend in enumerate(frontend.backends):
            endpoint = f"{chain}-ep{i}"
            picks.append(f"{i} : goto {endpoint}")
            rules = []
            if frontend.vip is None:
                # Masquerade, and remember on the connection that it is ingress: its packets
                # (both ways) cross Docker's FORWARD DROP only with ACCEPT_MARK (see forward).
                rules.append(f"meta mark set meta mark | {MASQ_MARK:#010x} ct mark set ct mark | {ACCEPT_MARK:#010x}")
            elif backend.local and lb.local_subnet:
                rules.append(f"ip saddr {lb.local_subnet} meta mark set meta mark | {MASQ_MARK:#010x}")
            rules.append(f"meta l4proto {frontend.protocol} dnat to {backend.ip}:{backend.port}")
            lines += _chain(endpoint, rules)
        lines += _chain(chain, [f"numgen random mod {len(frontend.backends)} vmap {{ {', '.join(picks)} }}"])
    lines += _chain("services", services)
    lines += _chain("ingress", ingress)
    lines += _chain("prerouting", ["jump services", "fib daddr type local jump ingress"],
                    f"type nat hook prerouting priority {NAT_PRIORITY}; policy accept;")
    lines += _chain("output", ["jump services", "ip daddr != 127.0.0.0/8 fib daddr type local jump ingress"],
                    f"type nat hook output priority {OUTPUT_NAT_PRIORITY}; policy accept;")
    lines += _chain("postrouting", [f"meta mark & {MASQ_MARK:#010x} == {MASQ_MARK:#010x} masquerade"],
                    f"type nat hook postrouting priority {SNAT_PRIORITY}; policy accept;")
    lines += _chain("forward", [f"ct mark & {ACCEPT_MARK:#010x} == {ACCEPT_MARK:#010x} "
                                f"meta mark set meta mark | {ACCEPT_MARK:#010x}"],
                    f"type filter hook forward priority {FORWARD_PRIORITY}; policy accept;")
    no_backend = ["ip daddr @vips meta l4proto tcp reject with tcp reset", "ip daddr @vips reject"]
    lines += _chain("reject-prerouting", no_backend,
                    f"type filter hook prerouting priority {REJECT_PRE_PRIORITY}; policy accept;")
    lines += _chain("reject-output", no_backend,
                    f"type filter hook output priority {REJECT_OUT_PRIORITY}; policy accept;")
    return "".join(line + "\n" for line in lines)


def _chain(name: str, rules: list[str], base: str | None = None) -> list[str]:
    out = [f"\tchain {name} {{"]
    if base:
        out.append(f"\t\t{base}")
    out += [f"\t\t{rule}" for rule in rules]
    out.append("\t}")
    return out


class _ChainNames:
    """``svc-web-tcp-80`` (its backends ``svc-web-tcp-80-ep0``...), readable in ``nft list
    table`` while debugging; a name that would collide once made safe for nft gets a
    numeric suffix."""

    def __init__(self) -> None:
        self._taken: set[str] = set()

    def take(self, kind: str, frontend: Frontend) -> str:
        safe = re.sub(r"[^a-z0-9_-]+", "_", frontend.service.lower())
        base = f"{kind}-{safe}-{frontend.protocol}-{frontend.port}"
        name, n = base, 1
        while name in self._taken:
            n += 1
            name = f"{base}-{n}"
        self._taken.add(name)
        return name
