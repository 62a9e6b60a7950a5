"""The formulas from memberlist/Lifeguard that turn knobs into timeouts."""

from __future__ import annotations

import math

import pytest

from orion.gossip.awareness import Awareness
from orion.gossip.config import (
    GossipConfig,
    push_pull_scale,
    retransmit_limit,
    suspicion_confirmations_needed,
    suspicion_min_timeout,
)
from orion.gossip.suspicion import Suspicion, suspicion_timeout

CFG = GossipConfig()


def test_suspicion_min_is_mult_times_log10_n_probe_intervals_but_never_below_mult():
    assert suspicion_min_timeout(CFG, 1) == 4.0
    assert suspicion_min_timeout(CFG, 10) == 4.0
    assert suspicion_min_timeout(CFG, 100) == pytest.approx(8.0)
    assert suspicion_min_timeout(CFG, 1000) == pytest.approx(12.0)


def test_confirmations_needed_is_mult_minus_two_unless_the_cluster_is_too_small():
    assert suspicion_confirmations_needed(CFG, 10) == 2
    assert suspicion_confirmations_needed(CFG, 4) == 2
    assert suspicion_confirmations_needed(CFG, 3) == 0


def test_a_lone_accusation_waits_the_max_and_k_confirmations_bring_it_to_the_min():
    assert suspicion_timeout(0, 2, 4.0, 24.0) == 24.0
    assert suspicion_timeout(2, 2, 4.0, 24.0) == 4.0
    one = suspicion_timeout(1, 2, 4.0, 24.0)
    assert one == pytest.approx(24.0 - 20.0 * math.log(2) / math.log(3))
    assert 4.0 < one < 24.0
    assert suspicion_timeout(0, 0, 4.0, 24.0) == 4.0  # too small to wait for confirmations


def test_only_new_independent_accusers_shorten_a_suspicion():
    s = Suspicion("a", start=100.0, k=2, min_t=4.0, max_t=24.0)
    assert s.deadline == 124.0
    assert not s.confirm("a")  # the original accuser does not confirm itself
    assert s.confirm("b")
    after_b = s.deadline
    assert after_b < 124.0
    assert not s.confirm("b")
    assert s.deadline == after_b
    assert s.confirm("c")
    assert s.deadline == 104.0
    assert not s.confirm("d")  # k reached: nothing more to shorten


def test_awareness_stays_within_bounds_and_stretches_timeouts_by_score_plus_one():
    a = Awareness(8)
    a.apply_delta(-3)
    assert a.score == 0 and a.scale(1.0) == 1.0
    a.apply_delta(3)
    assert a.scale(0.5) == 2.0
    a.apply_delta(100)
    assert a.score == 7 and a.scale(1.0) == 8.0


def test_retransmit_limit_grows_with_log_of_cluster_size():
    assert retransmit_limit(CFG, 1) == 4
    assert retransmit_limit(CFG, 9) == 4
    assert retransmit_limit(CFG, 10) == 8
    assert retransmit_limit(CFG, 500) == 12


def test_push_pull_slows_down_only_above_32_members():
    assert push_pull_scale(30.0, 32) == 30.0
    assert push_pull_scale(30.0, 33) == 60.0
    assert push_pull_scale(30.0, 100) == 90.0


def test_plain_swim_turns_every_lifeguard_extension_off():
    plain = CFG.plain_swim()
    assert plain.awareness_max_multiplier == 1
    assert plain.suspicion_max_timeout_mult == 1
    assert not plain.nacks and not plain.buddy_system and not plain.scale_probe_timeout
