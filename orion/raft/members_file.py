"""``members.json``: what a node must know to restart into its cluster by itself.

pysyncobj keeps the membership in its log, but a node needs its partners'
addresses before it can read anything: so the agent writes the member list it
last knew, its role (voter or non-voting replica) and whether the leader ever
admitted it. A node restarted with an admitted record dials those partners in
that role; one whose join was cut short (killed before the leader's answer)
asks to be admitted again instead of campaigning from a list nobody agreed to.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Membership:
    """The record: the members this node last knew (itself excluded), its role, admitted or not."""

    partners: list[str]
    voter: bool
    admitted: bool


class MembersFile:
    """Read and (atomically) replace ``<data_dir>/members.json``."""

    def __init__(self, data_dir: Path, self_addr: str) -> None:
        self.path = data_dir / "members.json"
        self._self = self_addr
        self._lock = threading.Lock()  # two writers (the watcher, an admission) share one temp file

    def load(self) -> Membership | None:
        """The record, or None when there is none. A record written before admission
        existed ("admitted" missing) was written by an admitted node."""
        try:
            raw = json.loads(self.path.read_text())
            members = raw["members"]
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None
        return Membership([m for m in members if m != self._self], bool(raw.get("voter", True)),
                          bool(raw.get("admitted", True)))

    def save(self, members: list[str], voter: bool, admitted: bool, fsync: bool) -> None:
        tmp = self.path.with_suffix(".tmp")
        with self._lock:  # one writer at a time: the tmp file is shared
            with open(tmp, "w") as f:
                f.write(json.dumps({"members": members, "voter": voter, "admitted": admitted}))
                if fsync:
                    f.flush()
                    os.fsync(f.fileno())
            os.replace(tmp, self.path)

    @staticmethod
    def admitted(data_dir: str | Path) -> bool:
        """True when this data dir belongs to a cluster that admitted it (a restart, not a join)."""
        record = MembersFile(Path(data_dir), "").load()
        return record is not None and record.admitted
