"""The key rotation planner (orion/control/rotation.py): what is sealed again, in which batches, and
who must hold the new key first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orion.control.rotation import SealedValue, nodes_without, plan, remaining
from orion.domain.model import NODE_DEAD, NodeInfo

values = st.lists(st.builds(SealedValue, kind=st.sampled_from(["secret", "registry"]),
                            name=st.text(alphabet="abc", min_size=1, max_size=3), version=st.integers(0, 5),
                            key_id=st.sampled_from(["new", "old", "older"]), size=st.integers(1, 300)),
                  max_size=40, unique_by=lambda v: (v.kind, v.name, v.version))


@given(values, st.integers(100, 1000))
def test_every_value_not_under_the_primary_is_resealed_once_in_bounded_batches(found, limit):
    batches = plan(found, "new", batch_bytes=limit)
    planned = [v for batch in batches for v in batch]
    assert sorted(planned, key=repr) == sorted((v for v in found if v.key_id != "new"), key=repr)
    assert len(set(planned)) == len(planned)
    for batch in batches:
        assert batch and (sum(v.size for v in batch) <= limit or len(batch) == 1)


def test_a_rotation_that_is_done_plans_nothing_and_leaves_nothing():
    done = [SealedValue("secret", "db", 1, "new", 90), SealedValue("registry", "r:5000", 0, "new", 90)]
    assert plan(done, "new") == [] and remaining(done, "new") == {}


def test_what_is_left_counts_values_per_old_key():
    found = [SealedValue("secret", "a", 1, "old", 1), SealedValue("secret", "a", 2, "old", 1),
             SealedValue("secret", "b", 1, "older", 1), SealedValue("secret", "c", 1, "new", 1)]
    assert remaining(found, "new") == {"old": 2, "older": 1}


def test_only_alive_nodes_without_the_key_hold_a_rotation_back():
    nodes = [NodeInfo("n1", "", "", key_ids=("new", "old")), NodeInfo("n2", "", "", key_ids=("old",)),
             NodeInfo("n3", "", "", key_ids=()), NodeInfo("n4", "", "", status=NODE_DEAD)]
    assert nodes_without("new", nodes) == ["n2", "n3"]
    assert nodes_without("old", nodes) == ["n3"]
