"""The runner of :mod:`orion.node.task_files`: read what a task's start needs from this node's
replica, open it with this node's keyring, write its files to the node's tmpfs, and hand the
engine the binds, environment and pull credentials (``StartExtras``). Called by the reconciler
(``reconcile_loop.py``) around each start and each removal.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from orion.domain.model import Task
from orion.domain.sealing import Keyring
from orion.node.task_files import Blocked, plan, template_values
from orion.runtime import StartExtras, container_name
from orion.runtime.tmpfs import TaskFileStore
from orion.store.port import Store


class TaskInputs:
    """One node's secret and config files and pull credentials. ``keyring``: this node's cluster
    keys (None without a key file). ``overlay_ip``: a task's overlay address, when the node knows one."""

    def __init__(self, node_id: str, store: Store, keyring: Keyring | None, files: TaskFileStore,
                 overlay_ip: Callable[[Task], str] = lambda task: "") -> None:
        self._node_id = node_id
        self._store = store
        self._keyring = keyring
        self._files = files
        self._overlay_ip = overlay_ip

    def prepare(self, task: Task) -> StartExtras | Blocked:
        """What ``task``'s container needs, its files written; a Blocked when it cannot start here.
        Raises RuntimeFailure when the node cannot write files at all (no tmpfs)."""
        def read(m):
            objects = {key: obj for key in _reads(task) if (obj := m.secrets.get(*key)) is not None}
            registries = {r.server: r for r in m.secrets.all_registries()}
            # The cluster's nodes and tasks only for a template (a start of a task without one reads
            # nothing more than its own objects: starts stay cheap with many tasks in the state).
            templated = any(v.template for obj in objects.values() for v in obj.versions)
            nodes = {n.id: n for n in m.nodes()} if templated else {}
            return objects, registries, nodes, (m.tasks() if templated else [])

        (objects, registries, nodes, tasks), _ = self._store.read(read)
        values = template_values(task, self._node_id, nodes, tasks, self._overlay_ip(task))
        prepared = plan(task.spec, objects, registries, self._keyring, values)
        if isinstance(prepared, Blocked):
            return prepared
        binds = self._files.prepare(container_name(task.id, task.generation), prepared.files) if prepared.files \
            else ()
        return StartExtras(binds=binds, env=prepared.env, auth=prepared.auth)

    def release(self, task_id: str, generation: int) -> None:
        self._files.release(container_name(task_id, generation))

    def sweep(self, keep: Collection[str]) -> list[str]:
        return self._files.sweep(keep)


def _reads(task: Task) -> set[tuple[str, str]]:
    return {(f.kind, f.source) for f in task.spec.files} | {("secret", e.source) for e in task.spec.secret_env}
