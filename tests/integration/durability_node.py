"""One real RaftStore in its own process, driven over stdin/stdout by test_durability.py.

    python durability_node.py ADDR PARTNERS DATA_DIR DURABILITY SECRET

Lines in: ``write PREFIX THREADS`` (submit CreateTask from THREADS threads until
the process dies, printing ``ack ID`` for each one acknowledged), ``read``
(commit a marker, then print ``tasks [ids]``), ``status``. Lines out: ``ready``,
``ack ID``, ``tasks [...]``, ``status {...}``.

The journal's sync point (``synced_length``) is written to DATA_DIR/sync-point
after every journal call that can move it, so the test can read it while the
process is frozen or dead and cut the journal there: a power loss. It is
written after the call returns, so it can lag behind a sync (a cut there is
harsher than the truth, never kinder: answers leave only after the sync returns).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: parts.py
from parts import raft_settings  # noqa: E402

from orion.domain.model import TaskSpec  # noqa: E402
from orion.raft.store import RaftStore  # noqa: E402
from orion.state.commands import CreateTask  # noqa: E402
from orion.state.entries import ReplicatedMachine  # noqa: E402
from orion.store.port import StoreError  # noqa: E402

_out = threading.Lock()


def say(line: str) -> None:
    with _out:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def record_sync_points(store: RaftStore, path: Path) -> None:
    journal = store.journal
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    last = [-1]

    def note() -> None:
        if journal.synced_length != last[0]:
            last[0] = journal.synced_length
            os.pwrite(fd, struct.pack("<Q", last[0]), 0)

    def wrap(name: str) -> None:
        method = getattr(journal, name)

        def wrapped(*args):
            try:
                return method(*args)
            finally:
                note()

        setattr(journal, name, wrapped)

    for name in ("sync", "add", "clear", "deleteEntriesFrom", "deleteEntriesTo"):
        wrap(name)
    note()


def create(task_id: str) -> CreateTask:
    return CreateTask(request_id=uuid.uuid4().hex, task_id=task_id, spec=TaskSpec(image="busybox", memory=1 << 20))


def writer(store: RaftStore, prefix: str) -> None:
    n = 0
    while True:
        task_id = f"{prefix}-{n}"
        try:
            store.submit(create(task_id), timeout=2.0)
        except StoreError:
            time.sleep(0.05)
            continue
        say(f"ack {task_id}")
        n += 1


def main() -> None:
    addr, partners, data_dir, durability, secret = sys.argv[1:6]
    settings = raft_settings(addr, data_dir, secret, election_min=0.3, election_max=0.9,
                             compaction_entries=1_000_000, durability=durability)
    store = RaftStore(settings, [p for p in partners.split(",") if p], ReplicatedMachine())
    record_sync_points(store, Path(data_dir) / "sync-point")
    say("ready")
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "write":
            for t in range(int(words[2])):
                threading.Thread(target=writer, args=(store, f"{words[1]}{t}"), daemon=True).start()
        elif words[0] == "read":
            store.submit(create(f"marker-{uuid.uuid4().hex[:8]}"), timeout=20.0)
            ids, _ = store.read(lambda m: sorted(t.id for t in m.tasks()))
            say("tasks " + json.dumps(ids))
        elif words[0] == "status":
            status = store.status()
            say("status " + json.dumps({"leader": status.leader if store.has_leader() else None,
                                        "is_leader": status.is_leader, "fsyncs": status.extra["fsyncs"]}))
    os._exit(0)  # stdin closed: no graceful close, no last sync


if __name__ == "__main__":
    main()
