"""Every gossip knob in one place, with the reason for each default beside it.

Defaults follow hashicorp/memberlist's LAN profile, which was tuned on real
clusters and is what the Lifeguard paper measured. Times are seconds (floats):
the core only compares them with the ``now`` it is handed, so the same config
drives real time (transport) and virtual time (simulator).

The helpers at the bottom are the formulas from memberlist/Lifeguard that turn
the knobs plus the cluster size into concrete timeouts; they are pure so tests
and benchmarks can state expectations with them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class GossipConfig:
    # --- failure detection -------------------------------------------------
    # One probe per second: a crash is noticed within ~1-2 intervals, and the
    # probe costs O(1) messages per node per second whatever the cluster size.
    probe_interval: float = 1.0
    # Half an interval for the direct ack: LAN RTTs are ~1 ms, so 500 ms only
    # fails for a node that is really stuck, and leaves half the interval for
    # the indirect probes to come back.
    probe_timeout: float = 0.5
    # Three indirect probers: enough that one lossy path does not make a
    # healthy node suspect, few enough that a probe stays O(1) messages.
    indirect_checks: int = 3
    # Suspicion lasts at least mult * log10(n) probe intervals: long enough for
    # the accused to hear of it (gossip reaches all in ~log n rounds) and refute.
    suspicion_mult: int = 4
    # Lifeguard: a lone accusation waits 6x the minimum; independent
    # confirmations shrink it towards the minimum. One slow accuser alone
    # therefore has a long time in which its victim can refute.
    suspicion_max_timeout_mult: int = 6
    # Each broadcast is piggybacked mult * ceil(log10(n+1)) times: the classic
    # epidemic bound that reaches every member with high probability.
    retransmit_mult: int = 4

    # --- dissemination -----------------------------------------------------
    # Gossip every 200 ms to 3 random members: news reaches everyone in a few
    # hundred ms, and rounds with nothing queued send nothing at all.
    gossip_interval: float = 0.2
    gossip_nodes: int = 3
    # Keep telling recently dead members about themselves for 30 s, so a node
    # that was only partitioned hears it was declared dead and refutes.
    gossip_to_the_dead_time: float = 30.0
    # Full state exchange over TCP every 30 s (scaled up for big clusters, see
    # push_pull_scale): the anti-entropy that repairs whatever gossip lost.
    push_pull_interval: float = 30.0
    # Dead and left members are forgotten after this long; until then their
    # tombstone (with its incarnation) stops stale "alive" news resurrecting them.
    dead_reap_time: float = 30.0
    # Every 10 s, try a push-pull with one random dead (not left) member: this
    # is what heals a partition, since probes and gossip skip the dead. One
    # TCP connect per 10 s is negligible; a healed split is whole within ~10 s.
    reconnect_interval: float = 10.0
    # Give up reconnecting to a dead member after an hour: by then the
    # scheduler has long rescheduled its work, and it will rejoin by itself.
    reconnect_timeout: float = 3600.0

    # --- Lifeguard ---------------------------------------------------------
    # Local health multiplier: the node's own score 0..max-1 stretches its probe
    # interval (and timeout, see below) by (score + 1), i.e. up to 8x when this
    # node is the slow one, so it stops accusing healthy peers.
    awareness_max_multiplier: int = 8
    # Orion also stretches the probe timeout, as the Lifeguard paper does and
    # memberlist does not: a starved node reads acks late, so a fixed timeout
    # makes it launch indirect probes (more load on itself) and raise false
    # suspicions exactly when its own slowness is the cause.
    scale_probe_timeout: bool = True
    # Ask indirect probers to nack when the target is silent: a missing nack
    # is the evidence that *we* are the slow one (raises the health score).
    nacks: bool = True
    # Buddy system: a ping to a suspect member carries the suspicion first, so
    # the accused learns of it directly and can refute at once.
    buddy_system: bool = True
    # An indirect prober nacks after this fraction of the probe timeout, so the
    # nack lands before the requester's interval ends (ping-req leaves at
    # timeout, interval = 2 x timeout); at 1.0 it would race the deadline.
    nack_timeout_fraction: float = 0.8

    # --- wire --------------------------------------------------------------
    # Stay under a 1500-byte Ethernet MTU minus IP/UDP headers and the 29 bytes
    # of AES-GCM framing; bigger messages go over TCP instead of fragmenting.
    udp_buffer_size: int = 1400
    # Metadata is gossiped in every alive message, so keep it small (memberlist
    # uses the same 512-byte limit).
    meta_max_bytes: int = 512
    # A push-pull larger than this is refused: bounds memory per connection
    # (~16k members at 256 bytes each).
    tcp_max_frame: int = 4 * 1024 * 1024
    # TCP connect/read budget: a peer that cannot take a frame in 5 s is down.
    tcp_timeout: float = 5.0

    def with_(self, **changes: object) -> GossipConfig:
        """A copy with some knobs changed (tests use short intervals)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def fast(cls, scale: float = 0.1) -> GossipConfig:
        """Every time knob multiplied by ``scale``: same protocol, shorter clock.

        Used by the real-UDP tests so a crash is detected in ~1 s, not ~10 s.
        """
        base = cls()
        return replace(
            base,
            probe_interval=base.probe_interval * scale,
            probe_timeout=base.probe_timeout * scale,
            gossip_interval=base.gossip_interval * scale,
            gossip_to_the_dead_time=base.gossip_to_the_dead_time * scale,
            push_pull_interval=base.push_pull_interval * scale,
            dead_reap_time=base.dead_reap_time * scale,
            reconnect_interval=base.reconnect_interval * scale,
        )

    def plain_swim(self) -> GossipConfig:
        """The same config with all three Lifeguard extensions off (baseline)."""
        return replace(
            self,
            awareness_max_multiplier=1,
            suspicion_max_timeout_mult=1,
            nacks=False,
            buddy_system=False,
            scale_probe_timeout=False,
        )


def suspicion_min_timeout(cfg: GossipConfig, n: int) -> float:
    """``SuspicionMult * max(1, log10 n) * ProbeInterval``."""
    node_scale = max(1.0, math.log10(max(1, n)))
    return cfg.suspicion_mult * node_scale * cfg.probe_interval


def suspicion_confirmations_needed(cfg: GossipConfig, n: int) -> int:
    """K = SuspicionMult - 2 independent confirmations; 0 if the cluster is too small to have them."""
    k = cfg.suspicion_mult - 2
    return 0 if n - 2 < k else max(0, k)


def retransmit_limit(cfg: GossipConfig, n: int) -> int:
    """How many times one broadcast is piggybacked before it is dropped."""
    return cfg.retransmit_mult * max(1, math.ceil(math.log10(n + 1)))


def push_pull_scale(interval: float, n: int) -> float:
    """memberlist's scaling: unchanged up to 32 members, then +1x per doubling.

    A full state exchange costs O(n) bytes, so bigger clusters sync less often;
    gossip still carries every change, push-pull is only the backstop.
    """
    threshold = 32
    if n <= threshold:
        return interval
    return interval * (math.ceil(math.log2(n) - math.log2(threshold)) + 1)
