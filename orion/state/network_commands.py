"""The overlay network's commands: fix the settings, take and give back a host's subnet lease.

Beside ``commands.py`` (which holds every other command and the log codec) because
that module is full; they enter its table (``COMMAND_TYPES``) on import, and
``orion/state/__init__.py`` imports this module, so no replica can decode the log
without them. Applied by ``orion/state/network.py``.

They are a newer log format (``NETWORK_LOG_VERSION``): the machine refuses them while a
node that reads only an older one may still read the log, as that node would refuse them
as unreadable; both refuse, so the replicas stay equal (see ``orion/state/network.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from orion.domain.network import NetworkSettings
from orion.state.commands import COMMAND_TYPES, Command


@dataclass(frozen=True)
class InitNetwork(Command):
    """The cluster's network settings, submitted once by the bootstrapping agent once it leads.

    The first one wins; the same settings again change nothing (a leader elected before the
    answer arrived may submit it twice); different ones are refused, naming what is set.
    """

    TYPE: ClassVar[str] = "init_network"
    settings: NetworkSettings = field(default_factory=NetworkSettings)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> dict[str, Any]:
        return {"settings": NetworkSettings.from_dict(body["settings"])}


@dataclass(frozen=True)
class AcquireLease(Command):
    """A node asks for its host's subnet after it registers (every start): the host's lease if
    it has one (the node joins its holders), else a new one, chosen inside the apply.

    ``host`` is the host key (the Docker engine's ID), ``underlay_ip`` where peers send its
    VXLAN packets, ``underlay_mtu`` the MTU of the interface carrying that address: below the
    overlay's MTU plus 50 the host cannot carry full frames and is refused.
    """

    TYPE: ClassVar[str] = "acquire_lease"
    node_id: str = ""
    host: str = ""
    underlay_ip: str = ""
    underlay_mtu: int = 0

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> dict[str, Any]:
        return {"node_id": str(body["node_id"]), "host": str(body["host"]), "underlay_ip": str(body["underlay_ip"]),
                "underlay_mtu": int(body["underlay_mtu"])}


@dataclass(frozen=True)
class ReleaseLease(Command):
    """The leader's decision (``orion/control/lease_reclaim.py``): ``host``'s lease goes back to
    the pool. Refused while any holder is alive, suspect or restarting in the registry, so a
    decision made before a holder came back is never applied after it."""

    TYPE: ClassVar[str] = "release_lease"
    host: str = ""
    reason: str = ""

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> dict[str, Any]:
        return {"host": str(body["host"]), "reason": str(body.get("reason", ""))}


# Into the one table the log is decoded with: a replica that imports orion.state knows them.
COMMAND_TYPES.update({c.TYPE: c for c in (InitNetwork, AcquireLease, ReleaseLease)})
