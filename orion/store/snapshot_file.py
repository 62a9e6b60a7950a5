"""The snapshot file (``orion operator snapshot save|inspect|restore``): the whole replicated
state at one applied index, what it is, and the proof it arrived whole.

A file is three parts::

    orion-snapshot 1\n                      magic and the file format
    {"clusterId": ..., "index": ..., ...}\n  the header: one line of JSON
    <SHA-256 of the header line, hex>\n
    <gzip of the canonical state>           the state machine's plain-data snapshot

The header says what the state is (cluster id, Raft index and term, when and where it was
saved, the Orion version, counts) and how to check the rest: ``bodySha256`` covers the
compressed bytes as written (gzip's own CRC leaves its header bytes unchecked), and
``digest`` is the SHA-256 of the state's canonical form (``orion/state/canonical.py``), which
is also what ``GET /raft`` shows for a replica at ``index`` and what every replica re-checks
before it applies a restore. The third line covers the header itself, so every byte of a file
is checked: a changed byte anywhere is refused (``tests/unit/store/test_snapshot_file.py``).
Nothing here decrypts anything: the state is carried as the machine holds it.

Pure: bytes in, values out (or a :class:`SnapshotFileError` whose message says what is wrong
with the file and what to do). The API writes and reads files with it, the CLI inspects them
before it uploads one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from orion.state.canonical import compress, decompress

MAGIC = b"orion-snapshot"
# The file's own layout (magic, header line, gzip body). The state inside has its own version
# (``SNAPSHOT_VERSION`` in orion/state/restore.py), checked by the machine on restore.
FORMAT = 1


class SnapshotFileError(ValueError):
    """The bytes are not a snapshot this release can read; the message says why and what to do."""


@dataclass(frozen=True)
class SnapshotMeta:
    """What the header says about the state (besides its checksums)."""

    cluster_id: str
    index: int
    term: int
    created: float  # Unix seconds, the saving node's clock
    node: str  # the node that saved it
    orion_version: str


@dataclass(frozen=True)
class Snapshot:
    """A file read and verified: its header, the state (and its compressed bytes, as a restore
    sends them on), and the file's size in bytes."""

    meta: SnapshotMeta
    state: dict[str, Any]
    body: bytes
    digest: str
    size: int

    def counts(self) -> dict[str, int]:
        return counts_of(self.state)

    def summary(self) -> dict[str, Any]:
        """What ``orion operator snapshot inspect`` prints (the checks passed, or it raised)."""
        m = self.meta
        return {"clusterId": m.cluster_id, "index": m.index, "term": m.term, "created": m.created,
                "node": m.node, "orionVersion": m.orion_version, "format": FORMAT,
                "stateVersion": self.state.get("v", 1), **self.counts(), "size": self.size,
                "digest": self.digest, "checksumOk": True}


def counts_of(state: dict[str, Any]) -> dict[str, int]:
    services = state.get("services") or {}
    return {"nodes": len(state.get("nodes", ())), "tasks": len(state.get("tasks", ())),
            "services": len(services.get("records", ()) if isinstance(services, dict) else ())}


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).hexdigest().encode()


def write_snapshot(state: dict[str, Any], meta: SnapshotMeta) -> bytes:
    """The file for ``state`` (a machine's ``snapshot()``) as it was at ``meta.index``."""
    body, digest = compress(state)
    fields: dict[str, Any] = {"clusterId": meta.cluster_id, "index": meta.index, "term": meta.term,
                              "created": meta.created, "node": meta.node, "orionVersion": meta.orion_version,
                              "digest": digest, "bodyBytes": len(body),
                              "bodySha256": _sha256(body).decode(), **counts_of(state)}
    header = json.dumps(fields, sort_keys=True).encode()
    return b"%s %d\n%s\n%s\n%s" % (MAGIC, FORMAT, header, _sha256(header), body)


def read_snapshot(data: bytes) -> Snapshot:
    """The file in ``data``, every checksum verified; else :class:`SnapshotFileError`."""
    first, _, rest = data.partition(b"\n")
    magic, _, version = first.partition(b" ")
    if magic != MAGIC:
        raise SnapshotFileError("not an Orion snapshot file (it does not start with 'orion-snapshot'): "
                                "give a file written by `orion operator snapshot save`")
    if not version.isdigit():
        raise SnapshotFileError("the snapshot file is corrupted: its first line names no format version")
    if int(version) > FORMAT:
        raise SnapshotFileError(f"the snapshot file is format v{int(version)}, newer than this Orion reads "
                                f"(v{FORMAT}): use the release that saved it, or a newer one")
    if int(version) != FORMAT or version != str(int(version)).encode():
        raise SnapshotFileError(f"the snapshot file is corrupted: format {version.decode('ascii', 'replace')!r} "
                                "was never written")
    line, _, rest = rest.partition(b"\n")
    checksum, _, body = rest.partition(b"\n")
    if checksum != _sha256(line):
        raise SnapshotFileError("the snapshot file is corrupted: its header does not match its checksum")
    try:
        fields = json.loads(line)
        meta = SnapshotMeta(str(fields["clusterId"]), int(fields["index"]), int(fields["term"]),
                            float(fields["created"]), str(fields["node"]), str(fields["orionVersion"]))
        digest, body_bytes, body_sha = str(fields["digest"]), int(fields["bodyBytes"]), str(fields["bodySha256"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SnapshotFileError("the snapshot file is corrupted: its header cannot be read") from None
    if len(body) != body_bytes:
        raise SnapshotFileError(f"the snapshot file is truncated or corrupted: its state is {len(body)} bytes, "
                                f"the header says {body_bytes}")
    if _sha256(body).decode() != body_sha:
        raise SnapshotFileError("the snapshot file is corrupted: its state does not match its checksum")
    try:
        state, actual = decompress(body)
    except ValueError:
        raise SnapshotFileError("the snapshot file is corrupted: its state cannot be decompressed") from None
    if actual != digest:
        raise SnapshotFileError("the snapshot file is corrupted: its state does not match its checksum")
    return Snapshot(meta, state, body, digest, len(data))
