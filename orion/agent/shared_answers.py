"""One answer for the same blocking read at the same applied index.

One write wakes every watcher at once, and a thousand watchers of ``GET
/tasks`` ask the same thing: the same URL (their ``index=N`` included, since
they all held the same N), the same token, at the same applied index. Rendering
the list once costs ~1.5 ms with a hundred tasks, a thousand times is 1.5 s of
the one interpreter's time — a second and a half before the last watcher sees
the write, and the node's other requests starved meanwhile. So the worker
keeps the last answer of each such request and gives it to the identical
requests that follow, while it is still true:

- only answers the app marked ``SHAREABLE_KEY`` (``orion/api/holds.py``): a
  blocking read answered because the applied index passed its N, so the answer
  is a function of the state at that index, the URL and the token (an answer
  to a wait that ran out is not: an identical request must still wait); a
  linearizable read's answer only to the second pass of a held read, which made
  its read point before it was held (``RELEASED_ONLY``);
- only while the applied index is still the one the answer carries
  (``X-Orion-Index``), and for at most ``SHARE_FOR`` (``/nodes`` also shows
  gossip's view, which moves no index);
- keyed by path, query and ``Authorization`` exactly: a request that differs in
  any of them runs the app (its token check, its parsing) as usual.

A shared answer skips the app, so the request is not counted in the API's
metrics (``orion_http_requests_total``); everything else of the HTTP exchange
is gunicorn's own for each connection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from orion.api.holds import HOLD_KEY, RELEASED_ONLY, SHAREABLE_KEY, Released

# The longest an answer is given again at one applied index: a burst of watchers woken by one
# write asks within this; a watcher of /nodes sees gossip's view at most this much older.
SHARE_FOR = 0.5
# Distinct requests remembered (they differ by URL or token); beyond this the memory starts over.
MAX_KEPT = 256

Key = tuple[str, str, str]


@dataclass(frozen=True)
class Shared:
    status: str
    headers: list[tuple[str, str]]
    body: list[bytes]
    index: int
    at: float
    anyone: bool  # False: only for a held read's second pass (holds.py, RELEASED_ONLY)


def key_of(environ: dict[str, Any]) -> Key | None:
    """What identifies a request for sharing, or None when it is no blocking read."""
    if environ.get("REQUEST_METHOD") != "GET" or "index=" not in environ.get("QUERY_STRING", ""):
        return None
    return (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""), environ["QUERY_STRING"],
            environ.get("HTTP_AUTHORIZATION", ""))


class SharedAnswers:
    """The kept answers; ``serve`` runs the app or replays one (thread-safe under the GIL:
    two threads that both miss both render, and the later answer is kept)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._kept: dict[Key, Shared] = {}
        self._clock = clock

    def serve(self, app: Callable[..., Iterable[bytes]], environ: dict[str, Any], start_response: Any,
              current: Callable[[], int] | None) -> Iterable[bytes]:
        """``app``'s answer to ``environ``, or the kept one when it is still true (``current``:
        the applied index now; None: nothing is shared yet)."""
        key = key_of(environ)
        if key is None or current is None:
            return app(environ, start_response)
        shared = self._kept.get(key)
        if shared is not None and self._clock() - shared.at <= SHARE_FOR and shared.index == current() \
                and (shared.anyone or isinstance(environ.get(HOLD_KEY), Released)):
            start_response(shared.status, shared.headers)
            return shared.body
        recorded: dict[str, Any] = {}

        def record(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            recorded.update(status=status, headers=list(headers))
            return start_response(status, headers, exc_info)

        body = app(environ, record)
        if not environ.get(SHAREABLE_KEY) or not recorded.get("status", "").startswith("200"):
            return body
        try:
            chunks = list(body)
        finally:
            if hasattr(body, "close"):
                body.close()
        index = next((int(v) for k, v in recorded["headers"] if k.lower() == "x-orion-index"), None)
        if index is not None:
            if len(self._kept) >= MAX_KEPT:
                self._kept = {}
            self._kept[key] = Shared(recorded["status"], recorded["headers"], chunks, index, self._clock(),
                                     anyone=environ[SHAREABLE_KEY] != RELEASED_ONLY)
        return chunks
