"""The audit log on disk: JSON lines appended to one file, rotated by size, N files kept.

Each record is one line written with one ``write`` on a file opened ``O_APPEND``, so
a line is never interleaved with another and is in the kernel once the request's
answer is sent: an agent killed afterwards loses nothing (a power loss may lose the
last lines, as for any log not synced per line). When the next line would take the
file past ``max_bytes``, ``audit.log`` becomes ``audit.log.1``, ``.1`` becomes ``.2``
and so on, and the oldest beyond ``files`` (the current file counts) is deleted:
the log never takes more than about ``files * max_bytes`` of the disk.

The file is created mode 0600: a record names who did what, which is nobody
else's business on the host. A write that fails (disk full) is logged and the
request goes on: refusing every write because the log cannot be written would
turn a full disk into an outage of the cluster.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("orion.api.audit")


class AuditLog:
    """Appends records to ``path``; thread-safe (the request threads and the exec sessions)."""

    def __init__(self, path: str | Path, max_bytes: int, files: int) -> None:
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.files = max(1, files)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open()

    def _open(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def write(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str) + "\n").encode()
        with self._lock:
            try:
                if self._size and self._size + len(line) > self.max_bytes:
                    self._rotate()
                assert self._fd is not None
                os.write(self._fd, line)
                self._size += len(line)
            except OSError as exc:
                log.error("audit log %s: cannot write a record (%s): %s", self.path, exc.strerror,
                          record.get("method") or record.get("action"))

    def _rotate(self) -> None:
        """``audit.log`` -> ``.1`` -> ``.2`` ...; the file past ``files`` is deleted."""
        assert self._fd is not None
        os.close(self._fd)
        self._fd = None
        oldest = self.rotated(self.files - 1)
        if self.files == 1:
            self.path.unlink(missing_ok=True)
        else:
            oldest.unlink(missing_ok=True)
            for i in range(self.files - 2, 0, -1):
                older = self.rotated(i)
                if older.exists():
                    older.rename(self.rotated(i + 1))
            self.path.rename(self.rotated(1))
        self._open()

    def rotated(self, i: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{i}")

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
