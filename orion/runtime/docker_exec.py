"""An interactive exec in a container through the engine's exec API (``orion exec``).

``exec_create`` makes the process, ``exec_start(socket=True)`` starts it and hands
back the connection the engine hijacked for its streams (Docker's ``Upgrade:
tcp``), ``exec_resize`` sets its terminal's size, ``exec_inspect`` reads its exit
code once its streams end. The SDK parses the ``101`` with a buffered reader and
returns the socket under it: whatever the engine sent right behind its headers
may sit in that reader's buffer, so it is taken out (``early``) before the socket
is used on its own.

The engine does not stop an exec'd process when its connection closes (moby
#9098): a client that leaves a ``sleep 600`` behind leaves it running until it
ends; a shell on a tty gets a hangup when its terminal's connection closes.
"""

from __future__ import annotations

import io
import socket
import time
from typing import Any

import docker

from orion.runtime import ExecSpec

# The first resize of a tty races the process's start (the engine answers "no such
# process" until it runs): retried this often, this far apart (the docker CLI does the same).
RESIZE_ATTEMPTS = 10
RESIZE_PAUSE = 0.05
# After the streams end the engine may take a moment to record the exit code.
EXIT_WAIT = 5.0


class DockerExec:
    """One running exec: the :class:`~orion.runtime.ExecSession` the API relays."""

    def __init__(self, api: docker.APIClient, exec_id: str, raw: Any, tty: bool) -> None:
        self._api = api
        self.exec_id = exec_id
        self.tty = tty
        self._raw = raw  # what the SDK returned: keep it (and its response) alive with the socket
        self.sock: socket.socket = getattr(raw, "_sock", raw)
        self.early = _buffered(raw)

    def resize(self, rows: int, cols: int) -> None:
        self._api.exec_resize(self.exec_id, height=rows, width=cols)

    def first_resize(self, rows: int, cols: int) -> None:
        for attempt in range(RESIZE_ATTEMPTS):
            try:
                self.resize(rows, cols)
                return
            except docker.errors.APIError:
                if attempt == RESIZE_ATTEMPTS - 1:
                    raise
                time.sleep(RESIZE_PAUSE)

    def exit_code(self) -> int | None:
        """The process's exit code once it ended (None if the engine does not say in time)."""
        deadline = time.monotonic() + EXIT_WAIT
        while True:
            state = self._api.exec_inspect(self.exec_id)
            if not state.get("Running") and state.get("ExitCode") is not None:
                return int(state["ExitCode"])
            if time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def close(self) -> None:
        for closing in (self.sock, self._raw):
            try:
                closing.close()
            except OSError:
                pass


def _buffered(raw: Any) -> bytes:
    """What the SDK's HTTP reader read past the ``101``'s headers (held in its buffer, which the
    socket under it no longer has); read without blocking."""
    response = getattr(raw, "_response", None)
    reader = getattr(getattr(getattr(response, "raw", None), "_fp", None), "fp", None)
    if not isinstance(reader, io.BufferedReader):
        return b""
    sock = getattr(raw, "_sock", raw)
    try:
        sock.setblocking(False)
        try:
            early = reader.peek(1 << 16)
        except (BlockingIOError, OSError, ValueError):
            return b""
        return reader.read(len(early)) if early else b""
    finally:
        sock.setblocking(True)


def start_exec(api: docker.APIClient, container_id: str, spec: ExecSpec) -> DockerExec:
    """Create and start ``spec`` in the container; docker's errors pass through (the caller wraps them)."""
    created = api.exec_create(container_id, list(spec.command), stdin=spec.stdin, stdout=True, stderr=True,
                              tty=spec.tty, environment=dict(spec.env) or None, user=spec.user,
                              workdir=spec.workdir or None)
    exec_id = created["Id"]
    raw = api.exec_start(exec_id, tty=spec.tty, socket=True)
    session = DockerExec(api, exec_id, raw, spec.tty)
    if spec.tty and spec.rows and spec.cols:
        session.first_resize(spec.rows, spec.cols)
    return session
