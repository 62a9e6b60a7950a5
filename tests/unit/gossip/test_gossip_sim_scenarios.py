"""Whole-cluster scenarios on the deterministic simulator (virtual time, seeded).

Each test reads as a rule of the protocol. Times asserted are *virtual*
seconds: protocol bounds, not wall-clock measurements.
"""

from __future__ import annotations

from orion.gossip.config import GossipConfig
from orion.gossip.sim import Simulation

CFG = GossipConfig()


def cluster(n, seed=1, cfg=CFG, **net):
    sim = Simulation(cfg, seed=seed, **net)
    names = sim.start_cluster(n)
    assert sim.converged(), "cluster did not form"
    return sim, names


def test_fifty_nodes_joining_through_one_seed_converge_in_a_few_seconds():
    sim = Simulation(CFG, seed=2)
    names = [f"n{i}" for i in range(50)]
    for n in names:
        sim.add_node(n)
    for n in names[1:]:
        sim.join(n, ["n0"])
    t = sim.run_until(sim.converged, timeout=30)
    assert t is not None and t < 5.0
    assert not sim.events_of("suspect") and not sim.events_of("dead")


def test_a_crashed_member_is_declared_dead_by_everyone_and_nobody_else_is():
    sim, names = cluster(20)
    sim.crash("n7")
    crashed_at = sim.now
    t = sim.run_until(lambda: sim.all_see("n7", "dead"), timeout=60)
    assert t is not None
    # suspicion min for n=20 is 4*log10(20) = 5.2 s; a probe round finds it within ~2 s
    assert t - crashed_at < 10.0
    assert {e.event.member.name for e in sim.events_of("dead")} == {"n7"}
    assert {e.event.member.name for e in sim.events_of("suspect")} == {"n7"}


def test_a_paused_member_is_suspected_refutes_and_is_never_declared_dead():
    sim, names = cluster(10)
    before = sim.incarnation_seen("n1", "n3")
    sim.pause("n3", 2.5)  # longer than a probe, shorter than any suspicion timeout
    sim.run_for(20)
    assert sim.events_of("suspect", "n3"), "the pause should have been noticed"
    assert not sim.events_of("dead")
    assert sim.converged()
    assert sim.incarnation_seen("n1", "n3") > before  # it refuted with a higher incarnation


def test_a_partition_is_declared_dead_on_both_sides_and_heals_when_the_network_does():
    sim, names = cluster(10)
    left, right = names[:5], names[5:]
    sim.partition(left, right)
    sim.run_until(lambda: all(sim.all_see(r, "dead", left) for r in right), timeout=60)
    assert all(sim.all_see(r, "dead", left) for r in right)
    assert all(sim.all_see(l_, "dead", right) for l_ in left)
    sim.heal()
    t0 = sim.now
    t = sim.run_until(sim.converged, timeout=60)
    assert t is not None, "partition did not heal"
    assert t - t0 <= 2 * CFG.reconnect_interval + 5


def test_a_restarted_member_refutes_its_own_tombstone_with_a_higher_incarnation():
    sim, names = cluster(8)
    sim.crash("n4")
    sim.run_until(lambda: sim.all_see("n4", "dead"), timeout=60)
    dead_inc = sim.incarnation_seen("n0", "n4")
    sim.restart("n4", seeds=["n0"], incarnation=0)  # same name and address, forgot everything
    t = sim.run_until(sim.converged, timeout=30)
    assert t is not None
    assert all(sim.incarnation_seen(o, "n4") > dead_inc for o in names if o != "n4")
    assert [e.event.kind for e in sim.log if e.observer == "n0" and e.event.member.name == "n4"][-1] == "join"


def test_a_restart_with_a_higher_incarnation_rejoins_at_once():
    sim, names = cluster(8)
    sim.crash("n4")
    sim.run_until(lambda: sim.all_see("n4", "dead"), timeout=60)
    sim.restart("n4", seeds=["n0"], incarnation=1000)
    assert sim.run_until(sim.converged, timeout=5) is not None
    assert sim.incarnation_seen("n7", "n4") == 1000


def test_push_pull_repairs_news_that_heavy_loss_erased_from_gossip():
    cfg = CFG.with_(probe_interval=1000.0, probe_timeout=500.0)  # no probes: only gossip + push-pull
    sim, names = cluster(10, cfg=cfg)
    sim.loss = 1.0  # every datagram lost, TCP still works
    sim.update_meta("n1", {"role": "manager"})
    sim.run_for(5)  # the update's retransmits are all spent into the void
    assert not sim.nodes["n1"].swim._queue.pending()
    assert all(sim.nodes[o].swim.members()[0].meta == {} or o == "n1" for o in names)
    sim.loss = 0.0
    meta_everywhere = lambda: all(  # noqa: E731
        {m.name: m.meta for m in sim.nodes[o].swim.members()}["n1"] == {"role": "manager"} for o in names
    )
    assert not meta_everywhere()
    t = sim.run_until(meta_everywhere, timeout=2 * cfg.push_pull_interval)
    assert t is not None


def test_metadata_updates_propagate_without_a_restart():
    sim, names = cluster(30)
    sim.update_meta("n5", {"used": [1, 2]})

    def informed():
        return sum({m.name: m.meta for m in sim.nodes[o].swim.members()}["n5"] == {"used": [1, 2]} for o in names)

    sim.run_for(2)
    assert informed() >= 27  # gossip reaches almost all at once (a rare miss is push-pull's job)
    assert sim.run_until(lambda: informed() == 30, timeout=2 * CFG.push_pull_interval) is not None
    assert len(sim.events_of("update", "n5")) == 29


def test_a_graceful_leave_is_seen_as_left_not_dead():
    sim, names = cluster(10)
    sim.leave("n2")
    sim.run_for(1)
    sim.crash("n2")
    sim.run_for(10)
    assert sim.all_see("n2", "left", [n for n in names if n != "n2"])
    assert not sim.events_of("dead")


def test_the_same_seed_replays_the_same_history():
    def history(seed):
        sim, _ = cluster(12, seed=seed, loss=0.1)
        sim.crash("n3")
        sim.run_for(20)
        return [(round(e.time, 9), e.observer, e.event.kind, e.event.member.name) for e in sim.log]

    assert history(5) == history(5)
    assert history(5) != history(6)


def test_with_ten_percent_loss_crash_detection_still_has_no_false_positives():
    sim, names = cluster(20, seed=3, loss=0.1)
    sim.crash("n11")
    assert sim.run_until(lambda: sim.all_see("n11", "dead"), timeout=30) is not None
    sim.run_for(30)
    assert {e.event.member.name for e in sim.events_of("dead")} == {"n11"}


def test_lifeguard_a_slow_member_raises_its_own_health_score_and_accuses_nobody_to_death():
    sim, names = cluster(20, seed=4)
    sim.set_slow("n9", max_delay=1.5)  # every message it receives waits up to 1.5 s
    peak = 0
    for _ in range(120):
        sim.run_for(1)
        peak = max(peak, sim.nodes["n9"].swim.health_score)
    assert peak >= 2
    assert not sim.events_of("dead")
