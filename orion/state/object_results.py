"""The results of the commands on the cluster's own objects: secrets, configs and registry
credentials (``orion/state/secrets.py``), the overlay's settings and subnet leases
(``orion/state/network.py``). Typed successes like those in ``results.py``, which names them
in its ``Result`` and reads their plain forms back; here so that module stays one screenful
of the replica's own changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from orion.domain.network import NetworkSettings, SubnetLease


@dataclass(frozen=True)
class SecretStored:
    """A secret's or config's version (``changed`` False: the same value again, ``version`` the
    current one) and the services a new version rolled; registry credentials are kind
    ``registry``, named by their server, version 0 (``orion/state/secrets.py``). Never a value."""

    kind: str
    name: str
    version: int
    changed: bool
    rolled: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "stored": self.kind, "name": self.name, "version": self.version,
                "changed": self.changed, "rolled": list(self.rolled)}


@dataclass(frozen=True)
class SecretDeleted:
    """A secret, config (``kind``) or a registry's credentials (kind ``registry``) removed."""

    kind: str
    name: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "deleted": self.kind, "name": self.name}


@dataclass(frozen=True)
class Resealed:
    """A key rotation's batch (``ResealSecrets``): the values sealed again, and those skipped (no
    longer under the old key, or gone), each named ``kind name[ vN]``."""

    resealed: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "resealed": list(self.resealed), "skipped": list(self.skipped)}


@dataclass(frozen=True)
class NetworkSet:
    """The cluster's network settings as committed; ``changed`` False: the same ones again."""

    settings: NetworkSettings
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "settings": self.settings.to_dict(), "changed": self.changed}


@dataclass(frozen=True)
class LeaseAcquired:
    """A host's lease with the node among its holders; ``created``: a subnet newly leased."""

    lease: SubnetLease
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "lease": self.lease.to_dict(), "created": self.created}


@dataclass(frozen=True)
class LeaseReleased:
    """A dead host's lease gone back to the pool, and why the leader released it."""

    lease: SubnetLease
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, "released": self.lease.to_dict(), "reason": self.reason}
