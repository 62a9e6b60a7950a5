"""The protocol's messages, as frozen dataclasses.

Each has a stable one-byte ``TYPE`` code and a fixed field order; the codec
turns them into ``[TYPE, field, ...]`` lists. Adding a field at the end, with a
default, is backwards compatible both ways (older decoders ignore extra
trailing items; newer ones fill the default when it is missing); renumbering a
type is not, and needs a PROTOCOL_VERSION bump in codec.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from orion.gossip.member import Addr


@dataclass(frozen=True)
class Ping:
    """Direct probe. ``target`` guards against a restarted process on a reused
    address answering for a member it is not."""

    TYPE: ClassVar[int] = 1
    seq: int
    target: str
    source: str


@dataclass(frozen=True)
class IndirectPing:
    """ping-req: "please probe ``target`` for me and forward its ack"."""

    TYPE: ClassVar[int] = 2
    seq: int
    target: str
    target_addr: Addr
    nack: bool
    source: str


@dataclass(frozen=True)
class Ack:
    TYPE: ClassVar[int] = 3
    seq: int


@dataclass(frozen=True)
class Nack:
    """Lifeguard: an indirect prober saying "the target did not answer me
    either" -- proof that the requester's own network path works."""

    TYPE: ClassVar[int] = 4
    seq: int


@dataclass(frozen=True)
class Alive:
    TYPE: ClassVar[int] = 5
    incarnation: int
    node: str
    addr: Addr
    meta: dict[str, Any]


@dataclass(frozen=True)
class Suspect:
    TYPE: ClassVar[int] = 6
    incarnation: int
    node: str
    accuser: str


@dataclass(frozen=True)
class Dead:
    """``accuser == node`` means a graceful leave."""

    TYPE: ClassVar[int] = 7
    incarnation: int
    node: str
    accuser: str


@dataclass(frozen=True)
class NodeState:
    """One row of a push-pull full state exchange (not a message by itself)."""

    name: str
    addr: Addr
    meta: dict[str, Any]
    incarnation: int
    state: str


@dataclass(frozen=True)
class PushPull:
    """State sync over TCP: on join, and periodically for anti-entropy.

    ``states`` empty means "digest only": the sender's view, as
    push_pull.table_digest, without the table (a table always holds its sender,
    so a full one is never empty). ``digest`` is b"" from nodes that predate
    digests; they send and expect full tables. See push_pull.py for who answers
    what."""

    TYPE: ClassVar[int] = 8
    source: str
    source_addr: Addr
    join: bool
    reply: bool
    states: tuple[NodeState, ...]
    digest: bytes = b""


@dataclass(frozen=True)
class Compound:
    """Several messages in one datagram: a probe plus piggybacked gossip."""

    TYPE: ClassVar[int] = 9
    parts: tuple[Message, ...]


Message = Ping | IndirectPing | Ack | Nack | Alive | Suspect | Dead | PushPull | Compound
MESSAGE_TYPES: dict[int, type] = {
    cls.TYPE: cls for cls in (Ping, IndirectPing, Ack, Nack, Alive, Suspect, Dead, PushPull, Compound)
}

UDP = "udp"
TCP = "tcp"


@dataclass(frozen=True)
class Out:
    """Something the core wants sent. ``via`` is a wish: the transport moves a
    UDP message that is too big for a datagram onto TCP."""

    dest: Addr
    msg: Message
    via: str = UDP
