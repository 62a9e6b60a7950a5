"""``n`` of the Lifeguard formulas (MemberTable.num_alive) is kept as the rules change states,
not recounted: whatever news arrives, in any order, it equals a recount of the table."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from orion.gossip.config import GossipConfig
from orion.gossip.member import ALIVE, DEAD, SUSPECT, Member
from orion.gossip.messages import Alive, Dead, NodeState, PushPull, Suspect
from orion.gossip.swim import Swim

NAMES = ("b", "c", "d", "e")
# A short tombstone so that reaping (and a member coming back after it) happens within a run.
CFG = GossipConfig(dead_reap_time=5.0)


def addr(name: str) -> tuple[str, int]:
    return (name, 7946)


def recount(core: Swim) -> int:
    return sum(1 for m in core.members() if m.state in (ALIVE, SUSPECT))


news = st.one_of(
    st.builds(lambda n, i: Alive(i, n, addr(n), {"id": n}), st.sampled_from(NAMES), st.integers(0, 4)),
    st.builds(lambda n, i, by: Suspect(i, n, by), st.sampled_from(NAMES), st.integers(0, 4), st.sampled_from(NAMES)),
    st.builds(lambda n, i, by: Dead(i, n, by), st.sampled_from(NAMES), st.integers(0, 4),
              st.sampled_from(NAMES)),  # by == n is a graceful leave
    st.builds(lambda n, i, state: PushPull("z", addr("z"), False, False,
                                           (NodeState(n, addr(n), {"id": n}, i, state),)),
              st.sampled_from(NAMES), st.integers(0, 4), st.sampled_from([ALIVE, SUSPECT, DEAD, "left"])),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(news, st.floats(0.0, 3.0)), max_size=40))
def test_num_alive_equals_a_recount_after_any_news(steps) -> None:
    core = Swim(CFG, Member("a", addr("a"), {"id": "a"}, 0), random.Random(1))
    now = 0.0
    assert core.num_alive() == 1
    for msg, wait in steps:
        now += wait
        core.handle(now, addr("z"), msg)
        core.tick(now)  # suspicions run out, tombstones are reaped
        assert core.num_alive() == recount(core)


def test_a_death_and_a_return_move_the_count() -> None:
    core = Swim(CFG, Member("a", addr("a"), {"id": "a"}, 0), random.Random(1))
    core.handle(0.0, addr("b"), Alive(1, "b", addr("b"), {"id": "b"}))
    assert core.num_alive() == 2
    core.handle(0.1, addr("c"), Dead(1, "b", "c"))
    assert core.num_alive() == 1 and [m.state for m in core.members() if m.name == "b"] == [DEAD]
    core.handle(0.2, addr("b"), Alive(2, "b", addr("b"), {"id": "b"}))  # it refutes: back
    assert core.num_alive() == 2
