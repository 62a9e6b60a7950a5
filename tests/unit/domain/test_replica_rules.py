"""The two replica rules, stated once (``orion/domain/replicas.py``): which states free a slot, and
which group a task belongs to. The machine (scaling, relabelling), the deployment planner and
the drain planner all read them from there."""

from __future__ import annotations

import pytest

from orion.control.deployment import Replica
from orion.domain.model import (
    DESIRED_RUN,
    DESIRED_STOP,
    TASK_STATES,
    TERMINAL_STATES,
    Task,
    TaskSpec,
)
from orion.domain.replicas import FREES_SLOT, group_of, holds_slot


def test_an_ended_replica_frees_its_slot_but_a_lost_one_keeps_it():
    assert TERMINAL_STATES - {"lost"} == FREES_SLOT
    assert [s for s in TASK_STATES if holds_slot(DESIRED_RUN, s)] == [
        "pending", "assigned", "running", "stopping", "lost"]
    assert not any(holds_slot(DESIRED_STOP, s) for s in TASK_STATES)


@pytest.mark.parametrize("state", TASK_STATES)
def test_the_deployment_planner_counts_slots_by_the_same_rule(state):
    assert Replica("web.0.d1", 0, 1, state=state).live == holds_slot(DESIRED_RUN, state)


def test_a_task_is_in_the_group_it_carries_or_heads_its_own():
    spec = TaskSpec("img", 1 << 20)
    head, member = Task("solo", spec), Task("x1", TaskSpec("img", 1 << 20, group="solo"))
    assert group_of(head) == group_of(member) == "solo"
    assert group_of(Task("a1", TaskSpec("img", 1 << 20, group="g7"))) == "g7"
