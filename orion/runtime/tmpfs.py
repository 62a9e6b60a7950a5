"""The node's tmpfs for its tasks' secret and config files (docs/secrets.md): the host I/O half.

Each container that reads secrets or configs gets a directory ``<root>/<container name>/``
holding one file per mount, written with the mode, owner and group its spec asks, and
bind-mounted read-only into the container by the engine. The root is on a tmpfs, so a value
never reaches a disk: under systemd it is the unit's RuntimeDirectory (``/run`` is a tmpfs), and
where it is not (a test host, a hand-run agent) the node mounts a tmpfs there itself (root or
CAP_SYS_ADMIN), and refuses to write any file when it cannot. A directory goes with its
container (:meth:`release`), and :meth:`sweep` removes what an agent killed mid-way left behind.

What to write (the files and their bytes) is decided in pure code (``orion/node/task_files.py``);
this module only writes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from orion.runtime import RuntimeFailure

TMPFS = "tmpfs"
# The tmpfs's ceiling, not a reservation: a tmpfs holds memory only for what is written. 64 MiB is
# 256 configs at their largest, or a thousand tasks with a handful of small secrets each.
TMPFS_SIZE = "64m"
# A directory without a container is removed only once this old: a container is created right
# after its files are written, and a listing of the engine taken in between must not take them.
SWEEP_AFTER = 30.0


@dataclass(frozen=True)
class FileToWrite:
    """One file of a task: its name in the task's directory, where the container sees it, its
    bytes (never in a repr), mode, owner and group."""

    name: str
    target: str
    content: bytes = field(repr=False)
    mode: int = 0o400
    uid: int = 0
    gid: int = 0


def fs_type(path: str, mountinfo: str | None = None) -> str:
    """The filesystem type of the mount holding ``path`` (the longest mount point above it)."""
    text = mountinfo if mountinfo is not None else Path("/proc/self/mountinfo").read_text()
    best, kind = "", ""
    target = os.path.realpath(path)
    for line in text.splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(fields) < 5 or not rest:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, kind = point, rest[0]
    return kind


class TaskFileStore:
    """The directories of one node's task files under ``<root>/<node_id>`` (several agents may share
    a host in tests). Thread-safe; the reconciler calls it from its one thread."""

    def __init__(self, root: str, node_id: str = "") -> None:
        self.root = os.path.join(root, node_id) if node_id else root
        self._ready = False
        self._lock = threading.Lock()

    def _ensure_tmpfs(self) -> None:
        """Make sure ``root`` is on a tmpfs: it is already, or a tmpfs is mounted on it now."""
        if self._ready:
            return
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        if fs_type(self.root) != TMPFS:
            done = subprocess.run(["mount", "-t", TMPFS, "-o", f"size={TMPFS_SIZE},mode=0700,nosuid,nodev,noexec",
                                   TMPFS, self.root], capture_output=True, text=True, check=False)
            if done.returncode != 0 or fs_type(self.root) != TMPFS:
                raise RuntimeFailure(f"{self.root} is not on a tmpfs and mounting one failed "
                                     f"({(done.stderr or done.stdout).strip()[:120]}); this node cannot hold "
                                     "secret files (point task_files_dir at a tmpfs, e.g. under /run)")
        self._ready = True

    def prepare(self, name: str, files: Sequence[FileToWrite]) -> tuple[tuple[str, str], ...]:
        """Write ``files`` for container ``name``; return its binds (host path, container path).
        A file already there is left as it is: it may be bind-mounted into a container of that name
        already (a start that finds its container created, an adoption), and removing a mount's
        source takes the file away from the container. What a task reads is fixed per placement
        (its versions are pinned), so the file there is the one to mount."""
        with self._lock:
            self._ensure_tmpfs()
            folder = os.path.join(self.root, name)
            os.makedirs(folder, mode=0o700, exist_ok=True)
            binds = []
            for f in files:
                path = os.path.join(folder, f.name)
                binds.append((path, f.target))
                if os.path.exists(path):
                    continue
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
                try:
                    os.write(fd, f.content)
                    if os.geteuid() == 0:  # another owner only for root; else the files stay the agent's
                        os.fchown(fd, f.uid, f.gid)
                    os.fchmod(fd, f.mode)
                finally:
                    os.close(fd)
            return tuple(binds)

    def release(self, name: str) -> bool:
        """Remove container ``name``'s files; True when there were any."""
        with self._lock:
            folder = os.path.join(self.root, name)
            if not os.path.isdir(folder):
                return False
            shutil.rmtree(folder, ignore_errors=True)
            return True

    def sweep(self, keep: Collection[str], now: float | None = None) -> list[str]:
        """Remove the directories of containers not in ``keep`` (the engine's containers of this
        node) and older than ``SWEEP_AFTER``: what a killed agent, or a container removed by hand,
        left behind. A young one may belong to a container being created as the engine was listed."""
        now = time.time() if now is None else now
        with self._lock:
            try:
                names = os.listdir(self.root)
            except FileNotFoundError:
                return []
            gone = [n for n in names if n not in keep and now - _mtime(os.path.join(self.root, n)) > SWEEP_AFTER]
            for name in gone:
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
            return gone


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
