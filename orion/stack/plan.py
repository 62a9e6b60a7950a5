"""The stack planner: the services a file declares, against what the cluster runs, as typed steps.

``plan(desired, current, prune)`` is a pure function. ``desired`` are the
specs the compose file declares (``convert.py``), ``current`` the services of the
stack the cluster runs (name, version, spec), ``others`` the names of every other
service with the stack it carries. Each service of the file is
``create`` (new), ``update`` (with ``spec_diff``'s changed fields) or
``unchanged`` (the same spec: nothing is sent, so a re-deploy makes no new
version and no rollout); each service of the stack not in the file is
``remove`` with ``prune`` and ``keep`` without. A name of the file held by a
service outside the stack (another stack's, or one declared on its own) is a
:class:`Conflict`: the deploy is refused rather than take it over.

The secrets and configs the file declares (``objects.py``) are planned
beside them, against the cluster's listings: a new one is ``create``; a config
whose content has the cluster's digest ``unchanged``, another ``update`` (its
next version); an existing secret ``put``, for only the cluster can compare a
secret's value (its digest is keyed with the cluster key) and answers
``unchanged`` to the same one; an external one ``use``, and a :class:`Missing`
when the cluster has none by its name. Nothing of the stack's secrets and
configs is ever removed, with ``prune`` or without (as ``docker stack deploy``).

The CLI (``orion stack deploy``) prints the plan, and unless ``--dry-run``
carries it out: secrets and configs first (a service reads them when it is
declared), then removals (they free memory, cpu and host ports for what
comes), then creations and updates in the file's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from orion.domain.service import ServiceSpec
from orion.domain.spec_diff import SpecDiff, spec_diff
from orion.stack.objects import StackObject


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    REMOVE = "remove"
    KEEP = "keep"  # of the stack, not in the file, and no --prune


@dataclass(frozen=True)
class Running:
    """A service the cluster has, as the planner needs it."""

    name: str
    version: int
    spec: ServiceSpec


@dataclass(frozen=True)
class Step:
    """What happens to one service. ``spec`` is the file's (create, update), ``old`` the cluster's."""

    action: Action
    name: str
    spec: ServiceSpec | None = None
    old: ServiceSpec | None = None
    version: int | None = None
    diff: SpecDiff | None = None

    @property
    def changes(self) -> bool:
        return self.action in (Action.CREATE, Action.UPDATE, Action.REMOVE)


@dataclass(frozen=True)
class Conflict:
    """A service of the file whose name a service outside the stack holds."""

    name: str
    holder: str  # the stack that holds it, "" for none

    def __str__(self) -> str:
        owner = f"stack {self.holder}" if self.holder else "no stack (declared on its own)"
        return f"{self.name} exists and belongs to {owner}; rename the service or remove that one first"


class ObjectAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    PUT = "put"  # an existing secret: a new version only if the cluster finds the value changed
    USE = "use"  # an external one, as it is


@dataclass(frozen=True)
class Existing:
    """A secret or config the cluster has (``GET /secrets``, ``GET /configs``)."""

    kind: str
    name: str
    version: int
    digest: str


@dataclass(frozen=True)
class ObjectStep:
    action: ObjectAction
    obj: StackObject
    version: int | None = None  # the cluster's current one

    @property
    def sends(self) -> bool:
        return self.action in (ObjectAction.CREATE, ObjectAction.UPDATE, ObjectAction.PUT)


@dataclass(frozen=True)
class Missing:
    """An external secret or config the cluster does not have."""

    obj: StackObject

    @property
    def message(self) -> str:
        kind, name = self.obj.kind, self.obj.name
        return (f"external {kind} {name} does not exist; create it first (orion {kind} create {name} -f FILE), "
                "or give the file's entry a file")

    def __str__(self) -> str:
        return f"{self.obj.origin}: {self.message}"


@dataclass(frozen=True)
class Plan:
    stack: str
    steps: tuple[Step, ...]
    conflicts: tuple[Conflict, ...] = ()
    objects: tuple[ObjectStep, ...] = ()
    missing: tuple[Missing, ...] = ()

    @property
    def changes(self) -> bool:
        return any(s.changes for s in self.steps) or any(
            o.action in (ObjectAction.CREATE, ObjectAction.UPDATE) for o in self.objects)

    def of(self, action: Action) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action == action)

    def order(self) -> tuple[Step, ...]:
        """The steps that change something, in the order they are carried out."""
        return self.of(Action.REMOVE) + tuple(s for s in self.steps if s.action in (Action.CREATE, Action.UPDATE))


def plan_objects(objects: tuple[StackObject, ...], existing: Mapping[tuple[str, str], Existing],
                 ) -> tuple[tuple[ObjectStep, ...], tuple[Missing, ...]]:
    """What becomes of each secret and config the file declares; ``existing`` by (kind, name)."""
    steps, missing = [], []
    for obj in objects:
        now = existing.get((obj.kind, obj.name))
        if obj.external:
            steps.append(ObjectStep(ObjectAction.USE, obj, now.version)) if now else missing.append(Missing(obj))
        elif now is None:
            steps.append(ObjectStep(ObjectAction.CREATE, obj))
        elif not obj.digest:  # a secret: only the cluster can tell
            steps.append(ObjectStep(ObjectAction.PUT, obj, now.version))
        else:
            same = obj.digest == now.digest
            steps.append(ObjectStep(ObjectAction.UNCHANGED if same else ObjectAction.UPDATE, obj, now.version))
    return tuple(steps), tuple(missing)


def plan(stack: str, desired: Mapping[str, ServiceSpec], current: Mapping[str, Running],
         others: Mapping[str, str], prune: bool, objects: tuple[StackObject, ...] = (),
         existing: Mapping[tuple[str, str], Existing] | None = None) -> Plan:
    """The steps that make stack ``stack`` what ``desired`` declares (see the module note).
    ``current``: the stack's services now; ``others``: every other service's name and its stack ("");
    ``objects``: the file's secrets and configs, ``existing`` the cluster's."""
    steps: list[Step] = []
    conflicts = []
    for name, spec in desired.items():
        now = current.get(name)
        if name in others and now is None:
            conflicts.append(Conflict(name, others[name]))
        elif now is None:
            steps.append(Step(Action.CREATE, name, spec))
        else:
            diff = spec_diff(now.spec, spec)
            action = Action.UNCHANGED if diff.unchanged else Action.UPDATE
            steps.append(Step(action, name, spec, now.spec, now.version, diff))
    for name in sorted(set(current) - set(desired)):
        now = current[name]
        steps.append(Step(Action.REMOVE if prune else Action.KEEP, name, None, now.spec, now.version))
    object_steps, missing = plan_objects(objects, existing or {})
    return Plan(stack, tuple(steps), tuple(conflicts), object_steps, missing)
