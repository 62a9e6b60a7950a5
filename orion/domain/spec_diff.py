"""What a new spec of a service changes, in API field names, and whether running replicas must be
*replaced* (a new container) or can be kept (relabelled in place): the rule the API, the CLI's
diff and a stack's plan need before any planner runs (split from ``orion/domain/service.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from orion.domain.model import TaskSpec
from orion.domain.network import reach_changes
from orion.domain.service import ServiceSpec

# TaskSpec fields whose change needs a new container, named as the API names them. A container's
# image, limits, command, env, ports, mounts and networks (the overlay) are fixed at creation; a
# node selector change may make a running replica's node wrong, so it is replaced too (Nomad treats
# constraints the same).
# The container settings (``TaskSpec.container``: user, capabilities, ...) all replace, each named.
_REPLACING_TASK_FIELDS = {
    "image": "image", "memory": "memory", "cpu_millis": "cpu", "command": "command", "env": "env",
    "ports": "portBindings", "node_selectors": "nodeSelectors", "constraints": "constraints", "secret_env": "env",
    "overlay": "overlay",
}
# Kept in place: decided by the leader (restart policy), read at the next pull (pull policy), or at
# the next placement (spread, maxPerNode: ``orion service rebalance`` moves what runs).
_IN_PLACE_TASK_FIELDS = {"restart_policy": "restartPolicy", "pull_policy": "pullPolicy", "spread": "spread",
                         "max_per_node": "maxPerNode"}


@dataclass(frozen=True)
class SpecDiff:
    """What changed from one spec to the next, in API field names.

    ``replace``: running replicas need new containers (a rolling update).
    Otherwise the change is applied in place: replicas are relabelled with the
    new version, and a count change only adds or stops replicas (``scale``).
    """

    changed: tuple[str, ...]
    replace: bool
    scale: bool

    @property
    def unchanged(self) -> bool:
        return not self.changed


def spec_diff(old: ServiceSpec, new: ServiceSpec) -> SpecDiff:
    """Compare two specs of one service (see :class:`SpecDiff`)."""
    changed: list[str] = []
    replacing = False
    for f in fields(TaskSpec):
        if getattr(old.task, f.name) == getattr(new.task, f.name):
            continue
        if f.name == "container":  # each of them is fixed at creation: a new container
            changed.extend(new.task.container.changed(old.task.container))
            replacing = True
        elif f.name == "files":  # a secret's or config's file (or its pinned version): named by kind
            kinds = {r.kind for r in set(old.task.files) ^ set(new.task.files)}
            changed.extend(sorted(k + "s" for k in kinds))
            replacing = True
        elif f.name in _REPLACING_TASK_FIELDS:
            changed.append(_REPLACING_TASK_FIELDS[f.name])
            replacing = True
        elif f.name in _IN_PLACE_TASK_FIELDS:
            changed.append(_IN_PLACE_TASK_FIELDS[f.name])
    if old.volumes != new.volumes:
        changed.append("volumes")
        replacing = True
    # A changed check is run by the node against the same container; a changed update block
    # governs the next rollout. Neither needs a new container.
    if old.health_check != new.health_check:
        changed.append("healthCheck")
    if old.update != new.update:
        changed.append("update")
    if old.mode != new.mode:  # another kind of workload: every replica is replaced
        changed.append("mode")
        replacing = True
    if old.job != new.job:  # governs the next run (and a one-off job runs again: state/jobs.py)
        changed.append("job")
    changed += reach_changes(old, new)  # the VIP and published ports: no replica replaced
    # Which stack lists the service: a label of the declaration, nothing a container holds.
    if old.stack != new.stack:
        changed.append("stack")
    if old.count != new.count:
        changed.append("count")
    return SpecDiff(tuple(dict.fromkeys(changed)), replacing, old.count != new.count)
