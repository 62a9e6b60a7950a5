"""Wire format: a 2-byte header, then msgpack, optionally sealed with AES-GCM.

    byte 0   PROTOCOL_VERSION   -- a node refuses versions it does not speak
    byte 1   flags              -- bit 0: body is encrypted
    rest     msgpack([TYPE, field, ...])                     (plain)
             nonce(12) || AES-GCM(msgpack(...), aad=header)  (encrypted)

Decoding is strict and total: any input either yields a well-typed message or
raises :class:`DecodeError` (:class:`Unauthenticated` for crypto failures), so
the transport can count and drop bad packets with a single ``except``.
With a keyring configured, plaintext packets are refused: otherwise anyone on
the network could inject membership changes.
"""

from __future__ import annotations

import base64
import os
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import msgpack
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from orion.gossip.messages import MESSAGE_TYPES, Compound, Message, NodeState

PROTOCOL_VERSION = 1
FLAG_ENCRYPTED = 0x01
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = 2
# What encryption adds to a packet; the core budgets piggybacking with it.
PACKET_OVERHEAD = HEADER_SIZE + NONCE_SIZE + TAG_SIZE

MAX_STR = 1024  # names, states: anything longer is garbage, not a member
MAX_BYTES = 64  # digests: 16 bytes today, room for a longer hash later
MAX_PARTS = 512  # messages in one compound
MAX_INT = 2**63 - 1


class DecodeError(Exception):
    """The packet is malformed, from another protocol version, or too big."""


class Unauthenticated(DecodeError):
    """The packet is not sealed with any key we hold (or is plain when we require keys)."""


@dataclass(frozen=True)
class Keyring:
    """Shared AES keys. The first seals outgoing packets; all are tried when
    opening, so a new key can be installed everywhere before it becomes primary
    (rotation without a flag day)."""

    keys: tuple[bytes, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")
        for k in self.keys:
            if len(k) not in (16, 24, 32):
                raise ValueError("AES keys must be 16, 24 or 32 bytes")

    @classmethod
    def from_file(cls, path: str | Path) -> Keyring:
        """One base64 key per line, primary first; blank lines and '#' comments ignored."""
        lines = Path(path).read_text().splitlines()
        keys = [base64.b64decode(ln.strip()) for ln in lines if ln.strip() and not ln.startswith("#")]
        return cls(tuple(keys))

    @staticmethod
    def generate() -> bytes:
        return AESGCM.generate_key(bit_length=256)


# --- message <-> plain lists -------------------------------------------------


def _enc_field(kind: str, value: Any) -> Any:
    if kind == "Addr":
        return [value[0], value[1]]
    if kind == "tuple[NodeState, ...]":
        return [[s.name, [s.addr[0], s.addr[1]], s.meta, s.incarnation, s.state] for s in value]
    if kind == "tuple[Message, ...]":
        return [to_wire(m) for m in value]
    return value


def to_wire(msg: Message) -> list[Any]:
    return [msg.TYPE, *(_enc_field(str(f.type), getattr(msg, f.name)) for f in fields(msg))]


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_INT:
        raise DecodeError(f"bad int {v!r}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str) or len(v) > MAX_STR:
        raise DecodeError("bad str")
    return v


def _bytes(v: Any) -> bytes:
    if not isinstance(v, bytes) or len(v) > MAX_BYTES:
        raise DecodeError("bad bytes")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise DecodeError("bad bool")
    return v


def _addr(v: Any) -> tuple[str, int]:
    if not isinstance(v, list) or len(v) != 2:
        raise DecodeError("bad addr")
    port = _int(v[1])
    if port > 65535:
        raise DecodeError("bad port")
    return (_str(v[0]), port)


def _meta(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict):
        raise DecodeError("bad meta")
    return v


def _state(v: Any) -> NodeState:
    if not isinstance(v, list) or len(v) < 5:
        raise DecodeError("bad node state")
    return NodeState(_str(v[0]), _addr(v[1]), _meta(v[2]), _int(v[3]), _str(v[4]))


def _states(v: Any) -> tuple[NodeState, ...]:
    if not isinstance(v, list):
        raise DecodeError("bad states")
    return tuple(_state(s) for s in v)


def _parts(v: Any) -> tuple[Message, ...]:
    if not isinstance(v, list) or len(v) > MAX_PARTS:
        raise DecodeError("bad compound")
    parts = tuple(from_wire(p, nested=True) for p in v)
    return parts


_DECODERS = {
    "int": _int,
    "str": _str,
    "bool": _bool,
    "bytes": _bytes,
    "Addr": _addr,
    "dict[str, Any]": _meta,
    "tuple[NodeState, ...]": _states,
    "tuple[Message, ...]": _parts,
}


def from_wire(obj: Any, nested: bool = False) -> Message:
    if not isinstance(obj, list) or not obj:
        raise DecodeError("message is not a list")
    cls = MESSAGE_TYPES.get(obj[0]) if isinstance(obj[0], int) and not isinstance(obj[0], bool) else None
    if cls is None:
        raise DecodeError(f"unknown message type {obj[0]!r}")
    if nested and cls is Compound:
        raise DecodeError("nested compound")
    fs = fields(cls)
    if len(obj) - 1 < sum(1 for f in fs if f.default is MISSING):
        raise DecodeError(f"{cls.__name__}: too few fields")
    # Trailing extra items are ignored and trailing fields with a default may be
    # missing: that is how fields get added compatibly (older peers omit them).
    values = [_DECODERS[str(f.type)](v) for f, v in zip(fs, obj[1:], strict=False)]
    return cls(*values)  # type: ignore[no-any-return]


# --- packets -----------------------------------------------------------------


def encode_body(msg: Message) -> bytes:
    return msgpack.packb(to_wire(msg), use_bin_type=True)  # type: ignore[no-any-return]


def encoded_size(msg: Message) -> int:
    """Plain body size; the core uses it to fill datagrams up to the budget."""
    return len(encode_body(msg))


def encode(msg: Message, keyring: Keyring | None = None) -> bytes:
    body = encode_body(msg)
    if keyring is None:
        return bytes((PROTOCOL_VERSION, 0)) + body
    header = bytes((PROTOCOL_VERSION, FLAG_ENCRYPTED))
    nonce = os.urandom(NONCE_SIZE)
    return header + nonce + AESGCM(keyring.keys[0]).encrypt(nonce, body, header)


def decode(data: bytes, keyring: Keyring | None = None, max_size: int | None = None) -> Message:
    """Parse one packet. Raises DecodeError / Unauthenticated, never anything else."""
    if max_size is not None and len(data) > max_size:
        raise DecodeError("oversized packet")
    if len(data) < HEADER_SIZE + 1:
        raise DecodeError("short packet")
    version, flags = data[0], data[1]
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"protocol version {version} not spoken (we speak {PROTOCOL_VERSION})")
    encrypted = bool(flags & FLAG_ENCRYPTED)
    body = data[HEADER_SIZE:]
    if keyring is not None:
        if not encrypted:
            raise Unauthenticated("plaintext packet while a key is required")
        body = _open(body, data[:HEADER_SIZE], keyring)
    elif encrypted:
        raise Unauthenticated("encrypted packet but no key configured")
    try:
        obj = msgpack.unpackb(body, raw=False, use_list=True, strict_map_key=True)
        return from_wire(obj)
    except DecodeError:
        raise
    except Exception as e:  # msgpack raises many types; all mean "garbage"
        raise DecodeError(f"malformed body: {type(e).__name__}") from e


def _open(sealed: bytes, header: bytes, keyring: Keyring) -> bytes:
    if len(sealed) < NONCE_SIZE + TAG_SIZE:
        raise Unauthenticated("sealed packet too short")
    nonce, ct = sealed[:NONCE_SIZE], sealed[NONCE_SIZE:]
    for key in keyring.keys:
        try:
            return AESGCM(key).decrypt(nonce, ct, header)  # type: ignore[no-any-return]
        except Exception:
            continue
    raise Unauthenticated("no key opens this packet")
