"""The replica rules, stated once: which states free a replica's slot, and which unnamed group
a task belongs to. The state machine (scaling a group, relabelling a service's replicas), the
deployment planner and the drain planner all read them here."""

from __future__ import annotations

from orion.domain.model import COMPLETED, DESIRED_RUN, FAILED, STOPPED, Task

# A replica in one of these states holds its slot no more: a named service's slot, or its place
# among the ``count`` of an unnamed group (``POST /tasks`` with a count). ``lost`` is not among them:
# the healer places a lost replica again under the same id. Read through :func:`holds_slot`.
FREES_SLOT = frozenset({FAILED, COMPLETED, STOPPED})


def holds_slot(desired: str, state: str) -> bool:
    """Wanted and not over: the replica counts toward its service's or group's count."""
    return desired == DESIRED_RUN and state not in FREES_SLOT


def group_of(task: Task) -> str:
    """The unnamed replica group ``task`` belongs to (``POST /tasks`` with a count, scaled by
    ``PATCH /tasks/<id>``): the group its members carry in ``spec.group``; a task that carries
    none is a group of its own, named by its id (scaling it up makes it the group's head)."""
    return task.spec.group or task.id
