"""``orion operator raft recover``'s surgery on a data dir laid out as pysyncobj and Orion write
it: the refusals (no state, the agent running, a quorum answering), and what a recovery leaves
(this node the only voter in members.json and in pysyncobj's snapshot, membership entries made
no-ops at their index and term, every other entry untouched, the old files backed up)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from pysyncobj.node import TCPNode
from pysyncobj.pickle import dumps, loads, to_bytes

from orion.raft.journal import header, record, scan
from orion.raft.recover import RecoverRefused, recover

ME, A, B = "10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"
ENTRIES = [(b"\x01", 1, 1), (b"\x00regular-1", 2, 1), (b"\x02" + b"add 10.0.0.3", 3, 1), (b"\x00regular-2", 4, 2)]


def data_dir(tmp_path: Path, voter: bool = True, admitted: bool = True) -> Path:
    (tmp_path / "members.json").write_text(json.dumps({"members": [ME, A, B], "voter": voter,
                                                       "admitted": admitted}))
    body = b"".join(record(*e) for e in ENTRIES)
    (tmp_path / "raft.journal").write_bytes(header(len(header(0)) + len(body)) + body)
    dump = ({"machine": {"v": 1}, "applied": 2}, (b"\x00regular-1", 2, 1), (b"\x01", 1, 1),
            {TCPNode(ME), TCPNode(A), TCPNode(B)})
    (tmp_path / "raft.dump").write_bytes(gzip.compress(dumps(dump)))
    return tmp_path


def nobody(_addr: str) -> bool:
    return False


def test_a_dir_without_raft_state_is_refused(tmp_path):
    with pytest.raises(RecoverRefused, match="holds no Raft state"):
        recover(tmp_path, ME, nobody)


def test_a_join_never_answered_is_refused(tmp_path):
    with pytest.raises(RecoverRefused, match="join was never answered"):
        recover(data_dir(tmp_path, admitted=False), ME, nobody)


def test_a_running_agent_is_refused(tmp_path):
    with pytest.raises(RecoverRefused, match="the agent still runs"):
        recover(data_dir(tmp_path), ME, lambda addr: addr == ME)


def test_a_reachable_quorum_is_refused_and_nothing_changes(tmp_path):
    path = data_dir(tmp_path)
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with pytest.raises(RecoverRefused, match=r"a quorum is reachable: 2 of 3 voters .*10.0.0.2:7000 and this node"):
        recover(path, ME, lambda addr: addr == A)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before


def test_a_replica_counts_only_the_voters(tmp_path):
    # A non-voting survivor does not count itself: A and B are the voters (members.json lists voters).
    path = data_dir(tmp_path, voter=False)
    (path / "members.json").write_text(json.dumps({"members": [A, B], "voter": False, "admitted": True}))
    with pytest.raises(RecoverRefused, match="2 of 2 voters"):
        recover(path, ME, lambda addr: addr in (A, B))


def test_the_survivor_becomes_the_only_voter_with_every_entry_kept(tmp_path):
    path = data_dir(tmp_path)
    done = recover(path, ME, nobody, now=lambda: 1700000000.0)
    assert done.voters_before == (ME, A, B) and done.answered == () and done.membership_entries == 1
    assert "10.0.0.1:7000 is now the only voter (was one of 3: 10.0.0.2:7000, 10.0.0.3:7000 removed)" \
        in done.sentence()
    assert json.loads((path / "members.json").read_text()) == {"members": [ME], "voter": True, "admitted": True}
    entries, _, _ = scan((path / "raft.journal").read_bytes())
    assert [(to_bytes(c), i, t) for c, i, t in entries] == [
        (b"\x01", 1, 1), (b"\x00regular-1", 2, 1), (b"\x01", 3, 1), (b"\x00regular-2", 4, 2)]
    data, last, previous, cluster = loads(gzip.decompress((path / "raft.dump").read_bytes()))
    assert data == {"machine": {"v": 1}, "applied": 2} and last == (b"\x00regular-1", 2, 1)
    assert {n.address for n in cluster} == {ME}
    backup = path / "recover-backup-1700000000"
    assert done.backup == backup
    assert json.loads((backup / "members.json").read_text())["members"] == [ME, A, B]
    assert scan((backup / "raft.journal").read_bytes())[0][2][0][:1] == b"\x02"
