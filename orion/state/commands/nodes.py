"""Node commands: registration, the membership status the leader commits, a node's readiness.
Applied by ``orion/state/nodes.py``."""

from __future__ import annotations

from dataclasses import field
from typing import ClassVar

from orion.domain.model import NodeInfo
from orion.state.commands.base import Command, command, optional


@command
class RegisterNode(Command):
    """A node announces (or re-announces) its addresses, capacity and labels."""

    TYPE: ClassVar[str] = "register_node"
    node: NodeInfo = field(default_factory=lambda: NodeInfo("", "", ""))


@command
class SetNodeStatus(Command):
    """Membership (gossip, or the leader's liveness view) changed a node's status."""

    TYPE: ClassVar[str] = "set_node_status"
    node_id: str = ""
    status: str = ""


@command
class SetNodeReadiness(Command):
    """A node says whether its container engine answers (``orion/node/readiness.py``).

    Submitted by the node itself, not gossiped: only the node can see its engine,
    and what the leader must act on (move the tasks, place nothing there) has to be
    one replicated fact anyway, so the observation enters the log directly instead
    of travelling as gossip metadata that the leader would translate into a second
    status. A node that cannot reach the leader cannot report, but then gossip and
    liveness judge it as a whole.
    """

    TYPE: ClassVar[str] = "set_node_readiness"
    node_id: str = ""
    ready: bool = True
    reason: str = optional("")
