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

import hashlib
import json
from typing import Any


def canonical(snapshot: dict[str, Any]) -> bytes:
    """The bytes that are hashed: equal for equal machines."""
    return json.dumps(snapshot, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def state_digest(snapshot: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(snapshot)).hexdigest()
