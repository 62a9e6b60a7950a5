"""Secrets, configs and registry credentials as values (docs/secrets.md).

A **secret** (a password, a TLS key) and a **config** (a file that is not secret) are named,
versioned objects in the replicated state; a task names them in its spec and gets each as a
file (:class:`FileRef`), or a secret as an environment variable (:class:`EnvSecret`, weaker:
``docker inspect`` shows it). A secret's bytes are only ever in the state sealed
(``orion/domain/sealing.py``); a config's are kept as they are and can be read back. A
**registry credential** is a sealed password or token for one image registry, used by every
node that pulls from it.

Versions: a new value of an object is its next version. A task's references are *pinned* to a
version by the state machine when the task or its service version is declared (``pinned``), so
a replica always reads the value it was declared with: a service whose secret changes gets a
new version whose replicas read the new value, rolled out with its update settings, while the
replicas not yet replaced keep reading the old one.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

SECRET = "secret"
CONFIG = "config"
KINDS = (SECRET, CONFIG)
# Swarm's defaults: a secret under /run/secrets/<name>, a config at /<name>.
DEFAULT_DIRS = {SECRET: "/run/secrets", CONFIG: "/"}
# Readable by the task's user only for a secret, by anyone in the container for a config.
DEFAULT_MODES = {SECRET: 0o400, CONFIG: 0o444}
# A name is a file name too (the default target): no slash, no leading dot.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def default_target(kind: str, name: str) -> str:
    return posixpath.join(DEFAULT_DIRS[kind], name)


def target_problem(target: str) -> str | None:
    """Why ``target`` cannot be a file's path in a container, or None."""
    if not target.startswith("/"):
        return f"{target!r} must be an absolute path"
    if posixpath.normpath(target) in ("/", "//") or target.endswith("/"):
        return f"{target!r} must name a file, not a directory"
    if ".." in target.split("/"):
        return f"{target!r} must not contain '..'"
    if "\x00" in target:
        return "a path cannot hold a NUL byte"
    return None


@dataclass(frozen=True, order=True)
class FileRef:
    """A file a task gets from a secret or a config: ``source`` at ``version`` (0 until the state
    machine pins it), written at ``target`` with ``mode``, ``uid`` and ``gid``."""

    kind: str
    source: str
    target: str
    mode: int
    uid: int = 0
    gid: int = 0
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "source": self.source, "target": self.target, "mode": self.mode,
                "uid": self.uid, "gid": self.gid, "version": self.version}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FileRef:
        return cls(str(d["kind"]), str(d["source"]), str(d["target"]), int(d["mode"]), int(d.get("uid", 0)),
                   int(d.get("gid", 0)), int(d.get("version", 0)))


@dataclass(frozen=True, order=True)
class EnvSecret:
    """An environment variable ``name`` holding secret ``source`` at ``version`` (0: not pinned)."""

    name: str
    source: str
    version: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "version": self.version}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EnvSecret:
        return cls(str(d["name"]), str(d["source"]), int(d.get("version", 0)))


def references(files: Iterable[FileRef], env: Iterable[EnvSecret]) -> frozenset[tuple[str, str]]:
    """(kind, name) of every object a task reads."""
    return frozenset({(f.kind, f.source) for f in files} | {(SECRET, e.source) for e in env})


def pinned(files: tuple[FileRef, ...], env: tuple[EnvSecret, ...],
           current: Mapping[tuple[str, str], int]) -> tuple[tuple[FileRef, ...], tuple[EnvSecret, ...]] | str:
    """Every reference pinned to its object's ``current`` version, or the sentence naming the
    first object that does not exist (the machine's refusal)."""
    for kind, name in sorted(references(files, env)):
        if (kind, name) not in current:
            return f"no {kind} {name}; create it first (orion {kind} create {name} -f FILE)"
    return (tuple(replace(f, version=current[(f.kind, f.source)]) for f in files),
            tuple(replace(e, version=current[(SECRET, e.source)]) for e in env))


# -- what the state keeps -------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredVersion:
    """One version of a secret or config. ``data``: a secret's sealed envelope, a config's bytes
    as base64. ``digest``: keyed for a secret (sealing.digest), a plain SHA-256 for a config.
    ``template``: a config rendered with the task's values on its node (``orion/node/templates.py``).
    ``created``: the accepting node's clock."""

    version: int
    created: float
    size: int
    digest: str
    data: str
    template: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "created": self.created, "size": self.size, "digest": self.digest,
                "data": self.data, "template": self.template}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StoredVersion:
        return cls(int(d["version"]), float(d["created"]), int(d["size"]), str(d["digest"]), str(d["data"]),
                   bool(d.get("template", False)))


@dataclass(frozen=True)
class StoredObject:
    """A secret or a config: its versions, oldest first, the current one last. Older versions
    stay only while a live task still reads them (the machine prunes the rest)."""

    kind: str
    name: str
    versions: tuple[StoredVersion, ...]

    @property
    def current(self) -> StoredVersion:
        return self.versions[-1]

    def version(self, number: int) -> StoredVersion | None:
        return next((v for v in self.versions if v.version == number), None)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "versions": [v.to_dict() for v in self.versions]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StoredObject:
        return cls(str(d["kind"]), str(d["name"]), tuple(StoredVersion.from_dict(v) for v in d["versions"]))


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one image registry: ``username`` in the clear, the password or token sealed
    (purpose ``registry``, name = server), its keyed digest, when it was stored."""

    server: str
    username: str
    sealed: str
    digest: str
    created: float

    def to_dict(self) -> dict[str, Any]:
        return {"server": self.server, "username": self.username, "sealed": self.sealed, "digest": self.digest,
                "created": self.created}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RegistryAuth:
        return cls(str(d["server"]), str(d["username"]), str(d["sealed"]), str(d["digest"]), float(d["created"]))


# -- image references ------------------------------------------------------------------------------

DOCKER_HUB = "docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}


def registry_of(image: str) -> str:
    """The registry an image reference pulls from: its first component when that names a host
    (has a dot or a port, or is ``localhost``; Docker's rule), else Docker Hub."""
    first, sep, _ = image.partition("/")
    if not sep or not ("." in first or ":" in first or first == "localhost"):
        return DOCKER_HUB
    return normalize_server(first)


def normalize_server(server: str) -> str:
    """``https://ghcr.io/`` -> ``ghcr.io``; every Docker Hub spelling -> ``docker.io``."""
    text = server.strip()
    for scheme in ("https://", "http://"):
        if text.lower().startswith(scheme):
            text = text[len(scheme):]
    text = text.split("/", 1)[0].lower()
    return DOCKER_HUB if text in _HUB_ALIASES else text


SERVER_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?$")
