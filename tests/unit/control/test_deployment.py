"""The rolling-update planner, read as transcripts and properties.

Each transcript drives :class:`RolloutSim` (tests/unit/control/deployment_sim.py):
one line per leader pass at time ``t``, the deployment's state after the
pass, the replicas the pass saw (``slot:version`` with ``*`` healthy, ``~``
starting, ``.`` pending, ``_`` stopping, ``!`` unhealthy, ``x`` exited) and
what it decided (``+`` start, ``-`` stop). The world moves 5 s between passes.
"""

from __future__ import annotations

import json
from dataclasses import replace

from deployment_sim import Behaviour, RolloutSim
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.control import deployment as dp
from orion.domain.model import FAILED, LOST, PENDING, RUNNING
from orion.domain.service import CANCELLED, HEALTHY, UNHEALTHY, UpdatePolicy

V1 = Behaviour("app:1")


def lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.strip("\n").splitlines()]


def rollout(count: int = 3, *, v2: Behaviour, **update) -> RolloutSim:
    sim = RolloutSim(count, UpdatePolicy(**{"min_healthy_time": 10.0, **update}))
    sim.seed(V1)
    sim.declare(v2)
    return sim


# -- transcripts -----------------------------------------------------------------------------------


def test_start_first_replaces_one_replica_at_a_time_and_keeps_capacity():
    """Nomad/Swarm rule: max_parallel 1; an old replica stops only once its successor counted."""
    sim = rollout(v2=Behaviour("app:2", healthy_after=5.0))
    assert [line.rstrip() for line in sim.run()] == lines("""
t=0   running    0:v1* 1:v1* 2:v1*                   +web.0.d2
t=5   running    0:v1* 0:v2~ 1:v1* 2:v1*             .
t=10  running    0:v1* 0:v2* 1:v1* 2:v1*             .
t=15  running    0:v1* 0:v2* 1:v1* 2:v1*             +web.1.d2 -web.0.d1
t=20  running    0:v2* 1:v1* 1:v2~ 2:v1*             .
t=25  running    0:v2* 1:v1* 1:v2* 2:v1*             .
t=30  running    0:v2* 1:v1* 1:v2* 2:v1*             +web.2.d2 -web.1.d1
t=35  running    0:v2* 1:v2* 2:v1* 2:v2~             .
t=40  running    0:v2* 1:v2* 2:v1* 2:v2*             .
t=45  running    0:v2* 1:v2* 2:v1* 2:v2*             -web.2.d1
t=50  successful 0:v2* 1:v2* 2:v2*                   .
""")


def test_a_static_host_port_updates_stop_first_even_when_start_first_was_asked():
    """Every node holds the port: the new replica waits (pending) until its predecessor stopped."""
    sim = RolloutSim(3, UpdatePolicy(min_healthy_time=10.0, order="start-first"), static_ports=True)
    sim.seed(V1)
    sim.declare(Behaviour("app:2", healthy_after=5.0))
    assert [line.rstrip() for line in sim.run()] == lines("""
t=0   running    0:v1* 1:v1* 2:v1*                   +web.0.d2 -web.0.d1
t=5   running    0:v2. 1:v1* 2:v1*                   .
t=10  running    0:v2~ 1:v1* 2:v1*                   .
t=15  running    0:v2* 1:v1* 2:v1*                   .
t=20  running    0:v2* 1:v1* 2:v1*                   +web.1.d2 -web.1.d1
t=25  running    0:v2* 1:v2. 2:v1*                   .
t=30  running    0:v2* 1:v2~ 2:v1*                   .
t=35  running    0:v2* 1:v2* 2:v1*                   .
t=40  running    0:v2* 1:v2* 2:v1*                   +web.2.d2 -web.2.d1
t=45  running    0:v2* 1:v2* 2:v2.                   .
t=50  running    0:v2* 1:v2* 2:v2~                   .
t=55  running    0:v2* 1:v2* 2:v2*                   .
t=60  successful 0:v2* 1:v2* 2:v2*                   .
""")


def test_a_version_that_never_gets_healthy_is_reverted_at_its_deadline():
    """Nomad's auto_revert: the deadline fails the deployment; the last stable version comes back
    as a new version, relabelling the replicas that never left it (no needless restart)."""
    sim = rollout(v2=Behaviour("app:2", healthy_after=None), healthy_deadline=30.0, auto_revert=True)
    assert [line.rstrip() for line in sim.run()] == lines("""
t=0   running    0:v1* 1:v1* 2:v1*                   +web.0.d2
t=5   running    0:v1* 0:v2~ 1:v1* 2:v1*             .
t=10  running    0:v1* 0:v2~ 1:v1* 2:v1*             .
t=15  running    0:v1* 0:v2~ 1:v1* 2:v1*             .
t=20  running    0:v1* 0:v2~ 1:v1* 2:v1*             .
t=25  running    0:v1* 0:v2~ 1:v1* 2:v1*             .
t=30  reverted   0:v1* 0:v2~ 1:v1* 2:v1*             .
      revert to v1: declared again as v3, deployment web#3
t=35  running    0:v2~ 0:v3* 1:v3* 2:v3*             -web.0.d2
t=40  successful 0:v3* 1:v3* 2:v3*                   .
""")
    assert sim.history[-1].reason == "replica web.0.d2 was not healthy within 30s; reverting to version 1"


def test_a_new_replica_that_exits_fails_the_deployment_and_the_revert_refills_its_slot():
    sim = rollout(v2=Behaviour("app:2", healthy_after=5.0, exits_after=15.0), healthy_deadline=60.0,
                  auto_revert=True)
    assert [line.rstrip() for line in sim.run()] == lines("""
t=0   running    0:v1* 1:v1* 2:v1*                   +web.0.d2
t=5   running    0:v1* 0:v2~ 1:v1* 2:v1*             .
t=10  running    0:v1* 0:v2* 1:v1* 2:v1*             .
t=15  running    0:v1* 0:v2* 1:v1* 2:v1*             +web.1.d2 -web.0.d1
t=20  reverted   0:v2x 1:v1* 1:v2~ 2:v1*             .
      revert to v1: declared again as v3, deployment web#3
t=25  running    0:v2x 1:v2* 1:v3* 2:v3*             +web.0.d3 -web.0.d2 -web.1.d2
t=30  running    0:v3~ 1:v3* 2:v3*                   .
t=35  running    0:v3* 1:v3* 2:v3*                   .
t=40  successful 0:v3* 1:v3* 2:v3*                   .
""")


def test_without_auto_revert_a_failure_stops_the_rollout_where_it_is():
    sim = rollout(v2=Behaviour("app:2", healthy_after=5.0, unhealthy_after=15.0))
    assert [line.rstrip() for line in sim.run()] == lines("""
t=0   running    0:v1* 1:v1* 2:v1*                   +web.0.d2
t=5   running    0:v1* 0:v2~ 1:v1* 2:v1*             .
t=10  running    0:v1* 0:v2* 1:v1* 2:v1*             .
t=15  running    0:v1* 0:v2* 1:v1* 2:v1*             +web.1.d2 -web.0.d1
t=20  failed     0:v2! 1:v1* 1:v2~ 2:v1*             .
""")
    assert sim.deployment.reason == "replica web.0.d2 is unhealthy"
    assert dp.plan(sim.view(), sim.now + 1000).start == ()  # a failed deployment decides nothing more


def test_a_new_leader_mid_deployment_decides_the_same_next_step():
    """The planner keeps nothing between passes: a leader elected mid-rollout reads the replicated
    deployment record and replicas and goes on; no replica is replaced twice."""
    calm = rollout(v2=Behaviour("app:2", healthy_after=5.0)).run()
    sim = rollout(v2=Behaviour("app:2", healthy_after=5.0))
    for _ in range(3):
        sim.step()
    # t=15: the old leader decides and commits, then loses leadership.
    old_leader = dp.plan(sim.view(), sim.now)
    # A new leader that did not see the commit decides exactly the same (same ids, same stops)...
    record = dp.Deployment.from_dict(json.loads(json.dumps(sim.deployment.to_dict())))
    assert dp.plan(replace(sim.view(), deployment=record), sim.now) == old_leader
    sim.apply(old_leader)
    # ...and one that did see it decides nothing new at the same moment.
    again = dp.plan(sim.view(), sim.now)
    assert (again.start, again.stop) == ((), ())
    sim.lines.append(calm[3])  # the old leader's pass, as the calm run printed it
    sim.tick()
    assert sim.run() == calm  # created-twice is asserted by the simulator on every start


def test_a_fresh_service_starts_every_replica_at_once():
    sim = RolloutSim(3, UpdatePolicy(min_healthy_time=5.0))
    sim.declare(Behaviour("app:1", healthy_after=5.0))
    assert [line.rstrip() for line in sim.run()] == lines("""
t=0   running                                        +web.0.d1 +web.1.d1 +web.2.d1
t=5   running    0:v1~ 1:v1~ 2:v1~                   .
t=10  successful 0:v1* 1:v1* 2:v1*                   .
""")


def test_a_scale_up_with_a_new_image_fills_new_slots_before_replacing():
    sim = RolloutSim(2, UpdatePolicy(min_healthy_time=5.0))
    sim.seed(V1)
    sim.declare(Behaviour("app:2"), count=4)
    assert [line.rstrip() for line in sim.run()] == lines("""
t=0   running    0:v1* 1:v1*                         +web.2.d2 +web.3.d2
t=5   running    0:v1* 1:v1* 2:v2~ 3:v2~             .
t=10  running    0:v1* 1:v1* 2:v2* 3:v2*             +web.0.d2
t=15  running    0:v1* 0:v2~ 1:v1* 2:v2* 3:v2*       .
t=20  running    0:v1* 0:v2* 1:v1* 2:v2* 3:v2*       +web.1.d2 -web.0.d1
t=25  running    0:v2* 1:v1* 1:v2~ 2:v2* 3:v2*       .
t=30  running    0:v2* 1:v1* 1:v2* 2:v2* 3:v2*       -web.1.d1
t=35  successful 0:v2* 1:v2* 2:v2* 3:v2*             .
""")


# -- single rules ----------------------------------------------------------------------------------

DEP = dp.Deployment("web", 2, 2, started_at=0.0, revert_to=1)
UPD = UpdatePolicy(max_parallel=1, min_healthy_time=10.0, healthy_deadline=60.0)


def old(slot: int, **kw) -> dp.Replica:
    return dp.Replica(f"web.{slot}.d1", slot, 1, 1, **{"state": RUNNING, "health": HEALTHY,
                                                        "healthy_since": -100.0, **kw})


def new(slot: int, **kw) -> dp.Replica:
    return dp.Replica(f"web.{slot}.d2", slot, 2, 2, **{"state": RUNNING, **kw})


def decide(replicas, count=3, now=0.0, **kw) -> dp.DeploymentPlan:
    return dp.plan(dp.RolloutView(kw.pop("dep", DEP), count, kw.pop("update", UPD), tuple(replicas), **kw), now)


def test_a_scale_down_stops_the_surplus_at_once():
    p = decide([new(0, health=HEALTHY, healthy_since=-50.0), new(1, health=HEALTHY, healthy_since=-50.0),
                old(2), old(3)], count=2)
    assert [(s.id, s.reason) for s in p.stop] == [("web.2.d1", "scaled down to 2"), ("web.3.d1", "scaled down to 2")]
    assert p.start == () and p.deployment.state == dp.RUNNING_DEPLOYMENT


def test_an_unhealthy_old_replica_is_replaced_first_and_stop_first():
    p = decide([old(0), old(1, health=UNHEALTHY, healthy_since=None), old(2)])
    assert [s.id for s in p.start] == ["web.1.d2"]
    assert [(s.id, s.reason) for s in p.stop] == [("web.1.d1", "replacing with web.1.d2 (not serving)")]


def test_a_replica_counts_only_after_min_healthy_time_and_next_due_says_when():
    reps = [new(0, health=HEALTHY, healthy_since=5.0), old(0), old(1), old(2)]
    waiting = decide(reps, now=14.0)
    assert (waiting.start, waiting.stop, waiting.next_due) == ((), (), 15.0)
    assert [p.phase for p in waiting.progress] == [dp.UPDATING, dp.QUEUED, dp.QUEUED]
    moved = decide(reps, now=15.0)
    assert [s.id for s in moved.start] == ["web.1.d2"] and [s.id for s in moved.stop] == ["web.0.d1"]


def test_a_lost_replica_keeps_its_slot_for_the_healer():
    p = decide([new(0, state=LOST), old(0), old(1), old(2)], now=1.0)
    assert (p.start, p.stop) == ((), ()) and p.deployment.state == dp.RUNNING_DEPLOYMENT


def test_an_old_replica_that_gave_up_is_stopped_so_its_restart_policy_leaves_it():
    p = decide([old(0, state=FAILED), old(1), old(2)])
    assert [s.id for s in p.start] == ["web.0.d2"]
    assert [(s.id, s.reason) for s in p.stop] == [("web.0.d1", "failed; its slot is refilled by web#2")]


def test_a_rollback_never_reverts_and_nothing_without_a_stable_version():
    stuck = [new(0, state=PENDING, created_at=0.0), old(0), old(1), old(2)]
    update = replace(UPD, auto_revert=True)
    assert decide(stuck, now=60.0, update=update).revert_to == 1
    for dep in (replace(DEP, rollback=True), replace(DEP, revert_to=None), replace(DEP, revert_to=2)):
        p = decide(stuck, now=60.0, update=update, dep=dep)
        assert p.revert_to is None and p.deployment.state == dp.FAILED_DEPLOYMENT


def test_a_superseded_deployment_is_cancelled_and_decides_nothing():
    gone = DEP.superseded(3)
    assert (gone.state, gone.reason) == (CANCELLED, "superseded by version 3")
    assert decide([old(0), old(1), old(2)], dep=gone).start == ()
    assert dp.Deployment.from_dict(gone.to_dict()) == gone


def test_the_sentence_is_the_log_line():
    p = decide([old(0), old(1), old(2)])
    assert p.sentence == "deployment web#2 to version 2 running; start web.0.d2; 0/3 slots done"


# -- properties ------------------------------------------------------------------------------------

scenarios = st.fixed_dictionaries({
    "count": st.integers(1, 6),
    "new_count": st.integers(1, 6),
    "max_parallel": st.integers(1, 4),
    "order": st.sampled_from(["start-first", "stop-first"]),
    "static": st.booleans(),
    "min_healthy": st.sampled_from([0.0, 5.0, 10.0]),
    "healthy_after": st.sampled_from([0.0, 5.0, 10.0]),
    "spare_nodes": st.integers(0, 2),
})


def scenario(s: dict, v2: Behaviour, **update) -> RolloutSim:
    sim = RolloutSim(s["count"], UpdatePolicy(max_parallel=s["max_parallel"], min_healthy_time=s["min_healthy"],
                                              order=s["order"], **update),
                     static_ports=s["static"], nodes=max(s["count"], s["new_count"]) + s["spare_nodes"])
    sim.seed(V1)
    sim.declare(v2, count=s["new_count"])
    return sim


def checked_steps(sim: RolloutSim, s: dict, steps: int = 60):
    """Step the rollout, checking the invariants after every pass."""
    kept = set(range(min(s["count"], s["new_count"])))  # slots that served before and must keep serving
    surge = 0 if s["static"] or s["order"] == "stop-first" else s["max_parallel"]
    for _ in range(steps):
        plan = sim.decide()
        live = [r for r in sim.table.values() if r.live]
        assert len(kept - sim.serving_slots()) <= s["max_parallel"], sim.lines
        assert len(live) <= sim.count + surge, sim.lines
        assert len(sim.live_versions()) <= 2, sim.lines
        replayed = dp.plan(sim.view(), sim.now)  # idempotent: the pass just committed, again
        assert plan.deployment.state != dp.RUNNING_DEPLOYMENT or (replayed.start, replayed.stop) == ((), ())
        sim.tick()
        if sim.deployment.state != dp.RUNNING_DEPLOYMENT and not sim.moving():
            return
    raise AssertionError("no end in sight:\n" + "\n".join(sim.lines))


@settings(max_examples=150, deadline=None)
@given(scenarios)
def test_all_healthy_new_replicas_converge_to_count_replicas_of_the_new_version(s):
    sim = scenario(s, Behaviour("app:2", healthy_after=s["healthy_after"]))
    checked_steps(sim, s)
    assert sim.deployment.state == dp.SUCCESSFUL
    assert sorted((r.slot, r.version) for r in sim.table.values()) == [(i, 2) for i in range(s["new_count"])]
    assert all(r.serving for r in sim.table.values())


@settings(max_examples=150, deadline=None)
@given(scenarios, st.booleans(), st.sampled_from(["never", "unhealthy", "exits"]))
def test_never_healthy_new_replicas_end_failed_or_reverted_once_the_deadline_passes(s, auto_revert, how):
    bad = {"never": Behaviour("app:2", healthy_after=None),
           "unhealthy": Behaviour("app:2", healthy_after=None, unhealthy_after=10.0),
           "exits": Behaviour("app:2", healthy_after=None, exits_after=10.0)}[how]
    sim = scenario(s, bad, healthy_deadline=30.0, auto_revert=auto_revert)
    checked_steps(sim, s)
    first = sim.history[1] if auto_revert else sim.deployment
    assert first.version == 2 and first.state == (dp.REVERTED if auto_revert else dp.FAILED_DEPLOYMENT)
    if auto_revert:
        # The rollback (the old spec as version 3) restores count healthy replicas.
        assert sim.deployment.rollback and sim.deployment.state == dp.SUCCESSFUL
        assert sorted((r.slot, r.version) for r in sim.table.values() if r.live) == \
            [(i, 3) for i in range(s["new_count"])]
    elif s["order"] == "start-first" and not s["static"]:
        # Start-first never stopped an old replica for a new one that did not count: no capacity lost.
        assert set(range(min(s["count"], s["new_count"]))) <= sim.serving_slots()


def test_a_replica_relabelled_in_place_is_held_to_the_deadline_from_the_deployments_start():
    """A count-only change relabels running replicas; one that never gets healthy still ends it."""
    dep = replace(DEP, started_at=100.0)
    relabelled = dp.Replica("web.0.d1", 0, 2, 1, RUNNING, created_at=0.0)
    assert decide([relabelled], count=1, dep=dep, now=159.0).deployment.state == dp.RUNNING_DEPLOYMENT
    ended = decide([relabelled], count=1, dep=dep, now=160.0).deployment
    assert (ended.state, ended.reason) == (dp.FAILED_DEPLOYMENT, "replica web.0.d1 was not healthy within 60s")
