"""The node's task files (orion/runtime/tmpfs.py) on a real tmpfs (/dev/shm): written once with
their modes, never rewritten under a container that may mount them, swept only when old."""

from __future__ import annotations

import os
import stat
import time
import uuid
from pathlib import Path

import pytest

from orion.runtime.tmpfs import SWEEP_AFTER, TMPFS, FileToWrite, TaskFileStore, fs_type

SHM = Path("/dev/shm")
pytestmark = pytest.mark.skipif(not SHM.is_dir() or fs_type(str(SHM)) != TMPFS, reason="no tmpfs at /dev/shm")


@pytest.fixture
def store():
    root = SHM / f"orion-test-{uuid.uuid4().hex[:8]}"
    files = TaskFileStore(str(root), "node1")
    yield files
    for folder, _, names in os.walk(root, topdown=False):
        for name in names:
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def test_files_are_written_with_their_modes_and_bound_at_their_targets(store):
    binds = store.prepare("orion-t1-g1", [FileToWrite("0-secret-db", "/run/secrets/db", b"v1", 0o440),
                                          FileToWrite("1-config-a", "/etc/a.conf", b"a=1\n", 0o444)])
    assert [target for _, target in binds] == ["/run/secrets/db", "/etc/a.conf"]
    source = Path(binds[0][0])
    assert source.read_bytes() == b"v1" and stat.S_IMODE(source.stat().st_mode) == 0o440
    assert fs_type(str(source)) == TMPFS


def test_a_second_prepare_keeps_the_files_a_container_may_already_mount(store):
    (source, _), = store.prepare("orion-t1-g1", [FileToWrite("0-secret-db", "/s", b"v1", 0o400)])
    inode = os.stat(source).st_ino
    store.prepare("orion-t1-g1", [FileToWrite("0-secret-db", "/s", b"v1", 0o400)])
    assert os.stat(source).st_ino == inode


def test_the_sweep_removes_only_old_folders_of_containers_that_are_gone_and_release_removes_at_once(store):
    store.prepare("orion-gone-g1", [FileToWrite("0-secret-db", "/s", b"x", 0o400)])
    store.prepare("orion-kept-g1", [FileToWrite("0-secret-db", "/s", b"x", 0o400)])
    assert store.sweep({"orion-kept-g1"}) == []  # too young: a container may be being created
    assert store.sweep({"orion-kept-g1"}, now=time.time() + SWEEP_AFTER + 1) == ["orion-gone-g1"]
    assert store.release("orion-kept-g1") and not store.release("orion-kept-g1")
