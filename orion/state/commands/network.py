"""The overlay network's commands: fix the settings, take and give back a host's subnet lease
(docs/network-leases.md). Applied by ``orion/state/network.py``.

They are a newer log format (``NETWORK_LOG_VERSION``, log format 4): the machine refuses them
(kind ``log_version``) while a node that reads only an older format may still read the log,
as that node would refuse them as unreadable; both refuse, so the replicas stay equal. A
task's overlay address travels in ``ReportTaskState.ip`` (``tasks.py``), written only when set.
"""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

from orion.domain.network import NetworkSettings
from orion.state.commands.base import Command, command


@command
class InitNetwork(Command):
    """The cluster's network settings, submitted once by the bootstrapping agent once it leads.

    The first one wins; the same settings again change nothing (a leader elected before the
    answer arrived may submit it twice); different ones are refused, naming what is set.
    """

    TYPE: ClassVar[str] = "init_network"
    settings: NetworkSettings = field(default_factory=NetworkSettings)


@command
class AcquireLease(Command):
    """A node asks for its host's subnet after it registers (every start): the host's lease if
    it has one (the node joins its holders), else a new one, chosen inside the apply.

    ``host`` is the host key (the Docker engine's ID), ``underlay_ip`` where peers send its
    VXLAN packets, ``underlay_mtu`` the MTU of the interface carrying that address: below the
    overlay's MTU plus 50 the host cannot carry full frames and is refused (kind ``mtu``).
    """

    TYPE: ClassVar[str] = "acquire_lease"
    node_id: str = ""
    host: str = ""
    underlay_ip: str = ""
    underlay_mtu: int = 0


@command
class ReleaseLease(Command):
    """The leader's decision (``orion/control/lease_reclaim.py``): ``host``'s lease goes back to
    the pool. Refused while any holder is alive, suspect or restarting in the registry, so a
    decision made before a holder came back is never applied after it."""

    TYPE: ClassVar[str] = "release_lease"
    host: str = ""
    reason: str = ""
