"""The firewall's render and decision, and the parse of `nft list table` text."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

from orion.network.firewall import ApplyTable, InsertDockerUserRule, ObservedFirewall, decide, render
from orion.network.nft import parse_table
from orion.network.overlay import OverlaySettings

SETTINGS = OverlaySettings(cluster_cidr=IPv4Network("10.42.0.0/16"), vni=1, port=4789, mtu=1450,
                           bridge="orion0", vxlan="orion.1")
PEERS = (IPv4Address("10.77.0.3"), IPv4Address("10.77.0.2"))


def test_the_table_accepts_vxlan_from_lease_holders_only_marks_cluster_traffic_and_masquerades_the_rest():
    script = render(SETTINGS, PEERS).script
    assert "table ip orion {}\ndelete table ip orion\ntable ip orion {" in script  # one atomic replace
    assert "elements = { 10.77.0.2, 10.77.0.3 }" in script
    assert "udp dport 4789 ip saddr @lease_underlay accept\n\t\tudp dport 4789 counter drop" in script
    assert ('iifname { "orion0", "orion.1" } oifname { "orion0", "orion.1" } ip saddr 10.42.0.0/16 '
            "ip daddr 10.42.0.0/16 meta mark set meta mark | 0x04200000") in script
    assert "ip saddr 10.42.0.0/16 ip daddr 10.42.0.0/16 return\n\t\tip saddr 10.42.0.0/16 ip daddr != " in script


def test_no_lease_holder_means_an_empty_set_so_all_vxlan_is_dropped():
    script = render(SETTINGS, ()).script
    assert "elements" not in script and "counter drop" in script


def test_the_digest_follows_the_inputs_not_their_order():
    assert render(SETTINGS, PEERS).digest == render(SETTINGS, PEERS[::-1]).digest
    assert render(SETTINGS, PEERS).digest != render(SETTINGS, PEERS[:1]).digest


def test_decide_applies_when_absent_changed_or_a_rule_is_missing_and_adds_the_docker_user_rule_once():
    rules = render(SETTINGS, PEERS)
    current = ObservedFirewall(rules.digest, rules.rule_counts, docker_user=True, docker_user_rule=True)
    assert decide(rules, current) == ()
    assert [str(c) for c in decide(rules, ObservedFirewall(None, docker_user=True))] == [
        "nft table ip orion applied (absent)", "iptables DOCKER-USER: accept mark 0x4200000 inserted"]
    short = ObservedFirewall(rules.digest, (("input", 1), ("forward", 1), ("postrouting", 2)), True, True)
    assert isinstance(decide(rules, short)[0], ApplyTable)
    stale = ObservedFirewall("0" * 16, rules.rule_counts, True, True)
    assert "digest" in decide(rules, stale)[0].reason
    assert decide(rules, ObservedFirewall(rules.digest, rules.rule_counts, docker_user=False)) == ()
    assert decide(rules, ObservedFirewall(rules.digest, rules.rule_counts, True, False)) == (InsertDockerUserRule(),)


def test_parse_table_reads_the_comment_and_counts_rules_per_chain():
    listing = """table ip orion {
\tcomment "orion 0123456789abcdef"
\tset lease_underlay {
\t\ttype ipv4_addr
\t\telements = { 10.77.0.2 }
\t}

\tchain input {
\t\ttype filter hook input priority filter - 1; policy accept;
\t\tudp dport 4789 ip saddr @lease_underlay accept
\t\tudp dport 4789 counter packets 3 bytes 450 drop comment "VXLAN from a host without a lease"
\t}

\tchain forward {
\t\ttype filter hook forward priority filter - 1; policy accept;
\t}
}
"""
    assert parse_table(listing) == ("0123456789abcdef", (("input", 2), ("forward", 0)))
