"""Blocking queries (Consul/Nomad style): ``GET ...?index=N&wait=30s``.

A reader that already has the answer at index N asks for the next one: the
request is held until this node's state machine has applied an index beyond N,
or until ``wait`` elapses, and then answers exactly as the plain read would,
with ``X-Orion-Index``. A watcher (``orion top``, a script) thus sees a change
within one apply instead of polling, and costs nothing while nothing changes.

The index is this node's *applied Raft index*: only replicated state moves it.
Gossip's view of a node (``gossip``/``health`` fields of ``GET /nodes``) is not
replicated, so a change there alone does not wake a waiter; a watcher that
wants it bounds ``wait`` (``orion top`` uses a few seconds). The registry
status of a node (``ready``/``dead``/``left``) is replicated, so it does.

Each held request occupies one of the agent's ``http_threads`` for its wait.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Mapping

from orion.api.schema.fields import SPACE, parse_duration, refuse_as
from orion.api.schema.problems import ValidationError

# Longest a request may be held (and the wait when only ``index`` is given): Consul's
# and Nomad's 5 minutes. Long enough that an idle watcher costs about nothing, short
# enough that a proxy or NAT table between the watcher and the node keeps the connection.
MAX_WAIT = 300.0
# Bare seconds ("2.5"), ASCII digits only: str.isdigit() also takes '²', which float() refuses.
BARE_SECONDS = re.compile(r"^[0-9]+(\.[0-9]*)?$", re.ASCII)
# Each wait for the next apply is re-checked this often, so a missed listener call
# (or an index that moved before this request subscribed) costs at most this much.
RECHECK = 0.25



def parse_wait(text: str) -> float:
    """``wait``: ``30s``, ``500ms``, ``5m`` (``orion/api/schema/fields.py``) or bare
    seconds (``2.5``), capped at MAX_WAIT."""
    bare = text.strip(SPACE)
    seconds = float(bare) if BARE_SECONDS.match(bare) else refuse_as("wait", parse_duration, bare)
    return min(seconds, MAX_WAIT)


def parse_blocking(args: Mapping[str, str]) -> tuple[int, float] | None:
    """(index, wait) when the query asks to block, else None. ``wait`` alone is checked
    but does not block: there is nothing to wait beyond."""
    raw_wait = args.get("wait")
    wait = parse_wait(raw_wait) if raw_wait is not None else MAX_WAIT
    raw_index = args.get("index")
    if raw_index is None:
        return None
    if not raw_index.isascii() or not raw_index.isdigit() or len(raw_index) > 20:
        raise ValidationError("index", f"{raw_index!r} must be a non-negative integer (an X-Orion-Index)")
    return int(raw_index), wait


def block(
    args: Mapping[str, str],
    current_index: Callable[[], int],
    wait_beyond: Callable[[int, float], None],
    closing: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Hold the calling request until ``current_index()`` passes the asked index or the wait
    ends; return at once for a plain read. ``wait_beyond(index, timeout)`` sleeps until the
    store applies beyond ``index`` (or the timeout). Once ``closing`` is set (the agent is
    shutting down) held reads answer within RECHECK: gunicorn would otherwise wait its whole
    graceful timeout for them before stopping the node."""
    asked = parse_blocking(args)
    if asked is None:
        return
    index, wait = asked
    deadline = clock() + wait
    while True:
        remaining = deadline - clock()
        if current_index() > index or remaining <= 0 or (closing is not None and closing.is_set()):
            return
        wait_beyond(index, min(remaining, RECHECK))
