"""What the agent checks before it starts anything: its ports, its data directory, its files.

Without this, a taken port surfaces late and in someone else's words: gunicorn
retries the API port five times over five seconds, the gossip socket fails with
a traceback through the worker's boot, and pysyncobj retries the Raft port
forever in silence (the node then answers 503 ``no-leader``, which sends the
operator to look at the cluster instead of this host). So the agent binds the
API's listening socket itself, first, and hands it to gunicorn (which then binds
nothing); the gossip (UDP and TCP) and Raft ports are bound and released at once,
because the worker binds them again after the fork. A failure is one sentence
naming the flag, the address and, where ``/proc`` tells, the process holding it.
"""

from __future__ import annotations

import errno
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from orion.api.tokens import TokenFileError, read_book
from orion.config import AgentConfig

# /proc/net/tcp's state column: 0A is LISTEN (include/net/tcp_states.h).
_TCP_LISTEN = "0A"
# A command line longer than this is cut in the message: the pid is there for the rest.
_COMMAND_WIDTH = 80


class PreflightError(Exception):
    """One sentence naming the setting, what is wrong and, where known, who is in the way."""


@dataclass(frozen=True)
class Port:
    """One socket the agent needs: the flag that sets it, where, and which protocol."""

    flag: str
    host: str
    port: int
    kind: socket.SocketKind

    @property
    def proto(self) -> str:
        return "udp" if self.kind == socket.SOCK_DGRAM else "tcp"

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.flag} {host}:{self.port} ({self.proto.upper()})"


def needed_ports(cfg: AgentConfig) -> list[Port]:
    """The API's port first: its socket is the one kept and handed to gunicorn."""
    return [Port("--port", cfg.bind, cfg.port, socket.SOCK_STREAM),
            Port("--gossip-port", cfg.bind, cfg.gossip_port, socket.SOCK_DGRAM),
            Port("--gossip-port", cfg.bind, cfg.gossip_port, socket.SOCK_STREAM),
            Port("--raft-port", cfg.bind, cfg.raft_port, socket.SOCK_STREAM)]


def preflight(cfg: AgentConfig, backlog: int = 2048) -> socket.socket:
    """Check everything the agent needs from this host; return the API's listening socket."""
    check_data_dir(cfg.data_dir)
    check_tokens(cfg.api_tokens_file, cfg.api_token)
    check_audit_log(audit_path(cfg))
    api, *others = needed_ports(cfg)
    listener = bind(api)
    listener.listen(backlog)
    try:
        for port in others:
            bind(port).close()
    except PreflightError:
        listener.close()
        raise
    return listener


def bind(port: Port) -> socket.socket:
    """Bind ``port`` as its user will (SO_REUSEADDR on TCP, as gunicorn, gossip and pysyncobj
    do: a socket in TIME_WAIT does not count as taken, a listening one does)."""
    try:
        family, _, _, _, addr = socket.getaddrinfo(port.host, port.port, type=port.kind)[0]
    except socket.gaierror as exc:
        raise PreflightError(f"--bind {port.host}: cannot resolve it ({exc.strerror}); "
                             "give an address of this host") from None
    sock = socket.socket(family, port.kind)
    try:
        if port.kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise PreflightError(_bind_failure(port, exc)) from None
    return sock


def _bind_failure(port: Port, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        holder = find_holder(port.proto, port.port)
        by = f" by {holder}" if holder else ""
        return f"{port.describe()} is already in use{by}; stop it or choose another {port.flag}"
    if exc.errno == errno.EACCES:
        return (f"{port.describe()}: permission denied; ports below 1024 need root or "
                f"CAP_NET_BIND_SERVICE, or choose another {port.flag}")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"--bind {port.host} is not an address of this host ({port.flag} {port.port}); fix --bind"
    return f"{port.describe()}: cannot listen ({exc.strerror}); choose another {port.flag}"


def check_data_dir(path: str) -> None:
    """The Raft journal lives here: create it if missing and make sure the agent can write."""
    directory = Path(path)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PreflightError(f"--data-dir {path}: cannot create it ({exc.strerror}); "
                             "choose a directory the agent's user may write") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise PreflightError(f"--data-dir {path} is not writable by uid {os.getuid()}; "
                             "fix its owner or choose another --data-dir")


def check_tokens(path: str, api_token: str) -> None:
    """The tokens file parses, every entry with a name, a scope and a hash (``orion/api/tokens.py``)."""
    try:
        read_book(path, api_token)
    except TokenFileError as exc:
        raise PreflightError(f"--api-tokens-file {exc}") from None


def audit_path(cfg: AgentConfig) -> Path:
    """``audit_log`` as a path: a relative one lives in the data directory."""
    path = Path(cfg.audit_log)
    return path if path.is_absolute() else Path(cfg.data_dir) / path


def check_audit_log(path: Path) -> None:
    """The audit log can be appended to (created 0600 if missing): a write must never be taken
    that cannot be recorded because of a typo in the path."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    except OSError as exc:
        raise PreflightError(f"audit_log {path}: cannot append to it ({exc.strerror}); choose a file the "
                             "agent's user may write") from None


# -- who holds a port (Linux /proc; best effort) ---------------------------------------------------
@dataclass(frozen=True)
class Socket:
    """One row of /proc/net/{tcp,udp}[6]."""

    port: int
    state: str
    uid: int
    inode: int


def parse_proc_net(text: str) -> list[Socket]:
    """Rows of /proc/net/tcp (or udp, tcp6, udp6): ``sl local_address rem_address st ...
    uid timeout inode``, with the local port in hex after the colon."""
    rows = []
    for line in text.splitlines()[1:]:
        cols = line.split()
        if len(cols) < 10 or ":" not in cols[1]:
            continue
        try:
            rows.append(Socket(port=int(cols[1].rsplit(":", 1)[1], 16), state=cols[3], uid=int(cols[7]),
                               inode=int(cols[9])))
        except ValueError:
            continue
    return rows


def holders(proto: str, port: int, proc: Path = Path("/proc")) -> list[Socket]:
    """The sockets on ``port``, listening ones first (a TCP port is taken by its listener)."""
    found: list[Socket] = []
    for name in (proto, proto + "6"):
        try:
            found += [s for s in parse_proc_net((proc / "net" / name).read_text()) if s.port == port]
        except OSError:
            continue
    return sorted(found, key=lambda s: (proto == "tcp" and s.state != _TCP_LISTEN, s.inode == 0))


def pid_of_inode(inode: int, proc: Path = Path("/proc")) -> int | None:
    """The process with an open fd on socket ``inode``; None when none we may look into has it."""
    target = f"socket:[{inode}]"
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == target:
                    return int(entry.name)
        except OSError:  # gone, or not ours to read
            continue
    return None


def command_of(pid: int, proc: Path = Path("/proc")) -> str:
    try:
        raw = (proc / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    # One line whatever the arguments hold (python -c scripts have newlines).
    text = " ".join(" ".join(part.decode(errors="replace").split()) for part in raw.split(b"\0") if part) or "?"
    return text if len(text) <= _COMMAND_WIDTH else text[: _COMMAND_WIDTH - 3] + "..."


def find_holder(proto: str, port: int, proc: Path = Path("/proc")) -> str | None:
    """``pid 4242 (python3 -m http.server 8000)``, ``a process of uid 1000 ...``, or None."""
    for sock in holders(proto, port, proc):
        if sock.inode == 0:
            continue
        pid = pid_of_inode(sock.inode, proc)
        if pid is not None:
            return f"pid {pid} ({command_of(pid, proc)})"
        return f"a process of uid {sock.uid} (run as root to see which)"
    return None
