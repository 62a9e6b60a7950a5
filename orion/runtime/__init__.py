"""What a node's container runtime looks like to the reconciler.

The reconciler plans over plain :class:`ContainerState` values and asks a
:class:`Runtime` to act; ``orion.runtime.docker.DockerRuntime`` is the real
adapter (the docker SDK stays inside it). This module imports no SDK, so the
pure planner and its tests load without docker installed.

Containers carry their identity in labels (``orion.task``, ``orion.node``,
``orion.generation``, ``orion.managed``), not in a local database: after an
agent restart, listing the engine is enough to adopt what already runs.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from orion.domain.model import Resources, Task

LABEL_TASK = "orion.task"
LABEL_NODE = "orion.node"
LABEL_GENERATION = "orion.generation"
LABEL_MANAGED = "orion.managed"
# The Docker network a container was attached to for the overlay (absent: the engine's default
# bridge): inspect reads the task's overlay address on that network.
LABEL_NETWORK = "orion.network"

# Engine statuses, grouped by what the reconciler does with them. ``paused`` and
# ``restarting`` still hold the task's process, so they count as running.
LIVE_STATUSES = frozenset({"running", "paused", "restarting"})
FINISHED_STATUSES = frozenset({"exited", "dead"})
CREATED_STATUS = "created"
REMOVING_STATUS = "removing"
# The exit code Docker records for a container whose process it lost: a container
# that was running when its engine (or host) died comes back "exited 255" when the
# engine restores it. A process may exit 255 by itself too, so the reconciler reads
# it as "lost with the engine" only for an exit it did not see happen.
ENGINE_LOST_EXIT = 255


class RuntimeFailure(Exception):
    """The runtime could not do what was asked. ``str()`` is a short reason fit
    for a task's ``reason`` field: never an SDK traceback."""


class ContainerGone(RuntimeFailure):
    """The container asked about no longer exists (removed, or never created on this engine)."""


class NetworkNotReady(RuntimeFailure):
    """The task joins a network this node has not made yet (no lease, the Docker network not
    created yet): the start waits for a later pass instead of failing the task."""


class EngineUnreachable(RuntimeFailure):
    """The engine itself did not answer (refused, gone, timed out). Says nothing
    about the task: the caller retries later instead of failing it."""


class RegistryAuthRequired(RuntimeFailure):
    """The image's registry refused the pull for want of (valid) credentials: nothing the task
    did, and nothing another node would do better; the task waits for ``orion registry login``."""


@dataclass(frozen=True)
class StartExtras:
    """What a task's container gets beyond its spec, prepared by its node (docs/secrets.md):
    ``binds`` (host file on the node's tmpfs, container path), mounted read-only; ``env``,
    secrets as environment variables; ``auth``, the registry credentials for its image's pull.
    The values are never part of a repr (a log line or a traceback cannot show them)."""

    binds: tuple[tuple[str, str], ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    auth: dict[str, str] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ContainerState:
    """One managed container as the engine reports it, at one moment."""

    container_id: str
    task_id: str
    generation: int
    status: str
    exit_code: int | None = None
    host_ports: tuple[tuple[str, int], ...] = ()
    error: str = ""
    name: str = ""
    # The container's address on its overlay network ("" off the overlay or not started).
    ip: str = ""
    # The grace the container was created with (its task's ``stopGracePeriod``; None: none set):
    # a node stops it with that, whoever's task it was (orion/node/reconcile.py).
    stop_grace: float | None = None

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass(frozen=True)
class LogQuery:
    """Which of a container's output to read (``docker logs`` options).

    ``tail``: the last N lines (None: all); ``since``: only lines written at or after
    this Unix time (None: from the start); ``follow``: keep streaming new lines until
    the container ends or the reader closes the stream; ``timestamps``: prefix each
    line with the engine's RFC 3339 time.
    """

    tail: int | None = None
    since: float | None = None
    follow: bool = False
    timestamps: bool = False


class LogStream(Protocol):
    """A container's output as chunks of bytes (stdout and stderr, as written). ``close``
    may be called from another thread and ends an iteration blocked on a quiet container."""

    def __iter__(self) -> Iterator[bytes]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class NetworkAttachment:
    """How a task's container joins the overlay: the Docker network (on the host's subnet) and
    the resolver it is given (Orion's DNS server on the bridge gateway, and search domains).
    Decided by the node (orion/node/network_views.py), carried out by the runtime."""

    network: str
    dns: tuple[str, ...]
    dns_search: tuple[str, ...]


@dataclass(frozen=True)
class ExecSpec:
    """A process to run in a task's container (``orion exec``): ``command`` as argv; ``tty`` a
    terminal of ``rows`` x ``cols``; ``stdin`` attached or not; ``env`` added to the container's."""

    command: tuple[str, ...]
    tty: bool = False
    stdin: bool = False
    rows: int = 0
    cols: int = 0
    env: tuple[tuple[str, str], ...] = ()
    user: str = ""
    workdir: str = ""


class ExecSession(Protocol):
    """A process started in a container, its streams on ``sock``: the engine's raw stream
    (with a tty the terminal's bytes; without, Docker's multiplexed frames); ``early`` holds
    what arrived before the socket was handed over."""

    sock: socket.socket
    early: bytes
    tty: bool

    def resize(self, rows: int, cols: int) -> None: ...

    def exit_code(self) -> int | None: ...

    def close(self) -> None: ...


def container_name(task_id: str, generation: int) -> str:
    """Unique per placement, so an older generation never collides with a newer one."""
    return f"orion-{task_id}-g{generation}"


class Runtime(Protocol):
    """The container operations a node needs. Implementations raise RuntimeFailure."""

    def start(self, task: Task, node_id: str, extras: StartExtras | None = None,
              network: NetworkAttachment | None = None) -> ContainerState:
        """Create and start the task's container (with ``extras``, on ``network`` when given); return
        its state after start. NetworkNotReady when that network does not exist on the engine yet."""

    def stop(self, container_id: str, timeout: float) -> None:
        """Stop (its stop signal, SIGTERM unless it was created with another, then SIGKILL after
        ``timeout``); a gone container is not an error."""

    def remove(self, container_id: str) -> None:
        """Remove the container; a gone container is not an error."""

    def list_managed(self, node_id: str) -> Sequence[ContainerState]:
        """Every Orion container of ``node_id``, in any status."""

    def engine_capacity(self) -> Resources:
        """Memory and CPU the engine sees."""

    def engine_platform(self) -> EnginePlatform:
        """Where containers run, as placement constraints name it: host name, OS, architecture,
        engine version (``node.hostname``, ``node.platform.os``, ... in orion/domain/constraints.py)."""

    def ping(self, timeout: float | None = None) -> bool:
        """True when the engine answers (within ``timeout`` seconds if given)."""

    def logs(self, container_id: str, query: LogQuery) -> LogStream:
        """The container's output; ContainerGone when it no longer exists."""


@dataclass(frozen=True)
class EnginePlatform:
    hostname: str = ""
    os: str = ""
    arch: str = ""
    version: str = ""


__all__ = [
    "EnginePlatform",
    "CREATED_STATUS",
    "FINISHED_STATUSES",
    "LABEL_GENERATION",
    "LABEL_MANAGED",
    "LABEL_NETWORK",
    "LABEL_NODE",
    "LABEL_TASK",
    "LIVE_STATUSES",
    "REMOVING_STATUS",
    "ContainerGone",
    "ContainerState",
    "ExecSession",
    "ExecSpec",
    "LogQuery",
    "RegistryAuthRequired",
    "StartExtras",
    "LogStream",
    "NetworkAttachment",
    "NetworkNotReady",
    "Runtime",
    "RuntimeFailure",
    "container_name",
]
