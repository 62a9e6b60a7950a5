"""Commands for secrets, configs and registry credentials (docs/secrets.md), applied by
``orion/state/secrets.py``.

Every value that must stay secret arrives here already sealed by the node that took the API
request (``orion/domain/sealing.py``): the log and the snapshots hold the envelope, its key id
and a keyed digest, never the value. A config's bytes travel as base64: configs are not secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from orion.domain.secrets import SECRET
from orion.state.commands.base import Command, command, optional


@command
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
    template: bool = optional(False)
    at: float = 0.0
    create: bool = optional(False)


@command
class DeleteSecret(Command):
    """Remove a secret or config; refused while a service or a live task reads it."""

    TYPE: ClassVar[str] = "delete_secret"
    kind: str = SECRET
    name: str = ""


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


@command
class ResealSecrets(Command):
    """Part of a key rotation (``orion/control/rotation.py``): values sealed again, in place. The
    version numbers stay, so no service rolls: a task reads the same value through the new key."""

    TYPE: ClassVar[str] = "reseal_secrets"
    items: tuple[Reseal, ...] = optional(())


@command
class PutRegistryAuth(Command):
    """Credentials for an image registry (``orion registry login``): the password or token sealed
    (purpose ``registry``, name ``server``), replacing any earlier ones for that server."""

    TYPE: ClassVar[str] = "put_registry_auth"
    server: str = ""
    username: str = ""
    sealed: str = ""
    digest: str = ""
    at: float = 0.0


@command
class DeleteRegistryAuth(Command):
    """Forget a registry's credentials (``orion registry rm``)."""

    TYPE: ClassVar[str] = "delete_registry_auth"
    server: str = ""


@command
class ReportTaskWaiting(Command):
    """A node says why a task placed on it cannot start yet and is not the task's fault (a registry
    that wants credentials, a secret this node cannot open): the task stays ``assigned`` with the
    reason, and the node tries again when the state changes. Refused for another placement."""

    TYPE: ClassVar[str] = "report_task_waiting"
    task_id: str = ""
    node_id: str = ""
    generation: int = 0
    reason: str = ""
