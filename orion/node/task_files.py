"""What a task's container needs from the replicated state before it starts: its secret and config
files, its secrets as environment variables, its registry's credentials (docs/secrets.md). Pure:
state values and this node's keyring in, a :class:`Prepared` (what to write and hand the engine)
or a :class:`Blocked` (why it cannot start here) out. ``orion/node/task_inputs.py`` runs it;
``orion/runtime/tmpfs.py`` writes the files.

This is the one place a sealed value is opened, on the node that runs the task, at the moment its
container is created. The opened bytes live in the returned value (never in its repr) and in the
tmpfs file; nothing here logs or reports them. A :class:`Blocked` sentence names objects, versions
and key ids, never a value.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from orion.domain.model import RUNNING, NodeInfo, Task, TaskSpec
from orion.domain.sealing import Keyring, SealError, open_sealed
from orion.domain.secrets import SECRET, RegistryAuth, StoredObject, registry_of
from orion.node.templates import TemplateValues, render
from orion.runtime.tmpfs import FileToWrite

REGISTRY_PURPOSE = "registry"


@dataclass(frozen=True)
class Prepared:
    """What the container gets: files to write, secret environment variables, pull credentials."""

    files: tuple[FileToWrite, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    auth: dict[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Blocked:
    """The task cannot start on this node. ``waits``: no node would do better (the cluster lacks
    something: credentials, a deleted object), so the task waits here with the reason; otherwise
    this node is the problem (no cluster key, a key it lacks) and the task fails, so its restart
    policy may place it elsewhere."""

    reason: str
    waits: bool = False


def plan(spec: TaskSpec, objects: Mapping[tuple[str, str], StoredObject],
         registries: Mapping[str, RegistryAuth], keyring: Keyring | None,
         values: TemplateValues) -> Prepared | Blocked:
    """Open, decode and render what ``spec`` reads, as of the versions pinned in it."""
    files: list[FileToWrite] = []
    for number, ref in enumerate(spec.files):
        content = _content(ref.kind, ref.source, ref.version, objects, keyring, values)
        if isinstance(content, Blocked):
            return content
        files.append(FileToWrite(f"{number}-{ref.kind}-{ref.source}", ref.target, content, ref.mode, ref.uid,
                                 ref.gid))
    env: list[tuple[str, str]] = []
    for var in spec.secret_env:
        content = _content(SECRET, var.source, var.version, objects, keyring, values)
        if isinstance(content, Blocked):
            return content
        try:
            env.append((var.name, content.decode("utf-8")))
        except UnicodeDecodeError:
            return Blocked(f"secret {var.source} is not UTF-8 text, so it cannot be the environment variable "
                           f"{var.name}; mount it as a file")
    auth = registry_auth(spec.image, registries, keyring)
    if isinstance(auth, Blocked):
        return auth
    return Prepared(tuple(files), tuple(env), auth)


def _content(kind: str, name: str, version: int, objects: Mapping[tuple[str, str], StoredObject],
             keyring: Keyring | None, values: TemplateValues) -> bytes | Blocked:
    obj = objects.get((kind, name))
    stored = obj.version(version) if obj is not None else None
    if stored is None:
        return Blocked(f"{kind} {name} version {version} no longer exists (deleted since the task was declared); "
                       f"create it again or update the task", waits=True)
    if kind == SECRET:
        if keyring is None:
            return Blocked(f"secret {name}: this node has no cluster key (cluster_key_file); the task needs a node "
                           "that holds it")
        try:
            return open_sealed(keyring, stored.data, SECRET, name)
        except SealError as exc:
            return Blocked(f"secret {name} version {version}: {exc}")
    try:
        raw = base64.b64decode(stored.data, validate=True)
    except (binascii.Error, ValueError):
        return Blocked(f"config {name} version {version} is not stored as base64")
    if not stored.template:
        return raw
    try:
        return render(raw.decode("utf-8"), values).encode("utf-8")
    except (UnicodeDecodeError, ValueError) as exc:
        return Blocked(f"config template {name} version {version}: {exc}")


def registry_auth(image: str, registries: Mapping[str, RegistryAuth],
                  keyring: Keyring | None) -> dict[str, str] | None | Blocked:
    """The engine's ``auth_config`` for pulling ``image`` (None: the registry has no credentials)."""
    server = registry_of(image)
    stored = registries.get(server)
    if stored is None:
        return None
    if keyring is None:
        return Blocked(f"registry {server} has credentials, but this node has no cluster key to open them")
    try:
        password = open_sealed(keyring, stored.sealed, REGISTRY_PURPOSE, server).decode("utf-8")
    except (SealError, UnicodeDecodeError) as exc:
        return Blocked(f"registry {server}'s credentials: {exc}")
    return {"username": stored.username, "password": password, "serveraddress": server}


def template_values(task: Task, node_id: str, nodes: Mapping[str, NodeInfo], tasks: Sequence[Task],
                    overlay_ip: str = "") -> TemplateValues:
    """The values a task's templates read, from the state as this node sees it."""
    endpoints: dict[str, list[str]] = {}
    for other in tasks:
        node = nodes.get(other.node_id or "")
        if not other.service or other.state != RUNNING or node is None or not other.host_ports:
            continue
        host = node.api_addr.rpartition(":")[0] or node.api_addr
        port = sorted(other.host_ports)[0][1]
        endpoints.setdefault(other.service, []).append(f"{host}:{port}")
    here = nodes.get(node_id)
    return TemplateValues(
        service=task.service or task.spec.group or task.id, slot=str(task.slot) if task.service else "",
        task=task.id, version=str(task.version) if task.service else "", node=node_id,
        node_addr=(here.api_addr.rpartition(":")[0] if here else ""), overlay_ip=overlay_ip,
        endpoints={k: tuple(sorted(v)) for k, v in endpoints.items()})
