"""The canonical form of the machine's snapshot, and its SHA-256: the state's digest.

One definition for the three places that must agree byte for byte: ``GET /raft``'s
``digest`` (``orion/store/digest.py``: replicas at equal indexes show equal
digests), the checksum a snapshot file carries (``orion/store/snapshot_file.py``),
and the check every replica makes before it applies a restore
(``StateMachine``, ``RestoreSnapshot``). So a restored cluster shows, at the
restore's index, the very digest written in the file.

Canonical: JSON with sorted keys, no whitespace, ASCII. The snapshot's lists are
already in an order that is a function of the state (tasks by creation index,
nodes by id; remembered requests in the order that decides which one is
forgotten first), never in the order a replica happened to fill a dict.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import json
import zlib
from typing import Any

# gzip level 1: the state is repetitive JSON, so level 1 already shrinks it ~25x; level 6 saves a
# few percent more at ~3x the time, paid while a 10,000-task state is saved (bench/snapshot.py).
GZIP_LEVEL = 1


def canonical(snapshot: dict[str, Any]) -> bytes:
    """The bytes that are hashed: equal for equal machines."""
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def state_digest(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(snapshot)).hexdigest()


def compress(snapshot: dict[str, Any]) -> tuple[bytes, str]:
    """(the canonical form gzip'd, its digest): one serialization for both. No timestamp in
    the gzip header, so equal states give equal bytes."""
    raw = canonical(snapshot)
    return gzip.compress(raw, compresslevel=GZIP_LEVEL, mtime=0), hashlib.sha256(raw).hexdigest()


def decompress(body: bytes) -> tuple[dict[str, Any], str]:
    """(the state in a compressed canonical form, the digest of those bytes). The bytes hash to a
    state's digest only if they are exactly its canonical form, so comparing this digest with the
    expected one checks the state without serializing it again. ValueError when not a state."""
    try:
        raw = gzip.decompress(body)
        state = json.loads(raw)
    except (OSError, EOFError, zlib.error, UnicodeError, ValueError) as exc:
        raise ValueError(f"not a compressed state: {exc}") from None
    if not isinstance(state, dict):
        raise ValueError("not a compressed state: not an object")
    return state, hashlib.sha256(raw).hexdigest()


def pack(compressed: bytes) -> str:
    """Compressed state as text for a log entry (``RestoreSnapshot``): ~25x smaller than the JSON."""
    return base64.b64encode(compressed).decode("ascii")


def unpack(text: str) -> tuple[dict[str, Any], str]:
    """(the state in a packed text, its digest) as :func:`decompress`; ValueError when it is not one."""
    try:
        body = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise ValueError(f"not a packed state: {exc}") from None
    return decompress(body)
