"""The protocol's rules, one core at a time, driven by hand (no network, no clock)."""

from __future__ import annotations

import random

import pytest

from orion.gossip.config import GossipConfig, retransmit_limit
from orion.gossip.member import Member
from orion.gossip.messages import (
    TCP,
    Ack,
    Alive,
    Compound,
    Dead,
    IndirectPing,
    Nack,
    NodeState,
    Ping,
    PushPull,
    Suspect,
)
from orion.gossip.swim import Swim

CFG = GossipConfig()


def addr(name):
    return (name, 7946)


def make(name="a", inc=0, cfg=CFG, knows=(), seed=1):
    core = Swim(cfg, Member(name, addr(name), {"id": name}, inc), random.Random(seed))
    for n in knows:
        core.handle(0.0, addr(n), Alive(1, n, addr(n), {"id": n}))
    core.events()
    return core


def flat(outs):
    """(dest, message) pairs with compounds opened."""
    res = []
    for o in outs:
        parts = o.msg.parts if isinstance(o.msg, Compound) else (o.msg,)
        res.extend((o.dest, p) for p in parts)
    return res


def of_type(outs, cls):
    return [(d, m) for d, m in flat(outs) if isinstance(m, cls)]


def seen(core, name):
    return {m.name: m for m in core.members()}[name]


def run_until_ping(core, start=0.0, step=0.01, limit=20.0):
    t = start
    while t < start + limit:
        pings = of_type(core.tick(t), Ping)
        if pings:
            return t, pings[0]
        t = round(t + step, 6)
    raise AssertionError("no probe sent")


# --- ping / ack -----------------------------------------------------------------------------


def test_a_ping_addressed_to_us_is_acked_with_its_sequence_number():
    a = make()
    outs = a.handle(0.0, addr("b"), Ping(7, "a", "b"))
    assert of_type(outs, Ack) == [(addr("b"), Ack(7))]


def test_a_ping_meant_for_another_name_on_our_address_is_not_acked():
    a = make()
    assert of_type(a.handle(0.0, addr("b"), Ping(7, "old-a", "b")), Ack) == []


def test_an_indirect_probe_pings_the_target_and_forwards_its_ack():
    a = make(knows=["c"])
    outs = a.handle(0.0, addr("b"), IndirectPing(5, "c", addr("c"), True, "b"))
    [(dest, ping)] = of_type(outs, Ping)
    assert dest == addr("c") and ping.target == "c"
    assert of_type(a.handle(0.1, addr("c"), Ack(ping.seq)), Ack) == [(addr("b"), Ack(5))]
    assert of_type(a.tick(5.0), Nack) == []  # answered: no nack later


def test_an_indirect_prober_nacks_when_the_target_stays_silent():
    a = make(knows=["c"])
    a.handle(0.0, addr("b"), IndirectPing(5, "c", addr("c"), True, "b"))
    assert of_type(a.tick(0.3), Nack) == []
    assert of_type(a.tick(CFG.probe_timeout * CFG.nack_timeout_fraction), Nack) == [(addr("b"), Nack(5))]


# --- incarnation rules ----------------------------------------------------------------------


def test_alive_news_needs_a_strictly_higher_incarnation():
    a = make(knows=["b"])
    a.handle(1.0, addr("b"), Alive(1, "b", addr("b"), {"id": "b", "role": "x"}))
    assert seen(a, "b").meta == {"id": "b"}
    a.handle(1.0, addr("b"), Alive(2, "b", addr("b"), {"id": "b", "role": "x"}))
    assert seen(a, "b").meta == {"id": "b", "role": "x"} and seen(a, "b").incarnation == 2
    assert [e.kind for e in a.events()] == ["update"]


def test_suspect_news_from_an_older_incarnation_is_ignored():
    a = make(knows=["b"])
    a.handle(1.0, addr("b"), Alive(5, "b", addr("b"), {}))
    a.handle(1.0, addr("c"), Suspect(4, "b", "c"))
    assert seen(a, "b").state == "alive"
    a.handle(1.0, addr("c"), Suspect(5, "b", "c"))
    assert seen(a, "b").state == "suspect"


def test_a_suspicion_about_ourselves_is_refuted_at_a_higher_incarnation():
    a = make(inc=3, knows=["b", "c"])
    a.handle(1.0, addr("b"), Suspect(3, "a", "b"))
    assert a.incarnation == 4
    assert a.health_score == 1  # being suspected is a hint that we are the slow one
    alive = [m for _, m in of_type(a.tick(100.0), Alive) if m.node == "a"]
    assert alive and alive[0].incarnation == 4


def test_a_death_notice_about_ourselves_is_refuted_too():
    a = make(inc=3, knows=["b"])
    a.handle(1.0, addr("b"), Dead(7, "a", "b"))
    assert a.incarnation == 8


def test_stale_news_about_ourselves_is_not_refuted():
    a = make(inc=3, knows=["b"])
    a.handle(1.0, addr("b"), Suspect(2, "a", "b"))
    a.handle(1.0, addr("b"), Alive(3, "a", addr("a"), {"id": "a"}))
    assert a.incarnation == 3 and a.health_score == 0


def test_a_gossiped_older_life_of_ours_with_other_metadata_is_outbid():
    a = make(inc=3, knows=["b"])
    a.handle(1.0, addr("b"), Alive(3, "a", addr("a"), {"id": "previous-process"}))
    assert a.incarnation == 4


def test_dead_news_needs_an_incarnation_at_least_ours_and_a_self_notice_means_left():
    a = make(knows=["b", "c"])
    a.handle(1.0, addr("c"), Alive(4, "b", addr("b"), {}))
    a.events()
    a.handle(1.0, addr("c"), Dead(3, "b", "c"))
    assert seen(a, "b").state == "alive"
    a.handle(1.0, addr("b"), Dead(4, "b", "b"))
    assert seen(a, "b").state == "left"
    a.handle(1.0, addr("c"), Dead(1, "c", "b"))
    assert seen(a, "c").state == "dead"
    assert [(e.kind, e.source) for e in a.events()] == [("left", "b"), ("dead", "b")]


def test_a_refutation_ends_the_suspicion_and_the_member_is_alive_again():
    a = make(knows=["b", "c", "d"])
    a.handle(1.0, addr("c"), Suspect(1, "b", "c"))
    a.handle(2.0, addr("b"), Alive(2, "b", addr("b"), {"id": "b"}))
    a.tick(500.0)
    assert seen(a, "b").state == "alive"
    assert [e.kind for e in a.events()] == ["suspect", "alive"]


# --- Lifeguard: dynamic suspicion -----------------------------------------------------------


def test_a_lone_suspicion_waits_the_max_timeout_before_declaring_dead():
    a = make(knows=["b", "c", "d"])  # n = 4: k = 2, min = 4 s, max = 24 s
    a.handle(0.0, addr("c"), Suspect(1, "b", "c"))
    a.tick(23.9)
    assert seen(a, "b").state == "suspect"
    a.tick(24.0)
    assert seen(a, "b").state == "dead"
    dead = [e for e in a.events() if e.kind == "dead"]
    assert dead[0].source == "a"  # our own timer fired


def test_independent_confirmations_shrink_the_suspicion_to_the_min():
    a = make(knows=["b", "c", "d", "e"])
    a.handle(0.0, addr("c"), Suspect(1, "b", "c"))
    a.handle(0.5, addr("d"), Suspect(1, "b", "d"))
    a.handle(0.6, addr("d"), Suspect(1, "b", "d"))  # the same accuser again counts once
    a.tick(4.5)
    assert seen(a, "b").state == "suspect"
    a.handle(0.7, addr("e"), Suspect(1, "b", "e"))
    a.tick(4.5)
    assert seen(a, "b").state == "dead"


def test_with_lifeguard_off_a_suspicion_lasts_exactly_the_min():
    a = make(cfg=CFG.plain_swim(), knows=["b", "c", "d"])
    a.handle(0.0, addr("c"), Suspect(1, "b", "c"))
    a.tick(4.0)
    assert seen(a, "b").state == "dead"


# --- probing, nacks and the local health multiplier -------------------------------------------


def _failed_probe(a, nacks):
    t, (target_addr, ping) = run_until_ping(a)
    outs = a.tick(t + CFG.probe_timeout)
    relays = of_type(outs, IndirectPing)
    assert len(relays) == 3 and all(r.target == ping.target and r.nack for _, r in relays)
    assert target_addr not in [d for d, _ in relays]
    for _ in range(nacks):
        a.handle(t + 0.8, relays[0][0], Nack(ping.seq))
    a.tick(t + CFG.probe_interval)
    return ping.target


def test_a_probe_without_ack_goes_indirect_then_suspects_and_nacks_show_we_are_healthy():
    a = make(knows=["b", "c", "d", "e"])
    target = _failed_probe(a, nacks=3)
    assert seen(a, target).state == "suspect"
    assert a.health_score == 0


def test_missing_nacks_raise_our_health_score():
    a = make(knows=["b", "c", "d", "e"])
    _failed_probe(a, nacks=1)
    assert a.health_score == 2


def test_an_acked_probe_lowers_the_health_score():
    a = make(knows=["b", "c"])
    a.awareness.apply_delta(2)
    t, (_, ping) = run_until_ping(a)
    a.handle(t + 0.01, addr(ping.target), Ack(ping.seq))
    assert a.health_score == 1


@pytest.mark.parametrize("scale_timeout, expect_indirect_after", [(True, 2.0), (False, 0.5)])
def test_a_poor_health_score_stretches_the_probe_interval_and_timeout(scale_timeout, expect_indirect_after):
    a = make(cfg=CFG.with_(scale_probe_timeout=scale_timeout), knows=["b", "c", "d"])
    a.awareness.apply_delta(3)  # multiplier 4
    t1, _ = run_until_ping(a)
    assert of_type(a.tick(t1 + expect_indirect_after - 0.01), IndirectPing) == []
    assert of_type(a.tick(t1 + expect_indirect_after), IndirectPing)
    a.awareness.apply_delta(-10)
    for _ in range(3):
        a.handle(t1 + 1.0, addr("b"), Nack(0))  # irrelevant sequence numbers change nothing
    t2, _ = run_until_ping(a, start=t1 + 0.01)
    assert t2 == pytest.approx(t1 + 4 * CFG.probe_interval)


def test_buddy_system_a_ping_to_a_suspect_carries_the_suspicion_first():
    a = make(knows=["b"])
    a.handle(0.0, addr("c"), Suspect(1, "b", "c"))
    t = 0.0
    while not of_type(outs := a.tick(t), Ping):
        t += 0.01
    [ping_out] = [o for o in outs if isinstance(o.msg, Compound) and any(isinstance(p, Ping) for p in o.msg.parts)]
    assert isinstance(ping_out.msg.parts[0], Suspect) and ping_out.msg.parts[0].node == "b"


# --- dissemination --------------------------------------------------------------------------


def test_each_piece_of_news_is_retransmitted_exactly_retransmit_limit_times():
    a = make(knows=["b", "c", "d"])
    a.handle(0.0, addr("b"), Alive(1, "x", addr("x"), {}))
    sent = 0
    for i in range(400):
        sent += sum(1 for _, m in flat(a.tick(i * 0.05)) if isinstance(m, Alive) and m.node == "x")
    assert sent == retransmit_limit(CFG, a.num_alive())


def test_updated_metadata_is_gossiped_at_a_new_incarnation():
    a = make(knows=["b"])
    a.update_meta({"id": "a", "role": "manager"})
    assert a.incarnation == 1
    news = [m for _, m in of_type(a.tick(10.0), Alive) if m.node == "a"]
    assert news[-1] == Alive(1, "a", addr("a"), {"id": "a", "role": "manager"})
    with pytest.raises(ValueError):
        a.update_meta({"blob": "x" * 1000})


def test_a_graceful_leave_is_announced_as_a_dead_notice_from_ourselves():
    a = make(knows=["b", "c"])
    outs = a.leave(1.0)
    assert any(m == Dead(0, "a", "a") for _, m in flat(outs))
    b = make("b", knows=["a"])
    b.handle(1.0, addr("a"), Dead(1, "a", "a"))
    assert seen(b, "a").state == "left"


# --- push-pull ------------------------------------------------------------------------------


def test_push_pull_replies_with_full_state_and_treats_remote_deaths_as_suspicions():
    a = make(knows=["b"])
    req = PushPull("c", addr("c"), True, False, (
        NodeState("c", addr("c"), {}, 1, "alive"),
        NodeState("b", addr("b"), {}, 1, "dead"),
    ))
    outs = a.handle(0.0, ("127.0.0.1", 55555), req)
    [reply] = [o for o in outs if o.via == TCP]
    assert reply.dest == addr("c") and reply.msg.reply
    assert {s.name for s in reply.msg.states} == {"a", "b", "c"}
    assert seen(a, "c").state == "alive"
    assert seen(a, "b").state == "suspect"  # not dead: b gets its chance to refute


def test_joining_is_a_push_pull_with_each_seed():
    a = make()
    outs = a.join(0.0, [addr("s1"), addr("s2"), addr("a")])
    assert [(o.dest, o.via, o.msg.join) for o in outs] == [(addr("s1"), TCP, True), (addr("s2"), TCP, True)]
