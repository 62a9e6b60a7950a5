"""The Raft journal on disk: pysyncobj's file format, written so that a sync means durable.

pysyncobj 0.3.17's ``FileJournal`` (``pysyncobj/journal.py:187``) writes every
entry into a memory-mapped file (``journal.py:109``) and never syncs it, and
its ``MetaStorer`` renames the term/vote file into place without a sync
(``journal.py:160-164``). A SIGKILL loses nothing (the page cache outlives the
process), but a power loss of a majority can lose entries the cluster already
acknowledged, and even the vote a node gave in the current term.

**The choice: our journal object in pysyncobj's place, not a modified pysyncobj.**
``SyncObj`` talks to its journal only through the small ``Journal`` interface
(``journal.py:9-47``) and builds it in one line, ``self.__raftLog =
createJournal(conf.journalFile)`` (``syncobj.py:166``). We pass
``journalFile=None`` and ``orion/raft/patches.py`` (rule 3) puts a
:class:`RaftJournal` under that name-mangled attribute (``_SyncObj__raftLog``)
as pysyncobj assigns it, so pysyncobj's own start-up (the first NO_OP, term and
vote restored, ``syncobj.py:167-176``) runs against our journal unchanged; that
module also holds the sync points (group commit, rule 4) and why they are where
they are. The other options were worse: wrapping ``FileJournal`` keeps the mmap,
whose file grows in zero-filled doublings (so "what is on disk" is not the file
length) and whose private names we would reach through; vendoring a patched
pysyncobj forks a consensus library we do not own; and patching the module's
``createJournal`` would change every ``SyncObj`` in the process.

:class:`RaftJournal` writes pysyncobj's exact format (header, records framed by
their size, the end offset in the header: ``journal.py:173-185``) with
``pwrite``, so pysyncobj's reader opens it and a node can switch either way.
It never syncs per entry: :meth:`RaftJournal.sync` (one ``fdatasync``) is
called by the group commit. Beside the entries it makes durable what they
depend on: the term and vote (fsync, then a directory fsync, before pysyncobj
sends anything that reflects them: ``syncobj.py:1237``), pysyncobj's snapshot
file (written without a sync) before entries it replaces are dropped
(compaction ``syncobj.py:1427``, an installed snapshot ``:1493``), and a
compaction writes a new file renamed into place instead of rewriting the
journal where it lies.

pysyncobj also deletes and re-appends entries a follower already has whenever
an acknowledgement arrives after the leader sent more (it winds its next index
back, ``syncobj.py:1082``, and the follower truncates on any older
``prevLogIdx``, ``:1004``). Rewriting them would put acknowledged entries back
into the page cache only, so a delete is kept in memory until an entry that
differs arrives: identical entries re-appended cost no write and no sync.

With ``fsync=False`` ("none") nothing is ever synced: pysyncobj's behaviour,
same format, no mmap.
"""

from __future__ import annotations

import logging
import os
import struct
from collections import deque
from typing import Any

from pysyncobj.journal import (
    APP_NAME,
    APP_VERSION,
    FIRST_RECORD_OFFSET,
    JOURNAL_FORMAT_VERSION,
    LAST_RECORD_OFFSET_OFFSET,
    NAME_SIZE,
    VERSION_SIZE,
    Journal,
)
from pysyncobj.pickle import dumps, loads, to_bytes

log = logging.getLogger("orion.raft")

Entry = tuple[bytes, int, int]  # (command, index, term), as pysyncobj keeps them
_SIZE = struct.Struct("<I")
_INDEX_TERM = struct.Struct("<QQ")
_FRAME = _SIZE.size * 2 + _INDEX_TERM.size  # the bytes a record adds around its command


def header(end: int) -> bytes:
    """pysyncobj's 40-byte header: name, version, format, offset after the last record."""
    return (APP_NAME.ljust(NAME_SIZE, b"\0") + APP_VERSION.ljust(VERSION_SIZE, b"\0")
            + struct.pack("<II", JOURNAL_FORMAT_VERSION, end))


def record(command: bytes, index: int, term: int) -> bytes:
    """One entry as pysyncobj frames it: size, index, term, command, size again."""
    body = _INDEX_TERM.pack(index, term) + to_bytes(command)
    size = _SIZE.pack(len(body))
    return size + body + size


def scan(data: bytes) -> tuple[list[Entry], list[int], int]:
    """The entries of a journal file, their offsets, and where the valid part ends.

    Reads up to the end the header names, and stops early at the first record
    that is not whole (a cut or zeroed tail after a power loss: the header may
    reach the disk before the records it counts) or that does not follow its
    predecessor (index + 1, term not lower): such bytes were never synced.
    """
    limit = min(_SIZE.unpack_from(data, LAST_RECORD_OFFSET_OFFSET)[0], len(data))
    entries: list[Entry] = []
    offsets: list[int] = []
    offset = FIRST_RECORD_OFFSET
    while offset + _FRAME <= limit:
        (size,) = _SIZE.unpack_from(data, offset)
        end = offset + 2 * _SIZE.size + size
        if size < _INDEX_TERM.size or end > limit or _SIZE.unpack_from(data, end - _SIZE.size)[0] != size:
            break
        index, term = _INDEX_TERM.unpack_from(data, offset + _SIZE.size)
        if entries and (index != entries[-1][1] + 1 or term < entries[-1][2]):
            break
        entries.append((data[offset + _SIZE.size + _INDEX_TERM.size:end - _SIZE.size], index, term))
        offsets.append(offset)
        offset = end
    return entries, offsets, offset


def _write(fd: int, data: bytes, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


class RaftJournal(Journal):
    """pysyncobj's journal interface over a plain file, synced when told to.

    Called only from pysyncobj's tick thread (and from ``SyncObj.__init__``
    before that thread starts); other threads may read the counters. The sync
    point: ``synced_length`` is the length of the file prefix known to be on
    disk as it is now, ``synced_index`` the last entry in it — what a power
    loss cannot take. ``fsyncs`` counts every fsync/fdatasync made (metrics).
    """

    def __init__(self, path: str, dump_path: str | None, fsync: bool) -> None:
        self._path = path
        self._dump_path = dump_path
        self._fsync = fsync
        self.fsyncs = 0
        self.synced_length = 0
        self.synced_index = 0
        self._dirty = False
        # Entries deleted in memory whose records still follow on disk (see the module doc).
        self._tail: deque[tuple[Entry, int]] = deque()
        self._meta_path = path + ".meta"
        self._meta: dict[str, Any] = self._read_meta()
        self._meta_saved = True
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        with open(path, "rb") as f:
            data = f.read()
        self._entries: list[Entry] = []
        self._offsets: list[int] = []
        self._end = self._disk_end = FIRST_RECORD_OFFSET
        if len(data) < FIRST_RECORD_OFFSET:  # new, or cut before its header ever reached the disk
            self._set_end(FIRST_RECORD_OFFSET)
            self._fsync_dir()
        else:
            self._entries, self._offsets, self._end = scan(data)
            self._disk_end = self._end
            claimed = _SIZE.unpack_from(data, LAST_RECORD_OFFSET_OFFSET)[0]
            if claimed > self._end:
                log.warning("raft journal %s: the header counts %d bytes after entry %s that are not "
                            "there whole: never synced, cut by a power loss", path, claimed - self._end,
                            self._entries[-1][1] if self._entries else "none")
            if claimed != self._end or len(data) != self._end:  # a cut, or pysyncobj's zero-filled growth
                self._set_end(self._end)
        # What was read may sit in the page cache only (the process died, the machine did
        # not): make it durable before this node acts on it.
        self._dirty = self._fsync
        self.sync()

    # -- ours -------------------------------------------------------------------------------
    @property
    def unsynced(self) -> bool:
        """True when the file changed since the last sync (never with fsync off)."""
        return self._dirty

    def sync(self) -> bool:
        """fdatasync the journal if it changed since the last sync; True if it did."""
        if not self._dirty:
            return False
        os.fdatasync(self._fd)
        self.fsyncs += 1
        self.synced_length = self._disk_end
        self.synced_index = self._last_on_disk()
        self._dirty = False
        return True

    # -- pysyncobj's Journal interface (journal.py:9-47) -------------------------------------
    def add(self, command: bytes, idx: int, term: int) -> None:
        if self._tail:
            (t_command, t_idx, t_term), offset = self._tail[0]
            if (t_idx, t_term) == (idx, term) and to_bytes(t_command) == to_bytes(command):
                self._tail.popleft()  # the same entry again: its record is in the file already
                self._entries.append((command, idx, term))
                self._offsets.append(offset)
                self._end = offset + _FRAME + len(to_bytes(command))
                return
            self._tail.clear()
            self._set_end(self._end)
        data = record(command, idx, term)
        _write(self._fd, data, self._end)
        self._entries.append((command, idx, term))
        self._offsets.append(self._end)
        self._end = self._disk_end = self._end + len(data)
        os.pwrite(self._fd, _SIZE.pack(self._end), LAST_RECORD_OFFSET_OFFSET)
        self._dirty = self._fsync

    def clear(self) -> None:
        self._sync_dump()  # an installed snapshot replaces the log: it must be on disk first
        self._entries, self._offsets = [], []
        self._tail.clear()
        self._set_end(FIRST_RECORD_OFFSET)

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        if entryFrom >= len(self._entries):
            return
        self._tail.extendleft(reversed(list(zip(self._entries[entryFrom:], self._offsets[entryFrom:],
                                                strict=True))))
        self._end = self._offsets[entryFrom]
        del self._entries[entryFrom:]
        del self._offsets[entryFrom:]

    def deleteEntriesTo(self, entryTo: int) -> None:
        """Compaction: the snapshot covers the first ``entryTo`` entries. The rest is
        written to a new file renamed over the old one, so a power loss leaves one or
        the other, never a half-rewritten journal."""
        self._sync_dump()
        kept = self._entries[entryTo:]
        records = [record(*entry) for entry in kept]
        offsets, end = [], FIRST_RECORD_OFFSET
        for data in records:
            offsets.append(end)
            end += len(data)
        tmp = self._path + ".tmp"
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        _write(fd, header(end) + b"".join(records), 0)
        if self._fsync:
            os.fdatasync(fd)
            self.fsyncs += 1
        os.replace(tmp, self._path)
        self._fsync_dir()
        os.close(self._fd)
        self._fd = fd
        self._entries, self._offsets, self._end, self._disk_end = kept, offsets, end, end
        self._tail.clear()
        self._dirty = False
        self.synced_length, self.synced_index = (end, self._last_on_disk()) if self._fsync else (0, 0)

    def __getitem__(self, item: int | slice) -> Any:
        return self._entries[item]

    def __len__(self) -> int:
        return len(self._entries)

    def _destroy(self) -> None:
        if self._fd < 0:
            return
        self.sync()
        os.close(self._fd)
        self._fd = -1

    def setRaftCommitIndex(self, raftCommitIndex: int) -> None:
        self._meta["raftCommitIndex"] = raftCommitIndex
        self._meta_saved = False

    def getRaftCommitIndex(self) -> int:
        return self._meta.get("raftCommitIndex", 1)

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:
        # Raft: term and vote are on disk before any message that reflects them leaves.
        self._meta["currentTerm"] = term
        self._meta["votedForNodeId"] = votedForNodeId
        self._store_meta()

    def getCurrentTerm(self) -> int:
        return self._meta.get("currentTerm", 0)

    def getVotedForNodeId(self) -> Any:
        return self._meta.get("votedForNodeId")

    def onOneSecondTimer(self) -> None:
        if not self._meta_saved:
            self._store_meta()

    # -- files --------------------------------------------------------------------------------
    def _last_on_disk(self) -> int:
        last = self._tail[-1][0] if self._tail else self._entries[-1] if self._entries else None
        return last[1] if last is not None else 0

    def _set_end(self, end: int) -> None:
        """Cut the file at ``end`` (the header first, then the length)."""
        _write(self._fd, header(end), 0)
        os.ftruncate(self._fd, end)
        self._end = self._disk_end = end
        self.synced_length = min(self.synced_length, end)
        self.synced_index = min(self.synced_index, self._last_on_disk())
        self._dirty = self._fsync

    def _read_meta(self) -> dict[str, Any]:
        try:
            with open(self._meta_path, "rb") as f:
                return dict(loads(f.read()))
        except FileNotFoundError:
            return {}
        except Exception:  # pysyncobj's pickle raises anything on a torn file
            log.warning("raft journal meta %s is unreadable: starting from term 0", self._meta_path)
            return {}

    def _store_meta(self) -> None:
        tmp = self._meta_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(dumps(self._meta))
            if self._fsync:
                f.flush()
                os.fsync(f.fileno())
                self.fsyncs += 1
        os.replace(tmp, self._meta_path)
        self._fsync_dir()
        self._meta_saved = True

    def _sync_dump(self) -> None:
        if not self._fsync or self._dump_path is None or not os.path.exists(self._dump_path):
            return
        fd = os.open(self._dump_path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.fsyncs += 1
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        """A created or renamed file exists after a power loss only once its directory is synced."""
        if not self._fsync:
            return
        fd = os.open(os.path.dirname(os.path.abspath(self._path)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.fsyncs += 1
