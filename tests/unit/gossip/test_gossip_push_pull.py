"""Digest-first push-pull: equal views swap digests only, different views swap tables both ways,
and nodes from before digests are still answered in kind."""

from __future__ import annotations

import random

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from orion.gossip import codec
from orion.gossip.codec import encoded_size
from orion.gossip.config import GossipConfig
from orion.gossip.member import ALIVE, DEAD, LEFT, STATES, SUSPECT, Member
from orion.gossip.messages import TCP, NodeState, PushPull
from orion.gossip.push_pull import table_digest
from orion.gossip.sim import Simulation
from orion.gossip.swim import Swim

CFG = GossipConfig()


def addr(name):
    return (name, 7946)


def core(name):
    return Swim(CFG, Member(name, addr(name), {"id": name, "labels": {"zone": "a", "rack": "r1"}}),
                random.Random(name))


def exchange(cores, outs, now=1.0):
    """Deliver push-pulls (TCP) until nobody answers; UDP is dropped so only push-pull speaks.
    Returns the transcript as (src, dest, kind) with kind digest/full and request/reply."""
    by_addr = {c.addr: c for c in cores}
    pending, transcript = list(outs), []
    while pending:
        out = pending.pop(0)
        if out.via != TCP or out.dest not in by_addr:
            continue
        msg = out.msg
        kind = ("full" if msg.states else "digest") + (" reply" if msg.reply else " request")
        transcript.append((msg.source, by_addr[out.dest].name, kind))
        pending += by_addr[out.dest].handle(now, addr(msg.source), msg)
    return transcript


def push_pull_from(c, now=100.0):
    """Tick ``c`` until its periodic push-pull leaves; only that message is returned."""
    return [o for o in c.tick(now) if o.via == TCP]


def view(c):
    return {m.name: (m.incarnation, m.state, m.meta) for m in c.members()}


def digest_of(c):
    return table_digest(NodeState(m.name, m.addr, m.meta, m.incarnation, m.state) for m in c.members())


def test_equal_views_exchange_digests_only():
    a, b = core("a"), core("b")
    exchange([a, b], a.join(0.0, [b.addr]))  # a full exchange: now both hold the same two rows
    assert view(a) == view(b)
    assert exchange([a, b], push_pull_from(a), 100.0) == [("a", "b", "digest request"), ("b", "a", "digest reply")]
    assert b.stats["push_pull_in_sync"] == 1 and b.stats["push_pull_out_of_sync"] == 0


def test_different_views_exchange_full_tables_both_ways_and_are_then_equal():
    a, b, d = core("a"), core("b"), core("d")
    exchange([a, b], a.join(0.0, [b.addr]))
    exchange([b, d], d.join(0.0, [b.addr]))  # only b knows d
    a.update_meta({"id": "a", "role": "manager"})  # and only a knows this (its gossip is dropped)
    assert "d" not in view(a) and view(b)["a"] != view(a)["a"]
    assert exchange([a, b], push_pull_from(a), 100.0) == [  # b is a's only peer
        ("a", "b", "digest request"),
        ("b", "a", "full request"),  # b's table, asking for a's
        ("a", "b", "full reply"),
    ]
    assert view(a) == view(b) and set(view(a)) == {"a", "b", "d"}
    assert digest_of(a) == digest_of(b)  # so the next push-pull between them is digests only
    assert b.stats["push_pull_out_of_sync"] == 1


def test_an_old_nodes_full_push_pull_still_decodes_and_is_answered_in_kind():
    a = core("a")
    old_wire = [PushPull.TYPE, "o", ["o", 7946], False, False, [["o", ["o", 7946], {}, 3, "alive"]]]  # no digest
    msg = codec.decode(bytes((codec.PROTOCOL_VERSION, 0)) + msgpack.packb(old_wire, use_bin_type=True))
    assert msg == PushPull("o", addr("o"), False, False, (NodeState("o", addr("o"), {}, 3, ALIVE),))
    [reply] = [o for o in a.handle(0.0, addr("o"), msg) if o.via == TCP]
    assert reply.dest == addr("o") and reply.msg.reply
    assert {s.name for s in reply.msg.states} == {"a", "o"}
    assert codec.from_wire(codec.to_wire(reply.msg)[:6]).states == reply.msg.states  # what an old decoder reads


def test_an_old_node_that_answers_our_digest_in_full_gets_our_table_pushed_back():
    a = core("a")
    a.handle(0.0, addr("o"), PushPull("o", addr("o"), True, True, (NodeState("o", addr("o"), {}, 3, ALIVE),), b""))
    [probe] = push_pull_from(a)
    assert probe.dest == addr("o") and not probe.msg.states  # to an old node: it ignores the digest field
    old_reply = PushPull("o", addr("o"), False, True, (NodeState("o", addr("o"), {}, 3, ALIVE),))
    [push] = [o for o in a.handle(101.0, addr("o"), old_reply) if o.via == TCP]
    assert push.msg.reply and {s.name for s in push.msg.states} == {"a", "o"}  # one way: a reply is not answered
    new_reply = PushPull("o", addr("o"), False, True, (NodeState("o", addr("o"), {}, 3, ALIVE),), b"x" * 16)
    assert not [o for o in a.handle(102.0, addr("o"), new_reply) if o.via == TCP]


def test_tombstones_alone_do_not_make_views_differ():
    live = (NodeState("a", addr("a"), {}, 1, ALIVE), NodeState("b", addr("b"), {}, 2, SUSPECT))
    gone = (NodeState("c", addr("c"), {}, 5, DEAD), NodeState("d", addr("d"), {}, 1, LEFT))
    # Either side may have reaped them already; merging them would change neither.
    assert table_digest(live + gone) == table_digest(live) == table_digest(live + gone[:1])


# --- the digest as a function -----------------------------------------------------------------

ints = st.integers(-(2**63), 2**63 - 1)  # what msgpack carries
metas = st.dictionaries(st.text(max_size=4), st.one_of(ints, st.text(max_size=4), st.lists(ints, max_size=3)),
                        max_size=4)
rows = st.lists(
    st.builds(NodeState, st.text(min_size=1, max_size=6), st.tuples(st.text(max_size=4), st.integers(0, 65535)),
              metas, st.integers(0, 2**40), st.sampled_from(STATES)),
    min_size=1, max_size=12, unique_by=lambda r: r.name,
)


def reordered(r: NodeState, rnd: random.Random) -> NodeState:
    items = list(r.meta.items())
    rnd.shuffle(items)
    return NodeState(r.name, r.addr, dict(items), r.incarnation, r.state)


def live(r: NodeState) -> bool:
    return r.state in (ALIVE, SUSPECT)


@given(rows, st.randoms(use_true_random=False))
def test_the_digest_does_not_depend_on_row_or_metadata_key_order(table, rnd):
    shuffled = [reordered(r, rnd) for r in table]
    rnd.shuffle(shuffled)
    assert table_digest(shuffled) == table_digest(table)


@given(rows, st.data())
def test_the_digest_changes_when_a_live_rows_incarnation_or_state_changes(table, data):
    i = data.draw(st.integers(0, len(table) - 1))
    r = table[i]
    inc = data.draw(st.integers(0, 2**40).filter(lambda x: x != r.incarnation))
    state = data.draw(st.sampled_from([s for s in STATES if s != r.state]))
    bumped = NodeState(r.name, r.addr, r.meta, inc, r.state)
    moved = NodeState(r.name, r.addr, r.meta, r.incarnation, state)
    if live(r):
        assert table_digest([*table[:i], bumped, *table[i + 1:]]) != table_digest(table)
    if live(r) or state in (ALIVE, SUSPECT):
        assert table_digest([*table[:i], moved, *table[i + 1:]]) != table_digest(table)


# --- a whole cluster ----------------------------------------------------------------------------


def test_a_healed_partition_converges_and_then_push_pulls_only_swap_digests():
    sim = Simulation(CFG, seed=3)
    names = sim.start_cluster(10)
    left, right = names[:5], names[5:]
    sim.partition(left, right)
    assert sim.run_until(lambda: all(sim.all_see(r, "dead", left) for r in right)
                         and all(sim.all_see(x, "dead", right) for x in left), timeout=60) is not None
    sim.heal()
    assert sim.run_until(sim.converged, timeout=2 * CFG.reconnect_interval + 5) is not None

    def count(key):
        return sum(n.swim.stats[key] for n in sim.nodes.values())

    assert count("push_pull_out_of_sync") > 0  # the heal went through full exchanges
    sim.run_for(CFG.dead_reap_time + CFG.push_pull_interval)  # let refutations and reconnects settle
    before = count("push_pull_in_sync"), count("push_pull_out_of_sync")
    sim.run_for(2 * CFG.push_pull_interval)
    assert count("push_pull_in_sync") >= before[0] + len(names)  # everyone pushed-pulled, twice
    assert count("push_pull_out_of_sync") == before[1]
    assert sim.converged()


def test_steady_state_push_pull_carries_no_table_bytes():
    sim = Simulation(CFG, seed=4, measure_bytes=True)
    names = sim.start_cluster(20)
    sim.run_for(CFG.push_pull_interval)
    for node in sim.nodes.values():
        node.stats.clear()
    sim.run_for(2 * CFG.push_pull_interval)
    table = tuple(NodeState(m.name, m.addr, m.meta, m.incarnation, m.state) for m in sim.nodes["n0"].swim.members())
    full_size = encoded_size(PushPull("n0", addr("n0"), False, False, table, table_digest(table)))
    tcp_msgs = sum(sim.nodes[n].stats["tcp_out"] for n in names)
    tcp_bytes = sum(sim.nodes[n].stats["tcp_bytes_out"] for n in names)
    assert tcp_msgs >= 2 * len(names)  # every node asked (and was answered) at least once
    assert tcp_bytes / tcp_msgs < full_size / 5  # ~50-byte digests, not 20-row tables
