"""The stack planner: the file's services against the cluster's, as typed steps.

Scenarios name each rule; a hypothesis property carries a plan out on a model of
the cluster (every create and update declared, every removal deleted) and checks
that the stack then holds exactly the file's specs, that planning again changes
nothing (a re-deploy is a no-op), and that nothing outside the stack was touched.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from orion.domain.model import TaskSpec
from orion.domain.service import ServiceSpec
from orion.stack.plan import Action, Conflict, Running, plan

MiB = 1 << 20


def spec(name: str, stack: str = "app", image: str = "app:1", count: int = 1) -> ServiceSpec:
    return ServiceSpec(name, TaskSpec(image=image, memory=64 * MiB), count=count, stack=stack)


def running(*specs: ServiceSpec) -> dict[str, Running]:
    return {s.name: Running(s.name, 1, s) for s in specs}


def test_new_services_are_created_changed_ones_updated_and_equal_ones_left_alone():
    desired = {"app_web": spec("app_web", image="app:2"), "app_db": spec("app_db"), "app_new": spec("app_new")}
    current = running(spec("app_web"), spec("app_db"))
    p = plan("app", desired, current, {}, prune=False)
    assert [(s.action, s.name) for s in p.steps] == [(Action.UPDATE, "app_web"), (Action.UNCHANGED, "app_db"),
                                                     (Action.CREATE, "app_new")]
    assert p.steps[0].diff.changed == ("image",) and p.steps[0].version == 1
    assert [s.name for s in p.order()] == ["app_web", "app_new"] and p.changes


def test_services_no_longer_in_the_file_are_kept_without_prune_and_removed_first_with_it():
    desired = {"app_web": spec("app_web", count=2)}
    current = running(spec("app_web"), spec("app_old"))
    kept = plan("app", desired, current, {}, prune=False)
    assert [(s.action, s.name) for s in kept.steps] == [(Action.UPDATE, "app_web"), (Action.KEEP, "app_old")]
    pruned = plan("app", desired, current, {}, prune=True)
    assert [(s.action, s.name) for s in pruned.order()] == [(Action.REMOVE, "app_old"), (Action.UPDATE, "app_web")]


def test_the_same_file_again_plans_no_change():
    desired = {"app_web": spec("app_web"), "app_db": spec("app_db")}
    p = plan("app", desired, running(*desired.values()), {}, prune=True)
    assert not p.changes and {s.action for s in p.steps} == {Action.UNCHANGED} and p.order() == ()


def test_a_name_held_outside_the_stack_is_a_conflict_not_a_takeover():
    desired = {"app_web": spec("app_web"), "app_db": spec("app_db")}
    p = plan("app", desired, {}, {"app_web": "", "app_db": "other"}, prune=True)
    assert p.conflicts == (Conflict("app_web", ""), Conflict("app_db", "other"))
    assert "no stack" in str(p.conflicts[0]) and "stack other" in str(p.conflicts[1])


names = st.sampled_from([f"app_s{i}" for i in range(6)])
versions = st.builds(lambda image, count: (image, count), st.sampled_from(["app:1", "app:2"]), st.integers(1, 3))


@given(desired=st.dictionaries(names, versions, max_size=6), current=st.dictionaries(names, versions, max_size=6),
       foreign=st.dictionaries(st.sampled_from(["web", "other_s1", "app_s5"]), st.sampled_from(["", "other"]),
                               max_size=3),
       prune=st.booleans())
def test_carrying_a_plan_out_makes_the_stack_the_file_and_planning_again_changes_nothing(desired, current, foreign,
                                                                                         prune):
    foreign = {n: s for n, s in foreign.items() if n not in current}
    want = {n: spec(n, image=i, count=c) for n, (i, c) in desired.items()}
    have = {n: spec(n, image=i, count=c) for n, (i, c) in current.items()}
    p = plan("app", want, running(*have.values()), foreign, prune)
    if p.conflicts:
        assert {c.name for c in p.conflicts} == set(want) & set(foreign)
        return
    cluster = dict(have)
    for step in p.order():
        if step.action == Action.REMOVE:
            del cluster[step.name]
        else:
            cluster[step.name] = step.spec
    kept = {n: s for n, s in have.items() if n not in want and not prune}
    assert cluster == {**want, **kept}
    again = plan("app", want, {n: Running(n, 2, s) for n, s in cluster.items()}, foreign, prune)
    assert not again.changes
    assert all(s.name not in foreign for s in p.steps)


def test_a_changed_count_is_an_update_that_replaces_nothing():
    old, new = spec("app_web"), replace(spec("app_web"), count=3)
    step = plan("app", {"app_web": new}, running(old), {}, prune=False).steps[0]
    assert (step.action, step.diff.changed, step.diff.replace) == (Action.UPDATE, ("count",), False)
