"""What a blocking read asks of the server that runs the app, and what it is told back.

A blocking read (``?index=N&wait=D``) must not cost a request thread while it
waits: a thousand watchers on one node would otherwise take every thread and
starve ``/health`` and the writes (issue #20). So the wait is the server's: the
agent's gunicorn worker (``orion/agent/worker.py``) marks each request it can
hold with ``environ[HOLD_KEY] = HOLDABLE``. A route that must wait raises
:class:`HeldRead`; it unwinds the app (a ``BaseException``, like
``GeneratorExit``: control flow, never an error, so no error handler turns it
into a 500 and no ``after_request`` counts it), and the worker parks the
connection in its event loop, no thread attached, until the applied index
passes N, the wait ends, the client's socket stirs or the agent stops. Then it
runs the request again on a thread with ``environ[HOLD_KEY]`` set to the
:class:`Released` that says why, and the route answers at once.

Everything before the wait (the token, the query's names and values, the
route itself) runs in the first pass, so a bad request is refused at once and
never held. Under any other server (Flask's test client, a plain WSGI server)
no key is set and the route waits on its thread as it always did
(``orion/api/http.py``, ``wait_for_index``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

HOLD_KEY = "orion.hold"
# Set (True) by the agent's worker on a request it runs on one of its stream threads (a
# followed log, an exec session): a route that would hold its thread for long runs only there.
STREAM_KEY = "orion.stream"
HOLDABLE = "holdable"
# Set by a blocking read that answers because the applied index passed its N: the answer is
# a function of the state at that index, the URL and the token, so the server may give it to
# an identical request while that index stands (orion/agent/shared_answers.py). True: to any
# identical request (a ?stale read, /raft); RELEASED_ONLY: only to the second pass of a held
# one — a linearizable read made its read point in its first pass, before it was held, and the
# answer's index is beyond it; a request just arriving has made none (api/http.py, install_reads).
SHAREABLE_KEY = "orion.shareable"
RELEASED_ONLY = "released-only"

# Why a held read was released: its index passed, its wait ended, the client's socket
# turned readable (gone, or sending again), the agent is stopping, or the node holds
# as many reads as it may (answered 429).
INDEX, WAIT, CLIENT, CLOSING, FULL = "index", "wait", "client", "closing", "full"


@dataclass(frozen=True)
class Released:
    """The second pass of a held read: answer now. ``held``: how many reads the node held
    when this one was refused (for ``FULL``'s message), else 0."""

    why: str
    limit: int = 0


class AppliedWatch(Protocol):
    """What the server needs of the app to hold a read: the applied index now, and a call on
    every apply (made on the Raft thread: it must only hand the index over, never block)."""

    def current(self) -> int: ...

    def subscribe(self, fn: Callable[[int], None]) -> None: ...


class HeldRead(BaseException):  # noqa: N818 - a signal, not an error: see the module note
    """Park this request until ``watch`` passes ``index`` or ``deadline`` (monotonic) comes.
    The worker fills in ``request`` (its parsed request) as the signal passes through it."""

    def __init__(self, index: int, deadline: float, watch: AppliedWatch) -> None:
        super().__init__(index, deadline)
        self.index = index
        self.deadline = deadline
        self.watch = watch
        self.request: Any = None


def hold_state(environ: dict[str, Any]) -> str | Released | None:
    """``HOLDABLE`` (the server can park this request), a ``Released`` (its second pass),
    or None (no such server: wait on the thread)."""
    return environ.get(HOLD_KEY)
