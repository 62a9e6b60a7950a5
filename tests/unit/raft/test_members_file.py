"""members.json (orion/raft/members_file.py): the record a restart reads, written by two threads."""

from __future__ import annotations

import threading

from orion.raft.members_file import MembersFile


def test_a_record_round_trips_without_the_node_itself(tmp_path):
    f = MembersFile(tmp_path, "a:1")
    f.save(["a:1", "b:1"], voter=True, admitted=False, fsync=False)
    record = f.load()
    assert record is not None and record.partners == ["b:1"] and record.voter and not record.admitted
    assert not MembersFile.admitted(tmp_path)
    f.save(["a:1", "b:1"], voter=False, admitted=True, fsync=True)
    assert MembersFile.admitted(tmp_path) and not f.load().voter


def test_a_record_from_before_admission_existed_counts_as_admitted(tmp_path):
    (tmp_path / "members.json").write_text('{"members": ["a:1"], "voter": true}')
    assert MembersFile.admitted(tmp_path)


def test_writers_on_two_threads_never_lose_the_shared_temp_file(tmp_path):
    """The watcher and an admission write at once: each rename must find its temp file."""
    f = MembersFile(tmp_path, "a:1")
    errors: list[BaseException] = []

    def write(voter: bool) -> None:
        try:
            for _ in range(200):
                f.save(["a:1", "b:1"], voter=voter, admitted=True, fsync=False)
        except BaseException as exc:  # the test reports it below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in (True, False, True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and f.load() is not None
