"""Secrets, configs and registry credentials inside the replicated state machine (docs/secrets.md).

What is kept: each secret and config with its versions (``StoredObject``: a secret's values
sealed, a config's as base64), and each registry's credentials (``RegistryAuth``, sealed). The
machine never opens a sealed value: it has no key, and needs none (it compares keyed digests,
checks key ids, counts references). Deterministic like the rest of the machine: times come in
the commands.

Rules applied here:

- **Versions.** A new value is the next version; the same digest again changes nothing (an
  idempotent ``orion secret update``). Old versions are kept while any task in the state still
  names them (a replica not yet replaced, a failed one its restart policy may bring back), and
  pruned at the object's next change.
- **Pinning.** Every task and every declared service version reads the *current* version of
  each object it names (:meth:`ObjectRegistry.pin`); a missing object is a refusal.
- **Rolling on change.** A new version re-declares each service whose current version reads the
  object (``ServiceRegistry.redeclare``): a new service version, a deployment, the replicas
  replaced with the service's ``update`` settings (``maxParallel``), never all at once.
- **In use.** Deleting an object that a service or a live task reads is refused, naming them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from orion.domain.model import ASSIGNED, DESIRED_RUN, TERMINAL_STATES, Task, TaskSpec
from orion.domain.sealing import SealError, sealed_key_id
from orion.domain.secrets import (
    KINDS,
    SECRET,
    RegistryAuth,
    StoredObject,
    StoredVersion,
    pinned,
    references,
)
from orion.state.checks import no_task, stale_report
from orion.state.commands import (
    DeleteRegistryAuth,
    DeleteSecret,
    PutRegistryAuth,
    PutSecret,
    PutService,
    ReportTaskWaiting,
    ResealSecrets,
    handles,
)
from orion.state.results import (
    RefusalKind,
    Refused,
    Resealed,
    SecretDeleted,
    SecretStored,
    ServiceDeclared,
    TaskChanged,
)
from orion.state.services import ServiceRegistry

REGISTRY = "registry"  # the kind of registry credentials, in a Reseal and in results
INVALID, NOT_FOUND, EXISTS, WRONG_STATE, STALE, IN_USE = (
    RefusalKind.INVALID, RefusalKind.NOT_FOUND, RefusalKind.EXISTS, RefusalKind.WRONG_STATE, RefusalKind.STALE,
    RefusalKind.IN_USE)


def reads(spec: TaskSpec) -> frozenset[tuple[str, str]]:
    return references(spec.files, spec.secret_env)


class ObjectRegistry:
    """Secrets and configs by (kind, name), registry credentials by server; changed only through
    the machine's dispatch. ``tasks``/``task``/``put`` are the machine's (list, read one, store one);
    ``services`` is its service registry, which re-declares the services an object change rolls."""

    def __init__(self, tasks: Callable[[], list[Task]], task: Callable[[str], Task | None],
                 put: Callable[[Task], None], services: ServiceRegistry) -> None:
        self._tasks, self._task, self._put, self._services = tasks, task, put, services
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.registries: dict[str, RegistryAuth] = {}

    # -- queries -----------------------------------------------------------------------------
    def get(self, kind: str, name: str) -> StoredObject | None:
        return self.objects.get((kind, name))

    def all(self, kind: str) -> list[StoredObject]:
        return [self.objects[key] for key in sorted(self.objects) if key[0] == kind]

    def registry(self, server: str) -> RegistryAuth | None:
        return self.registries.get(server)

    def all_registries(self) -> list[RegistryAuth]:
        return [self.registries[s] for s in sorted(self.registries)]

    def pin(self, spec: TaskSpec) -> TaskSpec | Refused:
        """``spec`` with every reference at its object's current version, or why it cannot be."""
        if not spec.files and not spec.secret_env:
            return spec
        current = {key: obj.current.version for key, obj in self.objects.items()}
        result = pinned(spec.files, spec.secret_env, current)
        if isinstance(result, str):
            return Refused(NOT_FOUND, result)
        files, env = result
        return replace(spec, files=tuple(sorted(files)), secret_env=tuple(sorted(env)))

    def users(self, kind: str, name: str) -> tuple[list[str], list[str]]:
        """Services whose current version reads the object, and live tasks that read it."""
        services = [r.name for r in self._services.all() if (kind, name) in reads(r.spec.task)]
        tasks = [t.id for t in self._tasks()
                 if (kind, name) in reads(t.spec) and t.desired == DESIRED_RUN and t.state not in TERMINAL_STATES]
        return services, tasks

    def sealed_values(self) -> list[tuple[str, str, int, str]]:
        """(kind, name, version, envelope) of every sealed value: what a key rotation re-seals."""
        out = [(SECRET, obj.name, v.version, v.data) for obj in self.all(SECRET) for v in obj.versions]
        out += [(REGISTRY, r.server, 0, r.sealed) for r in self.all_registries()]
        return out

    # -- commands ----------------------------------------------------------------------------
    @handles(PutSecret)
    def put(self, cmd: PutSecret, index: int) -> SecretStored | Refused:
        problem = self._put_problem(cmd)
        if problem:
            return Refused(INVALID, problem)
        key = (cmd.kind, cmd.name)
        obj = self.objects.get(key)
        if obj is not None and cmd.create:
            return Refused(EXISTS, f"{cmd.kind} {cmd.name} exists (version {obj.current.version}); update it with "
                                   f"PUT /{cmd.kind}s/{cmd.name} (orion {cmd.kind} update)")
        if obj is not None and (obj.current.digest, obj.current.template) == (cmd.digest, cmd.template):
            return SecretStored(cmd.kind, cmd.name, obj.current.version, changed=False)
        number = obj.current.version + 1 if obj is not None else 1
        new = StoredVersion(number, cmd.at, cmd.size, cmd.digest, cmd.data, cmd.template)
        kept = self._still_read(obj) if obj is not None else ()
        self.objects[key] = StoredObject(cmd.kind, cmd.name, (*kept, new))
        rolled = self._roll_readers(key, cmd.at, index)
        return SecretStored(cmd.kind, cmd.name, number, changed=True, rolled=tuple(rolled))

    def _roll_readers(self, key: tuple[str, str], at: float, index: int) -> list[str]:
        """Declare again every service whose current version reads the object that has just changed:
        as a PUT of the same spec would, now pinned to the new version, so a new service version whose
        replicas roll to the new value with the service's own update settings. The services rolled."""
        rolled = []
        for record in self._services.all():
            if key in reads(record.spec.task):
                result = self._services.put(PutService(spec=record.spec, at=at), index)
                if isinstance(result, ServiceDeclared) and result.changed:
                    rolled.append(record.name)
        return rolled

    def _put_problem(self, cmd: PutSecret) -> str | None:
        if cmd.kind not in KINDS:
            return f"unknown kind {cmd.kind!r}"
        if not cmd.name:
            return f"a {cmd.kind} needs a name"
        if cmd.kind == SECRET:
            if cmd.template:
                return "a secret is never a template (a config is)"
            try:
                sealed_key_id(cmd.data)
            except SealError as exc:  # the machine keeps no plain secret, whoever wrote the entry
                return f"secret {cmd.name}: {exc}"
        return None

    def _still_read(self, obj: StoredObject) -> tuple[StoredVersion, ...]:
        """The versions of ``obj`` some task in the state names (the next one is added beside them)."""
        named = {r.version for t in self._tasks() for r in (*t.spec.files, *t.spec.secret_env)
                 if (getattr(r, "kind", SECRET), r.source) == (obj.kind, obj.name)}
        return tuple(v for v in obj.versions if v.version in named)

    @handles(DeleteSecret)
    def delete(self, cmd: DeleteSecret, index: int) -> SecretDeleted | Refused:
        key = (cmd.kind, cmd.name)
        if key not in self.objects:
            return Refused(NOT_FOUND, f"no {cmd.kind} {cmd.name}")
        services, tasks = self.users(cmd.kind, cmd.name)
        if services or tasks:
            who = f"service(s) {', '.join(services)}" if services else f"task(s) {', '.join(tasks)}"
            return Refused(IN_USE, f"{cmd.kind} {cmd.name} is in use by {who}: remove it from their specs first")
        del self.objects[key]
        return SecretDeleted(cmd.kind, cmd.name)

    @handles(ResealSecrets)
    def reseal(self, cmd: ResealSecrets, index: int) -> Resealed:
        """Each item applied while its value is still sealed with ``old_key``; the others skipped."""
        done, skipped = [], []
        for item in cmd.items:
            label = f"{item.kind} {item.name}" + (f" v{item.version}" if item.kind != REGISTRY else "")
            try:
                new_key = sealed_key_id(item.data)
            except SealError:
                skipped.append(label)
                continue
            if item.kind == REGISTRY:
                auth = self.registries.get(item.name)
                if auth is None or _key(auth.sealed) != item.old_key or new_key == item.old_key:
                    skipped.append(label)
                    continue
                self.registries[item.name] = replace(auth, sealed=item.data, digest=item.digest)
                done.append(label)
                continue
            obj = self.objects.get((item.kind, item.name))
            old = obj.version(item.version) if obj is not None and item.kind == SECRET else None
            if obj is None or old is None or _key(old.data) != item.old_key:
                skipped.append(label)
                continue
            versions = tuple(replace(v, data=item.data, digest=item.digest) if v is old else v for v in obj.versions)
            self.objects[(item.kind, item.name)] = replace(obj, versions=versions)
            done.append(label)
        return Resealed(tuple(done), tuple(skipped))

    @handles(PutRegistryAuth)
    def put_registry(self, cmd: PutRegistryAuth, index: int) -> SecretStored | Refused:
        if not cmd.server or not cmd.username:
            return Refused(INVALID, "registry credentials need a server and a username")
        try:
            sealed_key_id(cmd.sealed)
        except SealError as exc:
            return Refused(INVALID, f"registry {cmd.server}: {exc}")
        old = self.registries.get(cmd.server)
        if old is not None and (old.username, old.digest) == (cmd.username, cmd.digest):
            return SecretStored(REGISTRY, cmd.server, 0, changed=False)
        self.registries[cmd.server] = RegistryAuth(cmd.server, cmd.username, cmd.sealed, cmd.digest, cmd.at)
        return SecretStored(REGISTRY, cmd.server, 0, changed=True)

    @handles(DeleteRegistryAuth)
    def delete_registry(self, cmd: DeleteRegistryAuth, index: int) -> SecretDeleted | Refused:
        if self.registries.pop(cmd.server, None) is None:
            return Refused(NOT_FOUND, f"no credentials for registry {cmd.server}")
        return SecretDeleted(REGISTRY, cmd.server)

    @handles(ReportTaskWaiting)
    def report_waiting(self, cmd: ReportTaskWaiting, index: int) -> TaskChanged | Refused:
        task = self._task(cmd.task_id)
        if task is None:
            return no_task(cmd.task_id)
        if (task.node_id, task.generation) != (cmd.node_id, cmd.generation):
            return Refused(STALE, stale_report(task, cmd.node_id, cmd.generation))
        if task.state != ASSIGNED:
            return Refused(WRONG_STATE, f"task {task.id} is {task.state}: it waits for nothing any more")
        if task.reason != cmd.reason:
            self._put(replace(task, reason=cmd.reason, reason_kind=None, updated_index=index))
        return TaskChanged(self._task(cmd.task_id) or task)

    # -- snapshots ---------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """The machine snapshot's ``secrets`` key, only once used: a machine that never held a secret
        snapshots (and digests) as it did before secrets existed."""
        if not self.objects and not self.registries:
            return {}
        return {"secrets": {"objects": [self.objects[k].to_dict() for k in sorted(self.objects)],
                            "registries": [r.to_dict() for r in self.all_registries()]}}

    def restore(self, snapshot: dict[str, Any]) -> None:
        """From the machine's snapshot (one written before secrets has none)."""
        data = snapshot.get("secrets") or {}
        objects = (StoredObject.from_dict(d) for d in data.get("objects", ()))
        self.objects = {(o.kind, o.name): o for o in objects}
        self.registries = {r.server: r for r in (RegistryAuth.from_dict(d) for d in data.get("registries", ()))}


def _key(envelope: str) -> str:
    try:
        return sealed_key_id(envelope)
    except SealError:
        return ""
