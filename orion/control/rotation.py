"""Key rotation's planner (docs/secrets.md, "Rotating the cluster key"). Pure.

Rotation is three steps for the operator: add the new key to every node's key file as the
primary (the old one after it) and restart the agents one by one; run ``orion secret rotate``;
once it reports nothing left under the old key, drop the old key from the files. This module is
the middle step's decision: which sealed values are not under the new primary key, in batches
that keep each Raft entry small, and whether every node can already open what the new key
seals (else re-sealing would hand some node values it cannot open).

The runner is the ``POST /secrets/rotate`` route (``orion/api/secrets.py``): it opens each value
with the old key and seals it with the new one on the node that took the request, then commits
each batch as one ``ResealSecrets``, which applies an item only while it is still under the old
key. Versions keep their numbers, so no service rolls; a task reads the same value either way.
Running it again after an interruption picks up where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from orion.domain.model import NODE_ALIVE, NodeInfo

# Each ResealSecrets entry carries at most this many bytes of envelopes: a Raft entry of ~half a
# MiB replicates in one append_entries and applies in a millisecond, and a 64 KiB secret (the most
# one can hold) still fits several to a batch.
BATCH_BYTES = 512 * 1024


@dataclass(frozen=True)
class SealedValue:
    """One sealed value in the state: kind (``secret`` or ``registry``), name, version (0 for a
    registry), the key id that opens it, and the envelope's length."""

    kind: str
    name: str
    version: int
    key_id: str
    size: int


def nodes_without(key_id: str, nodes: Iterable[NodeInfo]) -> list[str]:
    """The alive nodes whose key files lack ``key_id``: they could not open what it seals."""
    return sorted(n.id for n in nodes if n.status == NODE_ALIVE and key_id not in n.key_ids)


def plan(values: Sequence[SealedValue], primary: str, batch_bytes: int = BATCH_BYTES) -> list[list[SealedValue]]:
    """The values not under ``primary``, in batches of at most ``batch_bytes`` of envelopes (a value
    larger than that is a batch of its own), in a stable order."""
    todo = sorted((v for v in values if v.key_id != primary), key=lambda v: (v.kind, v.name, v.version))
    batches: list[list[SealedValue]] = []
    size = 0
    for value in todo:
        if not batches or size + value.size > batch_bytes:
            batches.append([])
            size = 0
        batches[-1].append(value)
        size += value.size
    return batches


def remaining(values: Iterable[SealedValue], primary: str) -> dict[str, int]:
    """How many values each key other than ``primary`` still seals: what an operator checks before
    dropping an old key from the files."""
    out: dict[str, int] = {}
    for value in values:
        if value.key_id != primary:
            out[value.key_id] = out.get(value.key_id, 0) + 1
    return dict(sorted(out.items()))
