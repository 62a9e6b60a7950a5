"""Services inside the replicated state machine: versions, deployments, replicas, health.

Split from ``orion/state/machine.py``, which dispatches the service commands
here and hands over the few task operations they need (read, store, stop), so
reservations stay the machine's business. Deterministic like the rest of the
machine: every time comes in a command (the accepting node's or the leader's
clock), nothing here reads one.

What is kept per service is a :class:`ServiceRecord` (``service_records.py``).
Replicas are tasks that carry ``service``/``version``/``slot``; the planner that
moves them is ``orion/control/deployment.py``, run by the leader's ``DeploymentLoop``.

Declaring a version (a PUT, a rollback, an auto-revert) does in one apply what
``spec_diff`` allows: replicas that can keep their container are relabelled
with the new version (and its in-place fields, like the restart policy); the
running deployment, if any, is cancelled; a new one starts. Every version reads
the secrets and configs it names at their current versions (``secrets.py``
pins them), so a rollback brings back no old password.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from orion.defaults import SERVICE_DEFAULTS
from orion.domain.model import ASSIGNED, DESIRED_RUN, MAX_SCALE, RUNNING, NodeInfo, Task, TaskSpec
from orion.domain.replicas import group_of, holds_slot
from orion.domain.service import (
    DEPLOYMENT_STATES,
    FAILED_DEPLOYMENT,
    HEALTH_STATES,
    JOB,
    REDEPLOY,
    REVERTED,
    RUNNING_DEPLOYMENT,
    SUCCESSFUL,
    Deployment,
    ServiceSpec,
)
from orion.domain.spec_diff import spec_diff
from orion.state.checks import mode_problem, no_task, release_problem, spec_problem, stale_report, start_problem
from orion.state.commands import (
    ApplyDeploymentPlan,
    DeleteService,
    PutService,
    ReportTaskHealth,
    RollbackService,
    ScaleTask,
    handles,
)
from orion.state.jobs import JobRegistry
from orion.state.results import (
    GroupScaled,
    HealthReported,
    PlanApplied,
    RefusalKind,
    Refused,
    ServiceDeclared,
    ServiceDeleted,
)
from orion.state.service_records import ServiceRecord, VersionRecord, rollback_target

INVALID, NOT_FOUND, EXISTS, WRONG_STATE, STALE = (RefusalKind.INVALID, RefusalKind.NOT_FOUND, RefusalKind.EXISTS,
                                                  RefusalKind.WRONG_STATE, RefusalKind.STALE)


class ServiceRegistry:
    """Services by name; changed only through the machine's dispatch.

    ``task``, ``tasks``, ``put`` and ``stop`` are the machine's: read one task, list
    all, store one (moving its reservations), and stop one as ``StopTask`` does.
    """

    def __init__(self, task: Callable[[str], Task | None], tasks: Callable[[], list[Task]],
                 put: Callable[[Task], None], stop: Callable[[str, int], None],
                 versions_kept: int = SERVICE_DEFAULTS["versions_kept"],
                 node: Callable[[str], NodeInfo | None] = lambda _id: None, jobs: JobRegistry | None = None,
                 pin: Callable[[TaskSpec], TaskSpec | Refused] = lambda spec: spec) -> None:
        self._task, self._tasks, self._put, self._stop = task, tasks, put, stop
        # Secrets and configs (orion/state/secrets.py): each version reads their current versions.
        self._pin = pin
        self._kept = versions_kept
        # The machine's node lookup (a global replica's node is re-checked) and the job registry
        # (told when a job is declared or deleted: orion/state/jobs.py).
        self._node, self._jobs = node, jobs
        self.records: dict[str, ServiceRecord] = {}
        # Last deployment seq per name, kept after a delete: replica ids (web.0.d<seq>) are
        # derived from it, so a service declared again under an old name never reuses one.
        self._seqs: dict[str, int] = {}

    # -- queries -----------------------------------------------------------------------------
    def get(self, name: str) -> ServiceRecord | None:
        return self.records.get(name)

    def all(self) -> list[ServiceRecord]:
        return [self.records[name] for name in sorted(self.records)]

    def replicas(self, name: str) -> list[Task]:
        return [t for t in self._tasks() if t.service == name]

    # -- commands ----------------------------------------------------------------------------
    @handles(PutService)
    def put(self, cmd: PutService, index: int) -> ServiceDeclared | Refused:
        spec = ServiceSpec.from_dict(cmd.spec.to_dict())  # canonical form, as a restore would give
        problem = spec_problem(spec.task) or mode_problem(spec) or (None if 0 <= spec.count <= MAX_SCALE else Refused(
            INVALID, f"count {spec.count} must be from 0 to {MAX_SCALE}"))
        if not spec.name:
            problem = Refused(INVALID, "a service needs a name")
        pinned = problem or self._pinned(spec)
        if isinstance(pinned, Refused):
            return pinned
        spec = pinned
        record = self.records.get(spec.name)
        if record is not None and cmd.create:
            return Refused(EXISTS, f"service {spec.name} exists (version {record.current.version}); "
                                   f"update it with PUT /services/{spec.name}")
        if record is not None and record.spec == spec:
            return ServiceDeclared(spec.name, record.current.version, changed=False)
        return self._declare(spec, cmd.at, index)

    @handles(RollbackService)
    def rollback(self, cmd: RollbackService, index: int) -> ServiceDeclared | Refused:
        record = self.records.get(cmd.name)
        if record is None:
            return Refused(NOT_FOUND, f"no service {cmd.name}")
        target = rollback_target(record, cmd.version)
        if isinstance(target, Refused):
            return target
        spec = self._pinned(target.spec)
        if isinstance(spec, Refused):
            return spec
        return self._declare(spec, cmd.at, index, copy_of=target.version)

    @handles(DeleteService)
    def delete(self, cmd: DeleteService, index: int) -> ServiceDeleted | Refused:
        record = self.records.pop(cmd.name, None)
        if record is None:
            return Refused(NOT_FOUND, f"no service {cmd.name}")
        if self._jobs is not None:
            self._jobs.deleted(cmd.name, record.current.at, index)
        stopped = [t.id for t in self.replicas(cmd.name) if t.desired == DESIRED_RUN]
        for task_id in stopped:
            self._stop(task_id, index)
        return ServiceDeleted(cmd.name, tuple(stopped))

    @handles(ApplyDeploymentPlan)
    def apply_plan(self, cmd: ApplyDeploymentPlan, index: int) -> PlanApplied | Refused:
        record = self.records.get(cmd.service)
        if record is None:
            return Refused(NOT_FOUND, f"no service {cmd.service}")
        dep = record.deployment
        # A refill (orion/control/deployment.py ``refill``, ``release``): a succeeded deployment
        # stays so and only starts replicas in slots no wanted replica holds (and, for a global
        # service, stops those on nodes no longer eligible), re-checked here.
        refill = dep.state == SUCCESSFUL and cmd.state == SUCCESSFUL and cmd.revert_to is None
        if (dep.seq, record.step) != (cmd.seq, cmd.step) or not (dep.state == RUNNING_DEPLOYMENT or refill):
            return Refused(STALE, f"stale plan: {dep.id} is {dep.state} at step {record.step}, "
                                  f"the plan was for {cmd.service}#{cmd.seq} at step {cmd.step}")
        if cmd.state not in DEPLOYMENT_STATES:
            return Refused(INVALID, f"unknown deployment state {cmd.state!r}")
        replicas = self.replicas(cmd.service)
        if refill and cmd.stop:
            problem = release_problem(record.spec, cmd.stop, {t.id: t for t in replicas}, self._node)
            if problem:
                return problem
        held = {(t.pin, t.slot) for t in replicas if t.desired == DESIRED_RUN} if refill else set()
        started: list[str] = []
        not_started: dict[str, Refused] = {}
        for s in cmd.start:
            problem = start_problem(record.spec, dep.version, s, self._node(s.node) if s.node else None, held)
            if problem or self._task(s.id) is not None:
                not_started[s.id] = problem or Refused(EXISTS, f"task {s.id} already exists")
            else:
                self._put(Task(id=s.id, spec=record.spec.task, service=cmd.service, version=s.version,
                               slot=s.slot, deployment=dep.seq, created_at=cmd.at,
                               created_index=index, updated_index=index, pin=s.node))
                started.append(s.id)
        stopped = []
        for s in cmd.stop:
            task = self._task(s.id)
            if task is not None and task.service == cmd.service and task.desired == DESIRED_RUN:
                self._stop(task.id, index)
                self._put(replace(self._task(task.id) or task, reason=s.reason))
                stopped.append(task.id)
        target = record.version(cmd.revert_to) if cmd.state == REVERTED and cmd.revert_to else None
        revert = self._pinned(target.spec) if target is not None else None
        dep = replace(dep, state=cmd.state, reason=cmd.reason)
        if isinstance(revert, Refused):  # the stable version reads a secret or config deleted since
            dep, revert = replace(dep, state=FAILED_DEPLOYMENT, reason=f"{cmd.reason}; not reverted: {revert}"), None
        record = replace(record, step=record.step + 1, progress=cmd.progress,
                         versions=(*record.versions[:-1], replace(record.current, deployment=dep)))
        if dep.state == SUCCESSFUL:
            record = replace(record, stable=record.current)
        self.records[cmd.service] = record
        reverted = None
        if target is not None and revert is not None:
            reverted = self._declare(revert, cmd.at, index, copy_of=target.version)
        return PlanApplied(dep, tuple(started), not_started, tuple(stopped), reverted)

    @handles(ReportTaskHealth)
    def report_health(self, cmd: ReportTaskHealth, index: int) -> HealthReported | Refused:
        task = self._task(cmd.task_id)
        if task is None:
            return no_task(cmd.task_id)
        if cmd.status not in HEALTH_STATES:
            return Refused(INVALID, f"unknown health {cmd.status!r}; expected one of {', '.join(HEALTH_STATES)}")
        if (task.node_id, task.generation) != (cmd.node_id, cmd.generation):
            return Refused(STALE, stale_report(task, cmd.node_id, cmd.generation))
        if task.state not in (ASSIGNED, RUNNING):
            return Refused(WRONG_STATE, f"task {task.id} is {task.state}: its health no longer matters")
        changed = (task.health, task.health_output) != (cmd.status, cmd.output)
        if changed:
            self._put(replace(task, health=cmd.status, health_since=cmd.since, health_output=cmd.output,
                              updated_index=index))
        return HealthReported(changed)

    @handles(ScaleTask)
    def scale_group(self, cmd: ScaleTask, index: int) -> GroupScaled | Refused:
        """Grow or shrink the group of replicas ``cmd.task_id`` belongs to (``PATCH /tasks/<id>``:
        the unnamed replicas of ``POST /tasks`` with a count), in one step. A named service's
        replica is refused: its count is its spec's, changed by declaring a new version."""
        task = self._task(cmd.task_id)
        if task is None:
            return no_task(cmd.task_id)
        if task.service:
            return Refused(WRONG_STATE, f"task {task.id} is a replica of service {task.service}; "
                                        f"change its count with PUT /services/{task.service}")
        if not 0 <= cmd.count <= MAX_SCALE:
            return Refused(INVALID, f"count {cmd.count} must be from 0 to {MAX_SCALE}")
        group = group_of(task)
        active = [t for t in self._tasks() if group_of(t) == group and holds_slot(t.desired, t.state)]
        created: list[str] = []
        stopped: list[str] = []
        if cmd.count > len(active):
            need = cmd.count - len(active)
            ids = list(dict.fromkeys(cmd.new_task_ids))[:need]
            if len(ids) < need or any(not i or self._task(i) is not None for i in ids):
                return Refused(INVALID, f"scaling {group} to {cmd.count} needs {need} new, unused task ids")
            spec = replace(task.spec, group=group, count=cmd.count)
            for task_id in ids:
                self._put(Task(id=task_id, spec=spec, created_index=index, updated_index=index))
                created.append(task_id)
        else:
            newest_first = sorted(active, key=lambda t: (t.created_index, t.id), reverse=True)
            for surplus in newest_first[: len(active) - cmd.count]:
                self._stop(surplus.id, index)
                stopped.append(surplus.id)
        return GroupScaled(group, cmd.count, tuple(created), tuple(stopped))

    # -- declaring a version -----------------------------------------------------------------
    def declare_again(self, name: str, at: float, index: int, kind: str,
                      moves: frozenset[str] = frozenset()) -> ServiceDeclared:
        """The current spec as a new version deployed as ``kind`` (orion/state/service_actions.py)."""
        record = self.records[name]
        return self._declare(record.spec, at, index, copy_of=record.current.version, kind=kind, moves=moves)

    def _declare(self, spec: ServiceSpec, at: float, index: int, copy_of: int | None = None, kind: str = "",
                 moves: frozenset[str] = frozenset()) -> ServiceDeclared:
        """``spec`` as the service's next version, with its deployment (a rollback when it
        declares an earlier version again: ``copy_of``; a redeploy or a rebalance: ``kind``,
        replacing every replica or the ``moves``). Relabels what can stay as it is. A job's
        version has nothing to roll out: its runs are the job registry's (orion/state/jobs.py).
        ``spec`` is pinned (:meth:`_pinned`)."""
        record = self.records.get(spec.name)
        seq = self._seqs[spec.name] = self._seqs.get(spec.name, 0) + 1
        version = record.current.version + 1 if record is not None else 1
        versions: tuple[VersionRecord, ...] = ()
        revert_to = None
        if record is not None:
            cancelled = record.deployment.superseded(version)
            versions = (*record.versions[:-1], replace(record.current, deployment=cancelled))
            revert_to = record.stable.version if record.stable is not None and copy_of is None else None
        dep = Deployment(spec.name, seq, version, at, revert_to=revert_to, rollback=copy_of is not None and not kind,
                         kind=kind)
        if spec.mode == JOB:
            dep = replace(dep, state=SUCCESSFUL, reason="a job runs to completion: see its runs")
        new = VersionRecord(version, spec, at, dep, copy_of)
        relabelled = [] if record is None or kind == REDEPLOY else self._relabel(record, new, index, moves)
        stable = new if spec.mode == JOB else record.stable if record is not None else None
        self.records[spec.name] = ServiceRecord(spec.name, (*versions, new)[-self._kept:], stable)
        if self._jobs is not None:
            self._jobs.declared(spec, version, at, index)
        return ServiceDeclared(spec.name, version, True, dep, tuple(relabelled))

    def _pinned(self, spec: ServiceSpec) -> ServiceSpec | Refused:
        """``spec`` reading the secrets and configs it names at their current versions, or why it cannot."""
        task = self._pin(spec.task)
        return task if isinstance(task, Refused) else replace(spec, task=task)

    def _relabel(self, record: ServiceRecord, new: VersionRecord, index: int,
                 moves: frozenset[str] = frozenset()) -> list[str]:
        """Give ``new``'s version to every live replica whose container it can keep (but the
        ``moves`` of a rebalance, which its deployment replaces). A job's attempts keep theirs."""
        done = []
        for task in self.replicas(record.name):
            if not holds_slot(task.desired, task.state) or task.id in moves or task.run:  # over, moved, or a job's
                continue
            own = record.version(task.version)
            if own is None or spec_diff(own.spec, new.spec).replace:
                continue
            self._put(replace(task, version=new.version, spec=new.spec.task, updated_index=index))
            done.append(task.id)
        return done

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"records": [r.to_dict() for r in self.all()], "seqs": dict(sorted(self._seqs.items()))}

    def restore(self, data: dict[str, Any]) -> None:
        self.records = {r.name: r for r in (ServiceRecord.from_dict(d) for d in data.get("records", ()))}
        self._seqs = {str(k): int(v) for k, v in dict(data.get("seqs", {})).items()}
