"""The firewall's adapter: reads and applies Orion's nftables table and its DOCKER-USER rule.

`nft -f -` applies a rendered table as one transaction, so the kernel holds either the old
table or the new one, never half. The one iptables rule goes through the `iptables` command
(iptables-nft here): Docker's chains live in its xtables-compatible tables, which only the
iptables tools should edit. Both commands act on the namespace this process runs in.
"""

from __future__ import annotations

import re
import subprocess

from orion.network.firewall import (
    DOCKER_USER_RULE,
    FAMILY,
    TABLE,
    ApplyTable,
    FirewallChange,
    InsertDockerUserRule,
    ObservedFirewall,
)

TIMEOUT_S = 10  # nft and iptables answer in milliseconds; a hung one must not stall the loop
COMMENT = re.compile(r'^\s*comment "orion ([0-9a-f]+)"\s*$')
CHAIN = re.compile(r"^\s*chain (\S+) \{\s*$")


class FirewallError(Exception):
    """nft or iptables refused; the message carries its stderr."""


def parse_table(listing: str) -> tuple[str | None, tuple[tuple[str, int], ...]]:
    """The digest from the table's comment and the number of rules per chain, in order, from
    `nft list table` text (nft 1.0's JSON leaves the table's comment out)."""
    digest, counts, chain = None, [], None
    for line in listing.splitlines():
        depth_line = line.strip()
        if chain is None and (m := COMMENT.match(line)):
            digest = m.group(1)
        elif m := CHAIN.match(line):
            chain = m.group(1)
            counts.append([chain, 0])
        elif chain is not None:
            if depth_line == "}":
                chain = None
            elif depth_line and not depth_line.startswith("type "):
                counts[-1][1] += 1
    return digest, tuple((name, n) for name, n in counts)


class NftFirewall:
    def __init__(self, nft: str = "nft", iptables: str = "iptables") -> None:
        self.nft = nft
        self.iptables = iptables

    def _run(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise FirewallError(f"{' '.join(argv)}: {e}") from e

    def observe(self) -> ObservedFirewall:
        listed = self._run(self.nft, "list", "table", FAMILY, TABLE)
        digest, counts = parse_table(listed.stdout) if listed.returncode == 0 else (None, ())
        if listed.returncode == 0 and digest is None:
            digest = "none"  # a table of that name without Orion's comment: someone else's, replace it
        chain = self._run(self.iptables, "-w", "-S", "DOCKER-USER")
        has_chain = chain.returncode == 0
        has_rule = has_chain and self._run(self.iptables, "-w", "-C", "DOCKER-USER", *DOCKER_USER_RULE).returncode == 0
        return ObservedFirewall(digest, counts, has_chain, has_rule)

    def apply(self, change: FirewallChange) -> None:
        if isinstance(change, ApplyTable):
            done = self._run(self.nft, "-f", "-", stdin=change.rules.script)
        elif isinstance(change, InsertDockerUserRule):
            done = self._run(self.iptables, "-w", "-I", "DOCKER-USER", "1", *DOCKER_USER_RULE)
        else:
            raise TypeError(f"not a firewall change: {change!r}")
        if done.returncode != 0:
            raise FirewallError(f"{change}: {done.stderr.strip() or done.returncode}")
