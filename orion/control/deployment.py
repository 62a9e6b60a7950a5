"""Rolling updates: which replica to replace next, as a pure function.

The shape is Nomad's deployment watcher and reconciler with Swarm's updater:
a service has ``count`` *slots*; each slot holds one replica of some version.
A deployment moves every slot to the target version, at most ``max_parallel``
slots at a time, and a slot counts as moved once its new replica has been
healthy for ``min_healthy_time``. :func:`plan` reads one view (the deployment
record, the update block, the service's replicas with their health, and
``now``) and returns a :class:`DeploymentPlan`: replicas to start, replicas to
stop, and the deployment's next state. The leader commits a plan as one
command; nothing here remembers anything between calls.

Level-triggered and idempotent, so a leader change is a non-event: everything
the plan depends on is replicated (the deployment record, the replicas and
their health), and a new replica's id is derived from the deployment and its
slot (:meth:`Deployment.replica_id`). A new leader therefore decides the same
next step, and if an old leader's plan lands late its starts are refused as
duplicates by the state machine: no slot is replaced twice by one deployment.

The rules:

* Slots at or above ``count`` are surplus: their replicas stop at once (scale down).
* An empty slot (no live replica of any version) is filled at once: starting it
  cannot cost availability. Its replica is in flight until it counts as healthy.
* A slot whose target replica counts as healthy has its old replicas stopped.
* Otherwise slots holding only old replicas are replaced while fewer than
  ``max_parallel`` slots are in flight, unhealthy old replicas first (replacing
  them costs nothing). ``start-first`` starts the new replica and stops the old
  one once the new one counts; ``stop-first`` stops the old one as it starts the
  new one (the new one waits for its resources, as with Swarm). An old replica
  that is not serving is replaced stop-first whatever the order: there is no
  capacity to keep. A service that binds a static host port is updated
  stop-first (:func:`effective_order`): the new replica could not bind the port
  its predecessor holds on the same node.
* A replica started by this deployment that exits, or any replica of the
  target version that turns unhealthy or has not counted as healthy
  ``healthy_deadline`` after its creation (or the deployment's start, for one
  relabelled in place) fails the deployment; nothing more is started or stopped. With ``auto_revert`` (and a
  last fully healthy version that is not the target, and the deployment not
  itself a revert) the deployment ends ``reverted`` and the plan names the
  version to return to: the state machine (``orion/state/services.py``)
  declares that version's spec again as a new version, in the same apply, with
  a deployment marked ``rollback`` (which never reverts).
* All slots counted healthy on the target, no old or surplus replica left:
  the deployment is ``successful`` and its version becomes the revert target.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from orion.domain.model import COMPLETED, DESIRED_RUN, FAILED, RUNNING, STOPPED
from orion.domain.replicas import holds_slot
from orion.domain.service import (
    DONE,
    FAILED_DEPLOYMENT,
    HEALTHY,
    QUEUED,
    REVERTED,
    RUNNING_DEPLOYMENT,
    STARTING,
    SUCCESSFUL,
    UNHEALTHY,
    UPDATING,
    Deployment,
    SlotProgress,
    StartReplica,
    StopReplica,
    UpdatePolicy,
)

# A slot: ("", n) for a replicated service's slot n, (node, 0) for a global service's node.
SlotKey = tuple[str, int]

@dataclass(frozen=True)
class Replica:
    """One task of the service as the planner sees it.

    ``deployment`` is the seq of the deployment that created it (a replica
    relabelled in place keeps its own). ``healthy_since`` is when its node
    reported it healthy (None unless ``health`` is healthy); ``created_at``
    starts its healthy deadline.
    """

    id: str
    slot: int
    version: int
    deployment: int = 0
    state: str = RUNNING
    desired: str = DESIRED_RUN
    health: str = STARTING
    healthy_since: float | None = None
    created_at: float = 0.0
    node: str = ""  # a global service's replica: its node is its slot

    @property
    def key(self) -> SlotKey:
        return self.node, self.slot

    @property
    def live(self) -> bool:
        """Wanted and not over: it holds its slot."""
        return holds_slot(self.desired, self.state)

    @property
    def serving(self) -> bool:
        return self.live and self.state == RUNNING and self.health == HEALTHY

    def counted_at(self, min_healthy_time: float) -> float | None:
        """When this replica counts as healthy for a deployment (None: not on its way)."""
        if not self.serving or self.healthy_since is None:
            return None
        return self.healthy_since + min_healthy_time


@dataclass(frozen=True)
class RolloutView:
    """What one planning pass reads, at one moment, from the local replica."""

    deployment: Deployment
    count: int
    update: UpdatePolicy
    replicas: Sequence[Replica]
    static_ports: bool = False
    # A global service: the eligible nodes that take replicas now (each one slot), and the
    # eligible ones that cannot now (dead, not ready, restarting): their replicas are kept, not
    # judged, not replaced. None: a replicated service, ``count`` slots.
    nodes: tuple[str, ...] | None = None
    kept: tuple[str, ...] = ()
    # The service record's step (a global replica's id carries it) and its maxPerNode.
    step: int = 0
    max_per_node: int = 0

    @property
    def slots(self) -> tuple[SlotKey, ...]:
        if self.nodes is None:
            return tuple(("", slot) for slot in range(self.count))
        return tuple((node, 0) for node in sorted(self.nodes))

    def start(self, key: SlotKey) -> StartReplica:
        """The replica this deployment starts in slot ``key``."""
        dep, (node, slot) = self.deployment, key
        if node:
            return StartReplica(dep.node_replica_id(node, self.step), 0, dep.version, node)
        return StartReplica(dep.replica_id(slot), slot, dep.version)

    def surplus_reason(self, key: SlotKey) -> str:
        node = key[0]
        return f"node {node} is no longer eligible" if node else f"scaled down to {self.count}"


@dataclass(frozen=True)
class DeploymentPlan:
    deployment: Deployment
    start: tuple[StartReplica, ...] = ()
    stop: tuple[StopReplica, ...] = ()
    progress: tuple[SlotProgress, ...] = ()
    revert_to: int | None = None
    # Earliest moment the plan changes by time alone (a replica counting, a deadline).
    next_due: float | None = None

    @property
    def sentence(self) -> str:
        d = self.deployment
        parts = [f"deployment {d.id} to version {d.version} {d.state}"]
        if d.reason:
            parts[0] += f" ({d.reason})"
        if self.start:
            parts.append("start " + ", ".join(s.id for s in self.start))
        if self.stop:
            parts.append("stop " + ", ".join(s.id for s in self.stop))
        if self.progress:
            done = sum(p.phase == DONE for p in self.progress)
            parts.append(f"{done}/{len(self.progress)} slots done")
        return "; ".join(parts)


def effective_order(update: UpdatePolicy, static_ports: bool, max_per_node: int = 0) -> str:
    """The order a rollout really uses: stop-first when the task binds a static host port, or
    may hold only so many replicas per node (the new one may need the old one's place)."""
    return "stop-first" if static_ports or max_per_node else update.order


def _failure(view: RolloutView, now: float) -> str | None:
    """Why this deployment has failed, or None.

    Every replica of the target version is judged on health and deadline (one
    relabelled in place runs the same spec, so it speaks for the version too;
    its deadline counts from the deployment's start). An exit is judged only
    for replicas this deployment started: an older one that exited is refilled.
    """
    dep, update = view.deployment, view.update
    slots = set(view.slots)
    for r in sorted(view.replicas, key=lambda r: (r.key, r.id)):
        if r.version != dep.version or r.desired != DESIRED_RUN or r.key not in slots:
            continue
        ours = r.deployment == dep.seq
        if r.state in (FAILED, COMPLETED):
            if ours:
                return f"replica {r.id} exited"
            continue
        if r.health == UNHEALTHY:
            return f"replica {r.id} is unhealthy"
        counted = r.counted_at(update.min_healthy_time)
        deadline = max(r.created_at, dep.started_at) + update.healthy_deadline
        if now >= deadline and (counted is None or counted > now):
            return f"replica {r.id} was not healthy within {update.healthy_deadline:g}s"
    return None


def _best(replicas: list[Replica], now: float, mht: float) -> Replica:
    """Of two target replicas in one slot (never made by this planner), keep the furthest along."""
    def rank(r: Replica) -> tuple[bool, bool, str]:
        counted = r.counted_at(mht)
        return (not (counted is not None and counted <= now), not r.serving, r.id)
    return min(replicas, key=rank)


def plan(view: RolloutView, now: float) -> DeploymentPlan:
    """Decide this pass of the rollout (see the module doc for the rules)."""
    dep, update = view.deployment, view.update
    mht = update.min_healthy_time
    by_slot: dict[SlotKey, list[Replica]] = defaultdict(list)
    stops: list[StopReplica] = []
    for r in sorted(view.replicas, key=lambda r: (r.key, r.id)):
        if r.live:
            by_slot[r.key].append(r)
        elif r.desired == DESIRED_RUN and r.deployment != dep.seq and r.state != STOPPED:
            # Over but still wanted: the restart policy would bring it back beside the replica
            # this deployment puts in its slot. (This deployment's own failing fails it.)
            stops.append(StopReplica(r.id, r.slot, f"{r.state}; its slot is refilled by {dep.id}"))
    starts: list[StartReplica] = []
    progress: list[SlotProgress] = []
    in_flight = 0
    fills: list[SlotKey] = []
    queued: list[tuple[bool, SlotKey, list[Replica]]] = []
    due: list[float] = []
    slots = view.slots
    for key in slots:
        here = sorted(by_slot.get(key, []), key=lambda r: r.id)
        current = [r for r in here if r.version == dep.version]
        old = [r for r in here if r.version != dep.version]
        if not current:
            if old:
                queued.append((any(r.serving for r in old), key, old))
            else:
                fills.append(key)
            continue
        keep = _best(current, now, mht)
        stops += [StopReplica(r.id, r.slot, f"duplicate of {keep.id}") for r in current if r is not keep]
        counted = keep.counted_at(mht)
        if counted is not None and counted <= now:
            stops += [StopReplica(r.id, r.slot, f"replaced by {keep.id}") for r in old]
            progress.append(SlotProgress(key[1], DONE, keep.id, node=key[0]))
            continue
        in_flight += 1
        progress.append(SlotProgress(key[1], UPDATING, keep.id, tuple(r.id for r in old), node=key[0]))
        if counted is not None:
            due.append(counted)
        due.append(max(keep.created_at, dep.started_at) + update.healthy_deadline)
    held = set(slots) | {(node, 0) for node in view.kept}
    surplus = sorted((r for key, rs in by_slot.items() if key not in held for r in rs), key=lambda r: (r.key, r.id))
    stops += [StopReplica(r.id, r.slot, view.surplus_reason(r.key)) for r in surplus]

    if dep.state != RUNNING_DEPLOYMENT:
        return DeploymentPlan(dep, progress=_all_progress(progress, fills, queued))
    failure = _failure(view, now)
    if failure is not None:
        target = dep.revert_to
        if update.auto_revert and target is not None and target != dep.version and not dep.rollback:
            ended = replace(dep, state=REVERTED, reason=f"{failure}; reverting to version {target}")
            return DeploymentPlan(ended, progress=_all_progress(progress, fills, queued), revert_to=target)
        ended = replace(dep, state=FAILED_DEPLOYMENT, reason=failure)
        return DeploymentPlan(ended, progress=_all_progress(progress, fills, queued))

    order = effective_order(update, view.static_ports, view.max_per_node)
    for key in fills:
        start = view.start(key)
        starts.append(start)
        progress.append(SlotProgress(key[1], UPDATING, start.id, node=key[0]))
    budget = max(update.max_parallel - in_flight - len(fills), 0)
    queued.sort()
    for serving, key, old in queued[:budget]:
        start = view.start(key)
        starts.append(start)
        progress.append(SlotProgress(key[1], UPDATING, start.id, tuple(r.id for r in old), node=key[0]))
        if order == "stop-first" or not serving:
            why = "stop-first" if order == "stop-first" else "not serving"
            stops += [StopReplica(r.id, r.slot, f"replacing with {start.id} ({why})") for r in old]
    queued = queued[budget:]
    finished = not starts and not stops and not queued and in_flight == 0
    if finished:
        what = f"{view.count} replicas" if view.nodes is None else f"replicas on {len(slots)} node(s)"
        dep = replace(dep, state=SUCCESSFUL, reason=f"{what} of version {dep.version} healthy")
    return DeploymentPlan(dep, tuple(starts), tuple(stops), _all_progress(progress, [], queued),
                          next_due=min((t for t in due if t > now), default=None))


def refill(view: RolloutView, step: int) -> tuple[StartReplica, ...]:
    """Once the deployment succeeded: a replica for each slot that no wanted replica holds.

    That is a slot whose replica was stopped by request (``DELETE /tasks/<id>``), as
    a Kubernetes ReplicaSet or a Swarm service refills it. A replica that exited is
    still wanted: its restart policy brings it back (or, ``never``, leaves it ended);
    a lost one is placed again by the healer under its id. Ids come from the
    deployment, the slot and the record's ``step`` (:meth:`Deployment.refill_id`),
    so every leader starts the same ones and the state machine refuses a late repeat.
    """
    dep = view.deployment
    if dep.state != SUCCESSFUL:
        return ()
    held = {r.key for r in view.replicas if r.desired == DESIRED_RUN}
    if view.nodes is not None:  # a global service: a node that became eligible gets its replica
        return tuple(view.start(key) for key in view.slots if key not in held)
    return tuple(StartReplica(dep.refill_id(slot, step), slot, dep.version)
                 for _node, slot in view.slots if ("", slot) not in held)


def release(view: RolloutView) -> tuple[StopReplica, ...]:
    """Once the deployment succeeded: a global service's replicas on nodes no longer eligible
    (drained, relabelled, no longer matching a constraint) stop; none replaces them elsewhere."""
    if view.deployment.state != SUCCESSFUL or view.nodes is None:
        return ()
    eligible = {*view.nodes, *view.kept}
    return tuple(StopReplica(r.id, r.slot, view.surplus_reason(r.key))
                 for r in sorted(view.replicas, key=lambda r: r.id) if r.live and r.node not in eligible)


def _all_progress(progress: list[SlotProgress], fills: list[SlotKey],
                  queued: list[tuple[bool, SlotKey, list[Replica]]]) -> tuple[SlotProgress, ...]:
    rest = [SlotProgress(key[1], QUEUED, None, node=key[0]) for key in fills]
    rest += [SlotProgress(key[1], QUEUED, None, tuple(r.id for r in old), node=key[0]) for _s, key, old in queued]
    return tuple(sorted(progress + rest, key=lambda p: (p.node, p.slot)))
