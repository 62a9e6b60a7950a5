"""Commands for secrets, configs and registry credentials (docs/secrets.md), applied by
``orion/state/secrets.py``.

Every value that must stay secret arrives here already sealed by the node that took the API
request (``orion/domain/sealing.py``): the log and the snapshots hold the envelope, its key id
and a keyed digest, never the value. A config's bytes travel as base64: configs are not secret.

Registered with the other commands when ``orion.state`` is imported (``__init__.py``); each
reads its own log form (``fields_from``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from orion.domain.secrets import SECRET
from orion.state.commands import COMMAND_TYPES, Command


@dataclass(frozen=True)
class PutSecret(Command):
    """A secret's or config's next version (``kind``), or its first: ``data`` is the sealed
    envelope (secret) or the base64 bytes (config). The same digest again is no new version. A
    new version re-declares every service that reads the object, so each rolls to it with its
    update settings. ``create`` (POST) refuses a name that exists. ``at``: the accepting node's
    clock."""

    TYPE: ClassVar[str] = "put_secret"
    kind: str = SECRET
    name: str = ""
    data: str = ""
    size: int = 0
    digest: str = ""
    template: bool = False
    at: float = 0.0
    create: bool = False

    @classmethod
    def fields_from(cls, body: dict[str, Any]) -> dict[str, Any]:
        return dict(request_id=str(body.get("request_id", "")), kind=str(body["kind"]), name=str(body["name"]),
                    data=str(body["data"]), size=int(body["size"]), digest=str(body["digest"]),
                    template=bool(body.get("template", False)), at=float(body["at"]),
                    create=bool(body.get("create", False)))


@dataclass(frozen=True)
class DeleteSecret(Command):
    """Remove a secret or config; refused while a service or a live task reads it."""

    TYPE: ClassVar[str] = "delete_secret"
    kind: str = SECRET
    name: str = ""

    @classmethod
    def fields_from(cls, body: dict[str, Any]) -> dict[str, Any]:
        return dict(request_id=str(body.get("request_id", "")), kind=str(body["kind"]), name=str(body["name"]))


@dataclass(frozen=True)
class Reseal:
    """One value sealed again under another key (a key rotation): secret ``name`` at ``version``,
    or registry credentials (``kind`` ``registry``, ``name`` the server, ``version`` 0). Applied
    only while the value is still sealed with ``old_key`` (a rotation that raced another)."""

    kind: str
    name: str
    version: int
    old_key: str
    data: str
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "version": self.version, "old_key": self.old_key,
                "data": self.data, "digest": self.digest}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Reseal:
        return cls(str(d["kind"]), str(d["name"]), int(d["version"]), str(d["old_key"]), str(d["data"]),
                   str(d["digest"]))


@dataclass(frozen=True)
class ResealSecrets(Command):
    """Part of a key rotation (``orion/control/rotation.py``): values sealed again, in place. The
    version numbers stay, so no service rolls: a task reads the same value through the new key."""

    TYPE: ClassVar[str] = "reseal_secrets"
    items: tuple[Reseal, ...] = ()

    @classmethod
    def fields_from(cls, body: dict[str, Any]) -> dict[str, Any]:
        return dict(request_id=str(body.get("request_id", "")),
                    items=tuple(Reseal.from_dict(i) for i in body.get("items") or ()))


@dataclass(frozen=True)
class PutRegistryAuth(Command):
    """Credentials for an image registry (``orion registry login``): the password or token sealed
    (purpose ``registry``, name ``server``), replacing any earlier ones for that server."""

    TYPE: ClassVar[str] = "put_registry_auth"
    server: str = ""
    username: str = ""
    sealed: str = ""
    digest: str = ""
    at: float = 0.0

    @classmethod
    def fields_from(cls, body: dict[str, Any]) -> dict[str, Any]:
        return dict(request_id=str(body.get("request_id", "")), server=str(body["server"]),
                    username=str(body["username"]), sealed=str(body["sealed"]), digest=str(body["digest"]),
                    at=float(body["at"]))


@dataclass(frozen=True)
class DeleteRegistryAuth(Command):
    """Forget a registry's credentials (``orion registry rm``)."""

    TYPE: ClassVar[str] = "delete_registry_auth"
    server: str = ""

    @classmethod
    def fields_from(cls, body: dict[str, Any]) -> dict[str, Any]:
        return dict(request_id=str(body.get("request_id", "")), server=str(body["server"]))


@dataclass(frozen=True)
class ReportTaskWaiting(Command):
    """A node says why a task placed on it cannot start yet and is not the task's fault (a registry
    that wants credentials, a secret this node cannot open): the task stays ``assigned`` with the
    reason, and the node tries again when the state changes. Refused for another placement."""

    TYPE: ClassVar[str] = "report_task_waiting"
    task_id: str = ""
    node_id: str = ""
    generation: int = 0
    reason: str = ""

    @classmethod
    def fields_from(cls, body: dict[str, Any]) -> dict[str, Any]:
        return dict(request_id=str(body.get("request_id", "")), task_id=str(body["task_id"]),
                    node_id=str(body["node_id"]), generation=int(body["generation"]), reason=str(body["reason"]))


SECRET_COMMANDS: tuple[type[Command], ...] = (PutSecret, DeleteSecret, ResealSecrets, PutRegistryAuth,
                                              DeleteRegistryAuth, ReportTaskWaiting)
COMMAND_TYPES.update({c.TYPE: c for c in SECRET_COMMANDS})
