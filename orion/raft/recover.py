"""Recovery after losing a majority: one surviving data dir becomes a one-voter cluster.

When two of three voters are gone for good, the survivor can never elect a leader again: its
configuration still counts the dead. ``orion operator raft recover`` (the agent stopped) edits
the survivor's data dir so that, started again, it is the only voter of its configuration, elects
itself and commits everything its journal holds — etcd's ``--force-new-cluster``, Nomad's
``peers.json``. The state machine is not touched: every service, version, task and node record
stays; the dead nodes' records are then declared dead by the usual liveness rule and their tasks
placed elsewhere; new hosts join with ``--join`` (docs/operations.md, the runbook).

pysyncobj keeps the configuration in two places, and both are rewritten (each file is backed
up first, into ``recover-backup-<time>/`` in the data dir):

* its snapshot (``raft.dump``: ``(data, last entry, previous entry, cluster)``, gzip'd pickle;
  ``syncobj.py:1470``), whose ``cluster`` is loaded over the configuration at start
  (``syncobj.py:1508``): set to this node alone;
* its journal: membership entries are re-applied at start and when committed
  (``syncobj.py:887``): each becomes a no-op at the same index and term, so no index moves;
* ``members.json`` (``members_file.py``): this node alone, a voter, admitted.

Refused while a quorum of the old configuration answers: the voters' Raft ports are dialled
(TCP connect, ``answers``), this node counting as one. A reachable quorum means the cluster is
not lost (start the agent instead), and recovering beside it would make two clusters. The check
cannot see through a partition: recover only once the other hosts are known to be gone, and
never start them again with their old data dirs (a majority of the old configuration could elect
a second leader).
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pysyncobj.node import TCPNode
from pysyncobj.pickle import dumps, loads, to_bytes

from orion.raft.journal import header, record, scan
from orion.raft.members_file import MembersFile

# pysyncobj's entry types (syncobj.py:56): the first byte of every journal command.
_NO_OP, _MEMBERSHIP = 1, 2


class RecoverRefused(Exception):
    """Recovery would be wrong or unsafe now; the message says why and what to do instead."""


@dataclass(frozen=True)
class Recovered:
    """What the surgery did: for the operator's terminal and the runbook's checks."""

    self_addr: str
    voters_before: tuple[str, ...]
    answered: tuple[str, ...]
    membership_entries: int  # journal entries turned into no-ops
    backup: Path

    def sentence(self) -> str:
        dead = [v for v in self.voters_before if v != self.self_addr]
        return (f"{self.self_addr} is now the only voter (was one of {len(self.voters_before)}: "
                f"{', '.join(dead) or 'none other'} removed); {self.membership_entries} membership "
                f"entr{'y' if self.membership_entries == 1 else 'ies'} neutralized; backup in {self.backup}. "
                "Start the agent, then join new hosts to it with fresh data dirs.")


def answers(addr: str, timeout: float = 1.0, tries: int = 2) -> bool:
    """Does something accept TCP connections at ``addr`` (HOST:PORT), a Raft port?"""
    host, _, port = addr.rpartition(":")
    for _ in range(tries):
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return True
        except OSError:
            time.sleep(0.2)
    return False


def recover(data_dir: str | Path, self_addr: str, reachable: Callable[[str], bool] = answers,
            now: Callable[[], float] = time.time) -> Recovered:
    """Make ``data_dir`` (of the stopped agent at Raft address ``self_addr``) a one-voter
    cluster; refuse (:class:`RecoverRefused`) while that would be unsafe."""
    data = Path(data_dir)
    members = MembersFile(data, self_addr).load()
    if members is None or not (data / "raft.journal").exists():
        raise RecoverRefused(f"{data} holds no Raft state of an Orion node (no members.json or raft.journal): "
                             "give the data dir of the surviving agent (--data-dir)")
    if not members.admitted:
        raise RecoverRefused(f"{data} belongs to a node whose join was never answered: it holds no state "
                             "worth recovering; recover another host's data dir")
    if reachable(self_addr):
        raise RecoverRefused(f"something answers on this node's Raft address {self_addr}: the agent still runs. "
                             "Stop it first (systemctl stop orion)")
    voters = sorted(set(members.partners) | ({self_addr} if members.voter else set()))
    answered = tuple(v for v in members.partners if reachable(v))
    alive = len(answered) + (1 if members.voter else 0)
    if alive >= len(voters) // 2 + 1:
        raise RecoverRefused(f"a quorum is reachable: {alive} of {len(voters)} voters answer on their Raft ports "
                             f"({', '.join(answered)}{' and this node' if members.voter else ''}). The cluster "
                             "is not lost: start this agent and it rejoins; recover only when a majority is gone")
    backup = data / f"recover-backup-{int(now())}"
    backup.mkdir()
    for name in ("raft.journal", "raft.journal.meta", "raft.dump", "members.json"):
        if (data / name).exists():
            shutil.copy2(data / name, backup / name)
    _sync_dir(backup)
    if (data / "raft.dump").exists():
        _alone_in_dump(data / "raft.dump", self_addr)
    neutralized = _no_membership_entries(data / "raft.journal")
    MembersFile(data, self_addr).save([self_addr], voter=True, admitted=True, fsync=True)
    _sync_dir(data)
    return Recovered(self_addr, tuple(voters), answered, neutralized, backup)


def _replace(path: Path, content: bytes) -> None:
    tmp = path.with_name(path.name + ".recover")
    with open(tmp, "wb") as f:
        f.write(content)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _alone_in_dump(path: Path, self_addr: str) -> None:
    """pysyncobj's snapshot with ``self_addr`` as the whole cluster."""
    with gzip.open(path, "rb") as f:
        data, last, previous, _cluster = loads(f.read())
    _replace(path, gzip.compress(dumps((data, last, previous, {TCPNode(self_addr)}))))


def _no_membership_entries(path: Path) -> int:
    """Rewrite the journal with each membership entry a no-op (same index and term)."""
    entries, _, _ = scan(path.read_bytes())
    changed = 0
    records = []
    for command, index, term in entries:
        if to_bytes(command)[:1] == bytes([_MEMBERSHIP]):
            command, changed = bytes([_NO_OP]), changed + 1
        records.append(record(command, index, term))
    body = b"".join(records)
    _replace(path, header(len(header(0)) + len(body)) + body)
    return changed
