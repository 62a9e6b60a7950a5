"""``orion exec [-i] [-t] TASK -- CMD...``: a process in a task's container, through any node.

The node at ``--addr`` runs it or forwards it to the task's node (docs/api.md,
"Exec"); this command speaks the session's frames (``orion/api/exec_wire.py``):
stdin (``-i``) goes out as stdin frames and its end as an empty one, stdout and
stderr come back to this process's own, ``-t`` puts the local terminal in raw mode
(keys, Ctrl-C included, go to the remote process) and sends its size when it
changes (SIGWINCH), and the last frame's exit code is this command's.

Exit codes: the process's own; 1 when Orion refused or could not be reached
(as every command); 255 when the session broke off before the process's exit
status came (as ssh does when its connection is lost).
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import ssl
import sys
import termios
import tty as ttymod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from orion.api.exec_wire import (
    STATUS,
    STDERR,
    STDIN,
    STDOUT,
    Decoder,
    ProtocolError,
    Target,
    dial,
    frame,
    resize_frame,
)
from orion.cli.client import DEFAULT_ADDR, DEFAULT_TIMEOUT, _tls_reason, normalize_addr
from orion.cli.common import OrionError, Settings, examples

# The session broke off without the process's exit status (ssh's code for a lost connection).
SESSION_LOST = 255
CHUNK = 64 * 1024
# Stop reading stdin while this much of it waits to be sent (the remote side reads slowly).
PENDING = 256 * 1024


class SessionLost(click.ClickException):
    exit_code = SESSION_LOST


@click.command("exec", context_settings={"allow_interspersed_args": False},
               epilog=examples("orion exec 3f2a9c1b -- ls -l /data", "orion exec -it 3f2a9c1b sh",
                               "echo hello | orion exec -i 3f2a9c1b -- cat", "orion exec -e DEBUG=1 3f2a9c1b env"))
@click.option("-i", "--interactive", is_flag=True, help="Send this terminal's (or pipe's) stdin to the process.")
@click.option("-t", "--tty", is_flag=True, help="Give the process a terminal (this one must be a terminal).")
@click.option("-e", "--env", multiple=True, metavar="KEY=VALUE", help="Set an environment variable (repeatable).")
@click.option("-u", "--user", help="User (name or uid[:gid]) to run as.")
@click.option("-w", "--workdir", help="Working directory inside the container (absolute).")
@click.argument("task_id")
@click.argument("command", nargs=-1, required=True)
@click.pass_context
def exec_(ctx: click.Context, interactive: bool, tty: bool, env: tuple[str, ...], user: str | None,
          workdir: str | None, task_id: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in a task's container, wherever the task runs; exit with its exit code.

    Needs a token with scope admin (docs/api.md, "Tokens and scopes")."""
    settings: Settings = ctx.obj or Settings(DEFAULT_ADDR, None, False, DEFAULT_TIMEOUT)
    if command[:1] == ("--",):  # TASK -- CMD: options stop at TASK, so the separator arrives as an argument
        command = command[1:]
    if not command:
        raise click.UsageError("give the command to run after the task id: orion exec TASK -- CMD...")
    body: dict[str, Any] = {"command": list(command), "tty": tty, "stdin": interactive}
    for item in env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="-e/--env")
        body.setdefault("env", {})[key] = value
    if user:
        body["user"] = user
    if workdir:
        body["workdir"] = workdir
    stdin_fd = sys.stdin.fileno()
    if tty:
        if not os.isatty(stdin_fd):
            raise click.UsageError("-t needs a terminal, and stdin is not one: drop -t (keep -i to pipe input)")
        size = os.get_terminal_size(stdin_fd)
        body.update(rows=size.lines, cols=size.columns)
    sock, early = _open(settings, task_id, body)
    with _raw(stdin_fd if tty else None):
        code = Session(sock, stdin_fd if interactive else None, tty).run(early)
    ctx.exit(code)


def _open(settings: Settings, task_id: str, body: dict[str, Any]) -> tuple[socket.socket, bytes]:
    addr = normalize_addr(settings.addr)
    headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
    context = None
    if addr.startswith("https://"):
        context = ssl.create_default_context(cafile=settings.ca_cert)
        if settings.client_cert:
            try:
                context.load_cert_chain(settings.client_cert, settings.client_key)
            except ssl.SSLError:
                raise OrionError("--client-cert and --client-key are not a certificate and its matching key") \
                    from None
    target = Target(f"{addr}/tasks/{task_id}/exec", context, headers)
    try:
        answer = dial(target, json.dumps(body).encode(), settings.timeout)
    except ssl.SSLError as exc:
        raise OrionError(f"TLS with Orion at {addr} failed: {_tls_reason(exc, bool(settings.client_cert))}") \
            from None
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise OrionError(f"cannot reach Orion at {addr}: {reason}. Is `orion agent` running? Set --addr or "
                         "ORION_ADDR.") from None
    if answer.status != 101 or answer.sock is None:
        data = answer.json()
        message = str(data.get("error") or f"exec answered {answer.status}")
        if data.get("field") and not message.startswith(f"{data['field']}:"):
            message += f" (field: {data['field']})"
        if answer.status == 401 and not settings.token:
            message += " (this cluster needs --token or ORION_API_TOKEN)"
        if answer.status == 404:
            message += "; `orion ps -a` lists the task ids"
        raise OrionError(message)
    return answer.sock, answer.early


@contextmanager
def _raw(fd: int | None) -> Iterator[None]:
    """The local terminal in raw mode while the session lasts (restored however it ends)."""
    if fd is None:
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        ttymod.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class Session:
    """One thread: select over the connection, stdin and a SIGWINCH pipe; non-blocking sends,
    so a process that does not read its stdin never stops its output from coming back."""

    def __init__(self, sock: socket.socket, stdin_fd: int | None, tty: bool) -> None:
        self.sock = sock
        self.stdin_fd = stdin_fd
        self.tty = tty
        self.out = bytearray()
        self.decoder = Decoder()
        self.status: dict[str, Any] | None = None

    def run(self, early: bytes) -> int:
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        previous = signal.signal(signal.SIGWINCH, lambda *_: _poke(wake_w)) if self.tty else None
        try:
            self.sock.setblocking(False)
            self._received(early)
            while self.status is None:
                if not self._step(wake_r):
                    break
        except ProtocolError as exc:
            raise SessionLost(f"the session broke off: {exc}") from None
        finally:
            if self.tty:
                signal.signal(signal.SIGWINCH, previous)
            os.close(wake_r)
            os.close(wake_w)
            self.sock.close()
        if self.status is None:
            raise SessionLost("the session broke off before the process's exit status came")
        code = self.status.get("exitCode")
        if code is None:
            raise SessionLost(f"the process's exit status is unknown: {self.status.get('error', 'no reason given')}")
        return int(code)

    def _step(self, wake_r: int) -> bool:
        readers: list[Any] = [self.sock, wake_r]
        if self.stdin_fd is not None and len(self.out) < PENDING:
            readers.append(self.stdin_fd)
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        readable, _, _ = select.select(readers, [self.sock] if self.out else [], [], 0 if pending else None)
        if wake_r in readable:
            os.read(wake_r, 64)
            size = os.get_terminal_size(self.stdin_fd if self.stdin_fd is not None else sys.stdin.fileno())
            self.out += resize_frame(size.lines, size.columns)
        if self.stdin_fd is not None and self.stdin_fd in readable:
            data = os.read(self.stdin_fd, CHUNK)
            self.out += frame(STDIN, data)
            if not data:  # end of stdin: the empty frame closes the process's
                self.stdin_fd = None
        if self.sock in readable or pending:
            try:
                data = self.sock.recv(CHUNK)
            except (ssl.SSLWantReadError, BlockingIOError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                return False
            if data:
                self._received(data)
        if self.out:
            try:
                sent = self.sock.send(self.out[:CHUNK])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                sent = 0
            except OSError:
                return False
            del self.out[:sent]
        return True

    def _received(self, data: bytes) -> None:
        for channel, payload in self.decoder.feed(data):
            if channel == STDOUT:
                _write_all(sys.stdout.fileno(), payload)
            elif channel == STDERR:
                _write_all(sys.stderr.fileno(), payload)
            elif channel == STATUS:
                self.status = json.loads(payload)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _poke(fd: int) -> None:
    try:
        os.write(fd, b"w")
    except BlockingIOError:
        pass
