"""Relaying an endless byte stream to an HTTP client without losing a thread to it.

A followed log (``GET /tasks/<id>/logs?follow=1``) has a blocking source: the
engine's log stream, or the owner node's answer when this node forwards. A read
on it can wait for minutes on a quiet container, and while it waits the request
thread cannot see that its client went away; gunicorn runs a fixed number of
request threads (``http_threads``), so a few abandoned follows would starve the
API. So a :class:`Pump` reads the source in a thread of its own and hands the
chunks over through a small queue, and the request thread, waiting on that
queue for at most ``POLL`` seconds at a time, looks at its client in between.
Closing the pump closes the source, which ends the reader's blocked read.

:class:`FollowSlots` bounds how many follows a node serves at once (429 beyond):
each holds one request thread for as long as it lasts.
"""

from __future__ import annotations

import logging
import queue
import select
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

log = logging.getLogger("orion.api.streaming")

# How often a waiting follow looks at its client (and the agent's shutdown): an abandoned
# follow frees its thread within about this long; the check is one select() call.
POLL = 0.5
# Chunks read ahead of a slow client; beyond this the reader waits (back-pressure, bounded memory).
QUEUE_CHUNKS = 64

_END = object()


def client_gone(environ: Mapping[str, Any], closing: threading.Event | None = None) -> Callable[[], bool]:
    """A check that says when the client of this request has gone (or the agent is shutting down).

    While a response streams, an HTTP/1.1 client sends nothing more (no client pipelines), so its
    socket turning readable means it closed the connection: EOF, a reset, or TLS close_notify.
    Without gunicorn's socket (a test client) only ``closing`` can say so.
    """
    sock = environ.get("gunicorn.socket")

    def gone() -> bool:
        if closing is not None and closing.is_set():
            return True
        if sock is None:
            return False
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):  # closed under us
            return True
        return bool(readable)

    return gone


class Pump:
    """Reads ``chunks`` in its own thread; :meth:`relay` yields them to the response."""

    def __init__(self, chunks: Iterable[bytes], close_source: Callable[[], None], name: str) -> None:
        self._chunks = chunks
        self._close_source = close_source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=QUEUE_CHUNKS)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=name, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for chunk in self._chunks:
                if chunk and not self._offer(chunk):
                    return
        except Exception as exc:  # noqa: BLE001 - a closed source raises whatever its transport raises
            if not self._stop.is_set():
                log.info("log stream ended: %s", exc)
        self._offer(_END)

    def _offer(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL)
                return True
            except queue.Full:
                continue
        return False

    def relay(self, gone: Callable[[], bool]) -> Iterator[bytes]:
        """The chunks until the source ends or ``gone()`` says the client left."""
        while True:
            try:
                item = self._queue.get(timeout=POLL)
            except queue.Empty:
                if gone():
                    return
                continue
            if item is _END:
                return
            yield item  # type: ignore[misc]

    def close(self) -> None:
        """Stop reading and close the source (idempotent; called when the response closes)."""
        if self._stop.is_set():
            return
        self._stop.set()
        try:
            self._close_source()
        except Exception as exc:  # noqa: BLE001 - closing a broken stream may fail; it is gone either way
            log.debug("closing a log source: %s", exc)


class FollowSlots:
    """At most ``limit`` follows at once on this node; :meth:`take` returns the release or None."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free = threading.BoundedSemaphore(limit) if limit > 0 else None

    def take(self) -> Callable[[], None] | None:
        if self._free is None or not self._free.acquire(blocking=False):
            return None
        once = threading.Lock()
        free = self._free

        def release() -> None:
            if once.acquire(blocking=False):  # the first call only, atomically
                free.release()

        return release
