"""Rule 7 of ``patches.py``: the truncation watch — it hears pysyncobj truncate entries this
replica had applied, so the store can rebuild its machine.

pysyncobj only logs that (``syncobj.py:999-1003``): the watch is a filter on its
logger that routes the record to the engine whose tick thread wrote it. It
changes nothing in pysyncobj; the store acts (``store.py``, ``_resync``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pysyncobj import SyncObj

# The record pysyncobj logs (syncobj.py:999-1003); tests/unit/raft/test_patches.py
# checks that the installed version still writes it.
TRUNCATION_MESSAGE = "truncating already-applied log entries"


class _Router(logging.Filter):
    """One filter on pysyncobj's logger: hands each truncation record to the watch of the
    engine whose tick thread wrote it (several engines may share a process, in tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._by_thread: dict[int, Callable[[int, int], None]] = {}

    def route(self, thread: int, fn: Callable[[int, int], None] | None) -> None:
        with self._lock:
            if fn is None:
                self._by_thread.pop(thread, None)
            else:
                self._by_thread[thread] = fn

    def filter(self, record: logging.LogRecord) -> bool:
        if TRUNCATION_MESSAGE in str(record.msg):
            with self._lock:
                fn = self._by_thread.get(record.thread or 0)
            args = record.args if isinstance(record.args, tuple) else ()
            if fn is not None and len(args) >= 2:
                fn(int(args[0]), int(args[1]))
        return True


_ROUTER = _Router()
logging.getLogger("pysyncobj.syncobj").addFilter(_ROUTER)


class TruncationWatch:
    """Calls ``on_truncation(from_index, last_applied)`` when this engine truncates applied
    entries. When the replacing entries differ — a configuration that let two leaders
    commit (pysyncobj never sets ``__changeClusterIDx``, ``:1356-1369``, so it does not
    enforce one membership change at a time), nodes campaigning from a member list nobody
    agreed to — the machine has applied commands the cluster does not have, and nothing in
    pysyncobj notices. A duplicate ``append_entries`` of the same leader re-sends the same
    entries: harmless, but heard too (the rebuild is cheap and always correct).

    It runs on the engine's tick thread and must only record: the store acts on another thread.
    """

    def __init__(self, engine: SyncObj, on_truncation: Callable[[int, int], None]) -> None:
        self._on_truncation = on_truncation
        self._thread: int | None = None
        self._engine = engine
        engine.addOnTickCallback(self._learn_thread)

    def _learn_thread(self) -> None:
        """An on-tick callback: the first tick names the thread whose records are ours."""
        if self._thread is None:
            self._thread = threading.get_ident()
            _ROUTER.route(self._thread, self._on_truncation)

    def close(self) -> None:
        self._engine.removeOnTickCallback(self._learn_thread)
        if self._thread is not None:
            _ROUTER.route(self._thread, None)
