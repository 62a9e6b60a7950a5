"""Orion's firewall, rendered: one nftables table of Orion's own plus one fixed iptables rule.

Pure: settings and the lease holders' underlay addresses in, an ``nft -f`` script out, and the
decision whether the kernel's copy is current.

Why a mark and a DOCKER-USER rule. Docker 20.10 sets the FORWARD policy to DROP and keeps
its rules in iptables-nft's ``ip filter`` table. In nftables every base chain on a hook runs:
an ``accept`` in another table only ends that table's chain, and the packet then meets
Docker's chain and its DROP policy (checked on this kernel by tests/netlab). Only a verdict
inside Docker's own chain lets a packet through, and DOCKER-USER is the chain Docker leaves
to the operator. So Orion's table decides (at priority filter - 1, before Docker's) and marks
cluster traffic with ``ACCEPT_MARK``, and one rule that never changes, first in DOCKER-USER,
accepts marked packets. All policy stays in Orion's table, replaced atomically by one
``nft -f`` transaction (the file deletes and recreates the table).

What the table does:
- ``input``: VXLAN (UDP ``port``) only from a lease holder's underlay address; foreign VXLAN
  is counted and dropped before the VXLAN socket decapsulates it (a forged inner packet would
  otherwise enter the bridge).
- ``forward``: marks packets between the bridge and the VXLAN device whose source and
  destination are both in the cluster CIDR. The interface match keeps a forged
  10.42.x.x packet arriving on the underlay from riding the mark into the bridge.
- ``postrouting``: cluster-to-cluster traffic is never NATed (task IPs stay visible end to
  end); traffic from the cluster CIDR to anywhere else is masqueraded (Docker's own
  masquerade is off on the ``orion`` network, see ``bridge_network``).

Extension point: load balancing renders its own table ``ip orion-lb`` (VIP and ingress DNAT)
and applies it the same way. This table never touches it, and it may set ``ACCEPT_MARK`` on
traffic it DNATs from outside the cluster so that traffic passes Docker's FORWARD DROP too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Address

from orion.network.overlay import OverlaySettings

TABLE = "orion"
FAMILY = "ip"
# A bit no common neighbour uses (kube-proxy 0x4000/0x8000, Calico 0xffff0000's top bits,
# Cilium 0x0f00, Weave 0x20000); matched and set as a mask, so other bits survive.
ACCEPT_MARK = 0x04200000
DOCKER_USER_RULE = ("-m", "mark", "--mark", f"{ACCEPT_MARK:#x}/{ACCEPT_MARK:#x}", "-m", "comment", "--comment",
                    "orion: cluster traffic marked by table ip orion", "-j", "ACCEPT")
FOREIGN_VXLAN = "VXLAN from a host without a lease"


@dataclass(frozen=True)
class FirewallRules:
    """The rendered table: the script, its digest (kept in the table's comment) and how many
    rules each chain holds (a rule deleted by hand shows up as a short chain)."""

    script: str
    digest: str
    rule_counts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class ObservedFirewall:
    """What `nft list table ip orion` and `iptables -S DOCKER-USER` showed."""

    digest: str | None  # None: no table
    rule_counts: tuple[tuple[str, int], ...] = ()
    docker_user: bool = False  # the DOCKER-USER chain exists (Docker runs with iptables)
    docker_user_rule: bool = False  # Orion's rule is in it


@dataclass(frozen=True)
class ApplyTable:
    rules: FirewallRules
    reason: str

    def __str__(self) -> str:
        return f"nft table {FAMILY} {TABLE} applied ({self.reason})"


@dataclass(frozen=True)
class InsertDockerUserRule:
    def __str__(self) -> str:
        return f"iptables DOCKER-USER: accept mark {ACCEPT_MARK:#x} inserted"


FirewallChange = ApplyTable | InsertDockerUserRule


def _chain(name: str, hook: str, kind: str, priority: str, rules: list[str]) -> list[str]:
    head = [f"\tchain {name} {{", f"\t\ttype {kind} hook {hook} priority {priority}; policy accept;"]
    return head + [f"\t\t{r}" for r in rules] + ["\t}"]


def render(settings: OverlaySettings, lease_underlay: tuple[IPv4Address, ...]) -> FirewallRules:
    """The table for these settings and these lease holders (this host's own address need not
    be among them: it never sends VXLAN to itself)."""
    cidr, port = settings.cluster_cidr, settings.port
    devices = f'{{ "{settings.bridge}", "{settings.vxlan}" }}'
    chains = {
        "input": [f"udp dport {port} ip saddr @lease_underlay accept",
                  f'udp dport {port} counter drop comment "{FOREIGN_VXLAN}"'],
        "forward": [f"iifname {devices} oifname {devices} ip saddr {cidr} ip daddr {cidr} "
                    f"meta mark set meta mark | {ACCEPT_MARK:#010x}"],
        "postrouting": [f"ip saddr {cidr} ip daddr {cidr} return",
                        f"ip saddr {cidr} ip daddr != 224.0.0.0/4 masquerade"],
    }
    elements = ", ".join(str(ip) for ip in sorted(set(lease_underlay)))
    body = ["\tset lease_underlay {", "\t\ttype ipv4_addr"]
    body += [f"\t\telements = {{ {elements} }}"] if elements else []
    body += ["\t}"]
    body += _chain("input", "input", "filter", "filter - 1", chains["input"])
    body += _chain("forward", "forward", "filter", "filter - 1", chains["forward"])
    body += _chain("postrouting", "postrouting", "nat", "srcnat - 1", chains["postrouting"])
    digest = hashlib.sha256("\n".join(body).encode()).hexdigest()[:16]
    script = "\n".join([
        "# Orion's datapath firewall (orion/network/firewall.py); replaced whole by every apply.",
        f"table {FAMILY} {TABLE} {{}}",
        f"delete table {FAMILY} {TABLE}",
        f"table {FAMILY} {TABLE} {{",
        f'\tcomment "orion {digest}"',
        *body,
        "}",
        "",
    ])
    return FirewallRules(script, digest, tuple((name, len(rules)) for name, rules in chains.items()))


def decide(rules: FirewallRules, observed: ObservedFirewall) -> tuple[FirewallChange, ...]:
    """What to do so the kernel holds ``rules``: nothing when it already does."""
    out: list[FirewallChange] = []
    if observed.digest is None:
        out.append(ApplyTable(rules, "absent"))
    elif observed.digest != rules.digest:
        out.append(ApplyTable(rules, f"digest {observed.digest} != {rules.digest}"))
    elif observed.rule_counts != rules.rule_counts:
        out.append(ApplyTable(rules, f"rules {dict(observed.rule_counts)} != {dict(rules.rule_counts)}"))
    if observed.docker_user and not observed.docker_user_rule:
        out.append(InsertDockerUserRule())
    return tuple(out)
