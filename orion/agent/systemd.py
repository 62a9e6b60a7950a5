"""systemd readiness (``Type=notify``) without a dependency.

gunicorn notifies systemd as soon as its master is up, long before this node has
joined and found a leader. The server therefore moves ``NOTIFY_SOCKET`` aside
(to ``ORION_NOTIFY_SOCKET``) before gunicorn sees it, and the agent sends
``READY=1`` itself once it is really ready (the unit sets ``NotifyAccess=all``
because the worker, not the main process, sends it).
"""

from __future__ import annotations

import os
import socket

HIDDEN = "ORION_NOTIFY_SOCKET"


def hide_notify_socket() -> None:
    """Keep gunicorn from announcing readiness early; remember the socket for us."""
    sock = os.environ.pop("NOTIFY_SOCKET", None)
    if sock:
        os.environ[HIDDEN] = sock


def notify(state: str) -> bool:
    """Send ``state`` to systemd if we run under it; a no-op elsewhere."""
    addr = os.environ.get(HIDDEN) or os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return False
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(addr)
            sock.sendall(state.encode())
        return True
    except OSError:
        return False
