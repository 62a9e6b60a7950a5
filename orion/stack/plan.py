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

The CLI (``orion stack deploy``) prints the plan, and unless ``--dry-run``
carries it out: removals first (they free memory, cpu and host ports for what
comes), then creations and updates in the file's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from orion.domain.service import ServiceSpec
from orion.domain.spec_diff import SpecDiff, spec_diff


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


@dataclass(frozen=True)
class Plan:
    stack: str
    steps: tuple[Step, ...]
    conflicts: tuple[Conflict, ...] = ()

    @property
    def changes(self) -> bool:
        return any(s.changes for s in self.steps)

    def of(self, action: Action) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.action == action)

    def order(self) -> tuple[Step, ...]:
        """The steps that change something, in the order they are carried out."""
        return self.of(Action.REMOVE) + tuple(s for s in self.steps if s.action in (Action.CREATE, Action.UPDATE))


def plan(stack: str, desired: Mapping[str, ServiceSpec], current: Mapping[str, Running],
         others: Mapping[str, str], prune: bool) -> Plan:
    """The steps that make stack ``stack`` what ``desired`` declares (see the module note).
    ``current``: the stack's services now; ``others``: every other service's name and its stack ("")."""
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
    return Plan(stack, tuple(steps), tuple(conflicts))
