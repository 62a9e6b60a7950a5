"""Orion's gossip membership: SWIM with the three Lifeguard extensions.

``Swim`` is the pure core (feed it messages and ticks, get messages and events
back); ``sim.Simulation`` runs many cores on a virtual clock; the real sockets
are in ``transport.GossipNode`` (imported explicitly, so ``python -m
orion.gossip.transport`` runs cleanly). See docs/gossip.md.
"""

from orion.gossip.config import GossipConfig
from orion.gossip.member import Member, MemberEvent, MemberState
from orion.gossip.messages import Out
from orion.gossip.meta import NodeMeta
from orion.gossip.swim import Swim

__all__ = ["GossipConfig", "Member", "MemberEvent", "MemberState", "NodeMeta", "Out", "Swim"]
