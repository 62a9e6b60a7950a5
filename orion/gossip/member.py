"""Values the gossip core hands out: who a member is, what state it is in, what changed.

They are frozen so a snapshot handed to the agent (or a test) can never be
mutated behind the core's back. ``meta`` is a plain JSON-like dict because it
crosses the wire and must stay readable by older/newer nodes; treat it as
read-only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orion.domain.model import NODE_ALIVE, NODE_DEAD, NODE_LEFT, NODE_SUSPECT

# Gossip uses the registry's words for states so the agent maps them 1:1.
ALIVE = NODE_ALIVE
SUSPECT = NODE_SUSPECT
DEAD = NODE_DEAD
LEFT = NODE_LEFT
STATES = (ALIVE, SUSPECT, DEAD, LEFT)

Addr = tuple[str, int]


@dataclass(frozen=True)
class Member:
    """Identity this node gossips about itself."""

    name: str
    addr: Addr
    meta: dict[str, Any] = field(default_factory=dict)
    incarnation: int = 0


@dataclass(frozen=True)
class MemberState:
    """One member as this node currently sees it."""

    name: str
    addr: Addr
    meta: dict[str, Any]
    incarnation: int
    state: str
    state_since: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "addr": f"{self.addr[0]}:{self.addr[1]}",
            "meta": self.meta,
            "incarnation": self.incarnation,
            "state": self.state,
        }


@dataclass(frozen=True)
class MemberEvent:
    """A change in the membership view. ``source`` names who declared it (for
    dead/suspect: the accuser; equal to our own name when our own timer fired).

    ``kind``: ``join`` (first time we hear of a member), ``alive`` (a suspect,
    dead or left member is alive again: refuted, healed, or restarted),
    ``suspect``, ``dead``, ``left``, or ``update`` (same member, new metadata).
    """

    kind: str
    member: MemberState
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "source": self.source, **self.member.to_dict()}
