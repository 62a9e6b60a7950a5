"""RaftJournal: pysyncobj's file format both ways, sync points, and what a power loss leaves.

A power loss is simulated as the loss of every byte written after the last
sync: the file is cut (or its tail zeroed) at ``synced_length``, which is what
the journal promises can be read back.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hypothesis import example, given, settings
from hypothesis import strategies as st
from pysyncobj.journal import FileJournal, MetaStorer

from orion.raft.journal import RaftJournal, header, record, scan


def _entries(n: int, first: int = 1, term: int = 1) -> list[tuple[bytes, int, int]]:
    return [(f"command {i}".encode() * (i % 5 + 1), i, term) for i in range(first, first + n)]


def _open(path: Path, fsync: bool = True) -> RaftJournal:
    return RaftJournal(str(path), str(path.parent / "raft.dump"), fsync=fsync)


def _pysyncobj_read(path: Path) -> list[tuple[bytes, int, int]]:
    """pysyncobj's own reader, on a copy (it grows the file it opens)."""
    copy = path.parent / "copy.journal"
    shutil.copy(path, copy)
    journal = FileJournal(str(copy))
    try:
        return [journal[i] for i in range(len(journal))]
    finally:
        journal._destroy()


def _power_loss(path: Path, synced_length: int, zero: bool = False) -> None:
    """Lose every byte written after the last sync: cut the file, or zero its tail."""
    if zero:
        size = path.stat().st_size
        with open(path, "r+b") as f:
            f.seek(synced_length)
            f.write(b"\0" * (size - synced_length))
    else:
        os.truncate(path, synced_length)


def test_pysyncobj_reads_what_we_write(tmp_path):
    journal = _open(tmp_path / "raft.journal")
    for entry in _entries(20):
        journal.add(*entry)
    journal.deleteEntriesFrom(15)
    journal.add(b"other", 16, 2)
    journal._destroy()
    assert _pysyncobj_read(tmp_path / "raft.journal") == _entries(15) + [(b"other", 16, 2)]


def test_we_read_what_pysyncobj_wrote_and_drop_its_zero_padding(tmp_path):
    path = tmp_path / "raft.journal"
    theirs = FileJournal(str(path))
    for entry in _entries(10):
        theirs.add(*entry)
    theirs.setCurrentTerm(7, "node-b")
    theirs._destroy()
    assert path.stat().st_size > len(header(0)) + sum(len(record(*e)) for e in _entries(10))  # mmap growth

    journal = _open(path)
    assert list(journal[:]) == _entries(10)
    assert (journal.getCurrentTerm(), journal.getVotedForNodeId()) == (7, "node-b")
    assert path.stat().st_size == journal.synced_length  # zero tail cut, and the rest made durable


def test_appends_are_unsynced_until_one_sync_covers_them_all(tmp_path):
    journal = _open(tmp_path / "raft.journal")
    opened = journal.fsyncs
    base = journal.synced_length
    for entry in _entries(5):
        journal.add(*entry)
    assert journal.unsynced and journal.synced_length == base and journal.synced_index == 0
    assert journal.sync() is True
    assert journal.fsyncs == opened + 1
    assert journal.synced_length == (tmp_path / "raft.journal").stat().st_size
    assert journal.synced_index == 5 and not journal.unsynced
    assert journal.sync() is False and journal.fsyncs == opened + 1  # nothing new: no syscall


def test_with_durability_none_nothing_is_ever_synced(tmp_path):
    journal = _open(tmp_path / "raft.journal", fsync=False)
    for entry in _entries(5):
        journal.add(*entry)
    journal.setCurrentTerm(3, None)
    assert not journal.unsynced and journal.sync() is False
    assert journal.fsyncs == 0 and journal.synced_length == 0


def test_a_power_loss_keeps_exactly_what_was_synced(tmp_path):
    for zero in (False, True):
        path = tmp_path / f"j{zero}" / "raft.journal"
        path.parent.mkdir()
        journal = _open(path)
        for entry in _entries(8):
            journal.add(*entry)
        journal.sync()
        synced = journal.synced_length
        for entry in _entries(4, first=9):  # written, header updated, never synced
            journal.add(*entry)
        _power_loss(path, synced, zero=zero)
        reopened = _open(path)
        assert list(reopened[:]) == _entries(8)
        reopened._destroy()
        assert _pysyncobj_read(path) == _entries(8)  # the header no longer counts the lost records


def test_term_and_vote_are_synced_before_set_current_term_returns(tmp_path):
    journal = _open(tmp_path / "raft.journal")
    before = journal.fsyncs
    journal.setCurrentTerm(4, "node-c")
    assert journal.fsyncs == before + 2  # the file, then its directory (the rename)
    assert MetaStorer(str(tmp_path / "raft.journal.meta")).getMeta()["currentTerm"] == 4  # pysyncobj reads it
    assert _open(tmp_path / "raft.journal").getVotedForNodeId() == "node-c"


def test_a_rewound_entry_sent_again_is_not_written_again(tmp_path):
    """pysyncobj deletes and re-appends entries a follower has: identical ones stay where they are."""
    path = tmp_path / "raft.journal"
    journal = _open(path)
    for entry in _entries(6):
        journal.add(*entry)
    journal.sync()
    synced, fsyncs = journal.synced_length, journal.fsyncs
    journal.deleteEntriesFrom(3)
    for entry in _entries(3, first=4):
        journal.add(*entry)
    assert not journal.unsynced and journal.sync() is False and journal.fsyncs == fsyncs
    assert journal.synced_length == synced and journal.synced_index == 6
    assert list(journal[:]) == _entries(6)


def test_a_conflicting_entry_replaces_the_deleted_tail(tmp_path):
    path = tmp_path / "raft.journal"
    journal = _open(path)
    for entry in _entries(6):
        journal.add(*entry)
    journal.sync()
    journal.deleteEntriesFrom(3)
    journal.add(*_entries(1, first=4)[0])  # same as before...
    journal.add(b"new leader", 5, 2)  # ...then a different one: the rest of the tail goes
    assert journal.unsynced and journal.synced_index == 4
    journal.sync()
    assert list(_open(path)[:]) == _entries(4) + [(b"new leader", 5, 2)]


def test_a_deleted_tail_never_reappended_is_what_a_crash_finds(tmp_path):
    """Until the tail is replaced it stays on disk: a restart sees the log before the delete."""
    path = tmp_path / "raft.journal"
    journal = _open(path)
    for entry in _entries(6):
        journal.add(*entry)
    journal.sync()
    journal.deleteEntriesFrom(2)
    assert len(journal) == 2 and journal.synced_index == 6
    assert list(_open(path)[:]) == _entries(6)


def test_compaction_keeps_the_rest_in_a_new_file_and_syncs_the_snapshot_first(tmp_path):
    path = tmp_path / "raft.journal"
    (tmp_path / "raft.dump").write_bytes(b"snapshot")
    journal = _open(path)
    for entry in _entries(10):
        journal.add(*entry)
    before = journal.fsyncs
    journal.deleteEntriesTo(7)
    assert journal.fsyncs == before + 4  # dump + dir, new journal + dir
    assert list(journal[:]) == _entries(3, first=8)
    assert journal.synced_length == path.stat().st_size and not journal.unsynced
    journal.add(*_entries(1, first=11)[0])
    journal._destroy()
    assert _pysyncobj_read(path) == _entries(4, first=8)


def test_clear_for_an_installed_snapshot_then_the_entries_after_it(tmp_path):
    path = tmp_path / "raft.journal"
    journal = _open(path)
    for entry in _entries(5):
        journal.add(*entry)
    journal.clear()
    journal.add(b"a", 40, 3)
    journal.add(b"b", 41, 3)
    journal.sync()
    assert list(_open(path)[:]) == [(b"a", 40, 3), (b"b", 41, 3)]


def test_scan_stops_at_a_record_that_does_not_follow_its_predecessor():
    good = record(b"x", 1, 1) + record(b"y", 2, 1)
    stale = record(b"old", 7, 1)  # bytes of an older log beyond a cut
    data = header(len(header(0)) + len(good) + len(stale)) + good + stale
    entries, _, end = scan(data)
    assert entries == [(b"x", 1, 1), (b"y", 2, 1)] and end == len(header(0)) + len(good)


_OPS = st.lists(st.one_of(
    st.tuples(st.just("add"), st.integers(1, 3), st.booleans()),  # n entries, same term or a new one
    st.tuples(st.just("delete_from"), st.integers(0, 12), st.booleans()),
    st.tuples(st.just("sync"), st.just(0), st.booleans()),
), max_size=25)


@settings(max_examples=200, deadline=None)
@given(ops=_OPS, zero=st.booleans())
# pysyncobj's rewind: synced entries deleted and sent again, identical, then the power goes.
@example(ops=[("add", 3, False), ("sync", 0, False), ("delete_from", 0, False), ("add", 2, False)], zero=False)
def test_a_power_loss_after_any_history_keeps_every_synced_entry_still_in_the_log(tmp_path_factory, ops, zero):
    """Whatever pysyncobj did (appends, deletes of a suffix, identical or conflicting
    re-appends, syncs), a cut at the sync point reads back a prefix of the log that
    holds every entry once synced and not replaced since by a different one."""
    path = tmp_path_factory.mktemp("j") / "raft.journal"
    journal = _open(path)
    term = 1
    once_synced: set[tuple[bytes, int, int]] = set()
    for op, n, flag in ops:
        if op == "add":
            term += flag
            last = journal[-1][1] if len(journal) else 0
            for index in range(last + 1, last + n + 1):
                entry = (f"c{index}/{term}".encode(), index, term)
                if any(e[1] == index and e != entry for e in once_synced):  # a conflict replaces the rest
                    once_synced = {e for e in once_synced if e[1] < index}
                journal.add(*entry)
        elif op == "delete_from" and len(journal):
            journal.deleteEntriesFrom(min(n, len(journal) - 1) + 1)
        elif op == "sync":
            journal.sync()
            once_synced |= set(journal[:])
    log_now = list(journal[:])
    _power_loss(path, journal.synced_length, zero=zero)
    recovered = list(_open(path)[:])
    assert all(entry in recovered for entry in log_now if entry in once_synced)
    kept = [e for e in recovered if e in log_now]
    assert kept == log_now[:len(kept)]  # a prefix of the current log (then, maybe, a deleted tail)
