"""The agent's gunicorn worker: gthread, but a blocking read waits without a thread.

gunicorn's ``gthread`` worker runs an event loop (accept, keep-alive, graceful
stop) and hands each request to one of ``http_threads`` threads for its whole
life. A blocking read (``GET /tasks?index=N&wait=60s``) would hold its thread
for the whole wait: 16 watchers took every thread of a node, and its
``/health`` and writes timed out (issue #20). This worker keeps everything of
gthread (TLS and client certificates, keep-alive, the body limits, graceful
stop) and adds two things:

- **Held reads.** Every bodiless GET on HTTP/1 is offered holding
  (``orion/api/holds.py``). A route that must wait raises ``HeldRead`` instead
  of waiting; the thread returns and the event loop parks the connection in
  :class:`~orion.agent.held_reads.HeldReads` with its socket watched. It is
  released when the app's applied index passes the asked one (the store's apply
  listener hands the index to the loop through gthread's wake-up pipe, only when
  an apply releases someone), when its wait ends, when its socket turns readable
  (the client left, or pipelines its next request) or when the agent stops
  (SIGTERM releases every held read at once). Then the request runs again on a
  thread and answers. At most ``max_blocking_queries`` are held; beyond that a
  blocking read answers 429.
- **Streams**: followed logs (``follow=1``) stream for as long as someone
  watches, exec sessions (``POST /tasks/<id>/exec``, an upgraded connection) for
  as long as their process runs; they run on threads of their own (at most
  ``max_log_follows`` + ``max_exec_sessions``, the limits their routes answer 429
  beyond), marked ``STREAM_KEY`` in their environ, never on the request threads.

gthread's own methods are extended, not copied: ``handle`` and ``handle_request``
(run on a thread) and ``finish_request`` (on the loop) learn the two detours,
``wait_for_and_dispatch_events`` wakes for the earliest held deadline. gunicorn
is pinned to the major version these hooks were read from (pyproject.toml), and
``tests/unit/agent/test_worker.py`` checks they are still there.
"""

from __future__ import annotations

import selectors
import threading
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

from orion.agent.held_reads import HeldReads
from orion.agent.shared_answers import SharedAnswers
from orion.api.holds import CLIENT, CLOSING, FULL, HOLD_KEY, HOLDABLE, INDEX, STREAM_KEY, WAIT, HeldRead, Released

# A held read is also re-checked against the applied index this often, in case the index
# moved without an apply listener call (a snapshot installed by a resync).
RECHECK = 0.25
# Threads of the watch lane: held reads answering, and the next request on a connection that
# held one (a watcher asking again). One write releases every watcher at once; on this lane
# that burst queues behind itself, never in front of /health or a write on the request
# threads, and takes the GIL from them about 1 part in (WATCH_THREADS + 1) while it lasts.
WATCH_THREADS = 2
# Set on a connection that held a read: its next requests go to the watch lane.
WATCHER = "orion_watcher"


@dataclass(frozen=True)
class HoldSettings:
    """What the worker needs of the agent, read from the gunicorn application (``holding``)
    once the app is built: how many reads it may hold, how many streams it may run (followed
    logs and exec sessions together) and which requests stream."""

    max_held: int
    max_streams: int
    streams: Callable[[str, str, str], bool]  # (method, path, query) -> a followed log or an exec


class _Detached(BaseException):  # noqa: N818 - a signal through gthread's handle(), like HeldRead
    """A streaming request, parsed on a request thread, to be served on a stream thread."""

    def __init__(self, request: Any) -> None:
        super().__init__()
        self.request = request


def _bodiless(req: Any) -> bool:
    for name, value in req.headers:
        if name == "TRANSFER-ENCODING" or (name == "CONTENT-LENGTH" and value.strip() != "0"):
            return False
    return True


class HoldingWorker(ThreadWorker):
    """gthread with held reads and stream threads (see the module note)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.held: HeldReads[Any] = HeldReads()
        self._requests: dict[Any, HeldRead] = {}  # connection -> its held request
        self._watch: Any = None  # the app's AppliedWatch, subscribed on the first hold
        self._wake_above: int | None = None  # an apply beyond this releases a read (read by the Raft thread)
        self._rechecked = 0.0
        self._local = threading.local()
        self._settings: HoldSettings | None = None
        self._streams: futures.ThreadPoolExecutor | None = None
        self._streaming = 0
        self._lane = futures.ThreadPoolExecutor(max_workers=WATCH_THREADS, thread_name_prefix="orion-watch")
        self.answers = SharedAnswers()

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self._settings = self.app.holding
        self._streams = futures.ThreadPoolExecutor(max_workers=max(1, self._settings.max_streams),
                                                   thread_name_prefix="orion-stream")
        app = self.wsgi

        def marked(environ: dict[str, Any], start_response: Any) -> Any:
            hold = getattr(self._local, "hold", None)
            if hold is None:  # a stream, or HTTP/2: the app as it is
                if getattr(self._local, "stream", False):
                    environ[STREAM_KEY] = True
                return app(environ, start_response)
            environ[HOLD_KEY] = hold
            current = self._watch.current if self._watch is not None else None
            return self.answers.serve(app, environ, start_response, current)

        self.wsgi = marked

    # -- on a request thread ---------------------------------------------------------------

    def handle(self, conn: Any) -> Any:
        try:
            return super().handle(conn)
        except (HeldRead, _Detached) as detour:
            return detour

    def handle_request(self, req: Any, conn: Any) -> Any:
        settings = self._settings
        if (settings is not None and self._streaming < settings.max_streams
                and settings.streams(req.method, req.path, req.query)):
            raise _Detached(req)
        holdable = req.method == "GET" and _bodiless(req)
        return self._run(req, conn, (HOLDABLE if self.alive else Released(CLOSING)) if holdable else None)

    def _run(self, req: Any, conn: Any, hold: str | Released | None) -> Any:
        self._local.hold = hold
        try:
            return super().handle_request(req, conn)
        except HeldRead as held:
            held.request = req
            raise
        finally:
            self._local.hold = None

    def _answer_all(self, group: list[tuple[Any, Any]], released: Released) -> None:
        """Answer held requests released by one event, one after the other on this thread
        (identical ones share one answer: ``shared_answers.py``), and hand them back together."""
        done = []
        try:
            for conn, req in group:
                fs: futures.Future = futures.Future()
                fs.set_result(self._answer(conn, req, released))
                done.append((conn, fs))
        finally:
            # One wake-up of the loop for the whole group: each write to gthread's pipe releases
            # the GIL, and taking it back behind busy threads costs up to a switch interval.
            self.method_queue.defer(self._finish_all, done)

    def _finish_all(self, done: list[tuple[Any, futures.Future]]) -> None:
        for conn, fs in done:
            self.finish_request(conn, fs)

    def _answer(self, conn: Any, req: Any, released: Released | None) -> Any:
        """Run a released (or detached) request on this thread: keep-alive or not, as
        gthread's ``handle`` would say."""
        try:
            conn.sock.setblocking(True)
            return bool(self._run(req, conn, released))
        except HeldRead as held:  # only if the app asked again: hold it again
            return held
        except StopIteration:
            return False
        except OSError as exc:  # the client left while held: EPIPE, ECONNRESET, a TLS EOF
            self.log.debug("held read: client gone: %s", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - answered as gthread answers any request's error
            self.handle_error(req, conn.sock, conn.client, exc)
            return False

    # -- on the event loop -----------------------------------------------------------------

    def finish_request(self, conn: Any, fs: Any) -> None:
        detour = not fs.cancelled() and fs.exception() is None and fs.result()
        if isinstance(detour, HeldRead):
            self._hold(conn, detour)
        elif isinstance(detour, _Detached):
            self._detach(conn, detour.request)
        else:
            super().finish_request(conn, fs)

    def _hold(self, conn: Any, held: HeldRead) -> None:
        if self._watch is None:
            self._watch = held.watch
            held.watch.subscribe(self._on_apply)
        assert self._settings is not None
        if not self.alive:
            self._release(conn, held, CLOSING)
            return
        if len(self.held) >= self._settings.max_held:
            self._release(conn, held, FULL)
            return
        try:
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_stir, conn))
        except (OSError, ValueError):  # closed already: answering fails fast and closes it
            self._release(conn, held, CLIENT)
            return
        setattr(conn, WATCHER, True)
        self._requests[conn] = held
        self.held.hold(conn, held.index, held.deadline)
        self._wake_above = self.held.lowest_index()
        # An apply between the route's check and now called no one: look once more.
        self._release_all(self.held.passed(held.watch.current()), INDEX)

    def _on_apply(self, index: int) -> None:
        """On the Raft thread: wake the loop only when this apply releases a read."""
        lowest = self._wake_above
        if lowest is not None and index > lowest:
            self.method_queue.defer(self._applied, index)

    def _applied(self, index: int) -> None:
        self._release_all(self.held.passed(index), INDEX)

    def _on_stir(self, conn: Any, _sock: Any) -> None:
        if self.held.forget(conn):
            self._release_all([conn], CLIENT)

    def _release_all(self, conns: list[Any], why: str) -> None:
        """Release ``conns`` (held) for one reason, grouped by request: identical ones run one
        after the other, so all but the first take the first's answer (``shared_answers.py``)."""
        groups: dict[tuple[str, str, str], list[tuple[Any, Any]]] = {}
        for conn in conns:
            req = self._unhold(conn).request
            auth = next((v for k, v in req.headers if k == "AUTHORIZATION"), "")
            groups.setdefault((req.method, req.uri, auth), []).append((conn, req))
        assert self._settings is not None
        released = Released(why, self._settings.max_held)
        for group in groups.values():
            self._lane.submit(self._answer_all, group, released)
        self._wake_above = self.held.lowest_index()

    def _release(self, conn: Any, held: HeldRead, why: str) -> None:
        """Release one request, held or about to be."""
        if conn in self._requests:
            self._unhold(conn)
        assert self._settings is not None
        self._lane.submit(self._answer_all, [(conn, held.request)], Released(why, self._settings.max_held))

    def _unhold(self, conn: Any) -> HeldRead:
        held = self._requests.pop(conn)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass  # closed under us: the thread's write fails and the connection closes
        return held

    def enqueue_req(self, conn: Any) -> None:
        """A connection that held a read is a watcher's: its requests go to the watch lane."""
        if not getattr(conn, WATCHER, False):
            super().enqueue_req(conn)
            return
        fs = self._lane.submit(self.handle, conn)
        fs.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))

    def _detach(self, conn: Any, req: Any) -> None:
        assert self._streams is not None
        self._streaming += 1
        fs = self._streams.submit(self._stream, conn, req)
        fs.add_done_callback(lambda fut: self.method_queue.defer(self._stream_done, conn, fut))

    def _stream(self, conn: Any, req: Any) -> Any:
        """A detached request, on a stream thread: the app is told so (``STREAM_KEY``)."""
        self._local.stream = True
        try:
            return self._answer(conn, req, None)
        finally:
            self._local.stream = False

    def _stream_done(self, conn: Any, fs: Any) -> None:
        self._streaming -= 1
        self.finish_request(conn, fs)

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        if len(self.held):
            deadline = self.held.next_deadline()
            if deadline is not None:
                timeout = max(0.0, min(timeout, RECHECK, deadline - time.monotonic()))
        super().wait_for_and_dispatch_events(timeout)
        if len(self.held):
            now = time.monotonic()
            self._release_all(self.held.due(now), WAIT)
            if self._watch is not None and now - self._rechecked >= RECHECK:
                self._rechecked = now
                self._release_all(self.held.passed(self._watch.current()), INDEX)

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: gthread stops accepting and drains; every held read answers now, not when
        its wait ends (it would keep the node from stopping for up to 5 minutes)."""
        super().handle_exit(sig, frame)
        self.method_queue.defer(lambda: self._release_all(self.held.all(), CLOSING))

    def run(self) -> None:
        try:
            super().run()
        finally:
            self._lane.shutdown(wait=False)
            if self._streams is not None:
                self._streams.shutdown(wait=False)
