"""How a task's container runs beyond its image, limits, ports and mounts: the Compose settings a
node can honour (user, working directory, entrypoint, capabilities, devices, labels, logging, stop
signal and grace period, init, ulimits, read-only root, tmpfs, hostname, extra hosts, shm size,
sysctls, CPU shares, privileged).

Values only, like ``orion/domain/resources.py``: :class:`ContainerSettings` is one field of
``TaskSpec`` (``container``), declared once here and shared by a lone task and a service's
template. The API parses it (``orion/api/schema/container.py``), the runtime turns it into the
engine's create arguments (``orion/runtime/create.py``), ``spec_diff`` names each changed field.
The rules that are facts about Linux (the capabilities, the signals, which sysctls a container's
namespaces isolate) live here too, so every layer refuses the same values.

Two settings need the node's consent, like host volumes: a device is a host path (a node lists the
ones it hands out, ``host_devices``) and ``privileged`` is root on the host (``allow_privileged``).
A task asking for either is placed only where the node allows it (``orion/control/placement.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any

# Linux capabilities (capability.h, through 5.9's CHECKPOINT_RESTORE), as Docker names them: no
# CAP_ prefix. "ALL" is Docker's word for every one of them.
CAPABILITIES = frozenset((
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE", "ALL"))

# Signal names as the engine reads a stop signal (moby's signal table for Linux), without SIG.
_SIGNALS = ("ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
            "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
            "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ")
SIGNALS = frozenset(_SIGNALS + ("RTMIN", "RTMAX") + tuple(f"RTMIN+{i}" for i in range(1, 16))
                    + tuple(f"RTMAX-{i}" for i in range(1, 15)))
MAX_SIGNAL = 64  # a signal given by number: 1..SIGRTMAX

# ulimit names the engine knows (setrlimit's RLIMIT_* in lower case, as `docker run --ulimit`).
ULIMITS = frozenset(("as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
                     "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"))

# tmpfs mount flags a task may give (the rest of mount(8)'s options make no sense for a tmpfs).
TMPFS_FLAGS = ("ro", "rw", "noexec", "exec", "nosuid", "suid", "nodev", "dev")

# CPU shares: the cgroup's relative weight (cpu.shares), as the kernel bounds it.
MIN_CPU_SHARES, MAX_CPU_SHARES = 2, 262144


# What a node offers a task and a task may need, as (kind, name) pairs (``NodeInfo.offers``,
# ``TaskSpec.host_needs``): a host volume by name, a host device by path, privileged containers.
VOLUME_OFFER, DEVICE_OFFER = "volume", "device"
PRIVILEGED_OFFER = ("privileged", "")


def sysctl_problem(key: str) -> str | None:
    """Why a container may not set sysctl ``key``, or None. Only what the container's own
    namespaces isolate is allowed (Docker's rule): the network namespace's ``net.*`` and the IPC
    namespace's ``kernel.shm*``, ``kernel.msg*``, ``kernel.sem`` and ``fs.mqueue.*``. Any other
    sysctl would change the whole host, for every container on it."""
    if re.fullmatch(r"(net\.|fs\.mqueue\.)[A-Za-z0-9_.\-/]+|kernel\.(shm|msg)[a-z_]*|kernel\.sem", key):
        return None
    return (f"{key} is not a namespaced sysctl; a container may set only net.*, kernel.shm*, "
            "kernel.msg*, kernel.sem and fs.mqueue.* (any other changes the whole host)")


def camel(name: str) -> str:
    """A field's API name: ``stop_grace_period`` -> ``stopGracePeriod``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True, order=True)
class Device:
    """A host device handed to the container: ``source`` (on the host; the node must list it in
    ``host_devices``) at ``target`` (in the container) with cgroup ``permissions`` (r, w, m)."""

    source: str
    target: str
    permissions: str = "rwm"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "permissions": self.permissions}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Device:
        return cls(str(d["source"]), str(d.get("target") or d["source"]), str(d.get("permissions", "rwm")))


@dataclass(frozen=True, order=True)
class Ulimit:
    """A resource limit (``nofile``: soft 1024, hard 4096); -1 is unlimited."""

    name: str
    soft: int
    hard: int

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "soft": self.soft, "hard": self.hard}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ulimit:
        return cls(str(d["name"]), int(d["soft"]), int(d["hard"]))


@dataclass(frozen=True, order=True)
class Tmpfs:
    """A tmpfs mounted at ``target``: ``size`` bytes (0: the kernel's default, half the RAM),
    ``mode`` its permission bits (None: 1777), ``flags`` from TMPFS_FLAGS."""

    target: str
    size: int = 0
    mode: int | None = None
    flags: tuple[str, ...] = ()

    def options(self) -> str:
        """The engine's option string: ``size=67108864,mode=1777,noexec``."""
        parts = [f"size={self.size}"] if self.size else []
        if self.mode is not None:
            parts.append(f"mode={self.mode:04o}")
        return ",".join(parts + list(self.flags))

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "size": self.size, "mode": self.mode, "flags": list(self.flags)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tmpfs:
        mode = d.get("mode")
        return cls(str(d["target"]), int(d.get("size", 0)), None if mode is None else int(mode),
                   tuple(str(f) for f in d.get("flags") or ()))


@dataclass(frozen=True)
class Logging:
    """The container's log driver and its options (``json-file`` with ``max-size``...)."""

    driver: str
    options: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"driver": self.driver, "options": dict(self.options)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Logging:
        return cls(str(d["driver"]), tuple(sorted((str(k), str(v)) for k, v in (d.get("options") or {}).items())))


@dataclass(frozen=True)
class ContainerSettings:
    """Everything a task asks of its container besides image, limits, command, env, ports and mounts.

    Empty values mean "the engine's (or the image's) default": ``entrypoint`` None is the
    image's, ``()`` clears it (Compose's ``entrypoint: []``); ``init`` None is the node's
    choice (the agent runs the engine's init by default); ``stop_grace_period`` None is the
    node's ``stop_timeout``. Collections are sorted tuples, so equal settings compare equal
    (and a service declared twice alike is not a new version).
    """

    user: str = ""
    working_dir: str = ""
    entrypoint: tuple[str, ...] | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False
    devices: tuple[Device, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    logging: Logging | None = None
    stop_signal: str = ""
    stop_grace_period: float | None = None
    init: bool | None = None
    ulimits: tuple[Ulimit, ...] = ()
    read_only: bool = False
    tmpfs: tuple[Tmpfs, ...] = ()
    hostname: str = ""
    extra_hosts: tuple[tuple[str, str], ...] = ()
    shm_size: int = 0
    sysctls: tuple[tuple[str, str], ...] = ()
    cpu_shares: int = 0

    @property
    def host_devices(self) -> frozenset[str]:
        """The host device paths the node must hand out (``host_devices`` in its config)."""
        return frozenset(d.source for d in self.devices)

    def changed(self, other: ContainerSettings) -> tuple[str, ...]:
        """The API names of the settings that differ from ``other``."""
        return tuple(camel(f.name) for f in fields(self) if getattr(self, f.name) != getattr(other, f.name))

    def to_dict(self) -> dict[str, Any]:
        """Only what is set: a task without settings writes nothing (the log reads as before)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            if f.name in ("devices", "ulimits", "tmpfs"):
                value = [item.to_dict() for item in value]
            elif f.name in ("labels", "sysctls"):
                value = dict(value)
            elif f.name == "extra_hosts":
                value = [list(pair) for pair in value]
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Logging):
                value = value.to_dict()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContainerSettings:
        entrypoint, logging, grace, init = (d.get(k) for k in ("entrypoint", "logging", "stop_grace_period", "init"))
        return cls(
            user=str(d.get("user", "")), working_dir=str(d.get("working_dir", "")),
            entrypoint=None if entrypoint is None else tuple(str(a) for a in entrypoint),
            cap_add=tuple(d.get("cap_add") or ()), cap_drop=tuple(d.get("cap_drop") or ()),
            privileged=bool(d.get("privileged", False)),
            devices=tuple(Device.from_dict(x) for x in d.get("devices") or ()),
            labels=tuple(sorted(dict(d.get("labels") or {}).items())),
            logging=None if logging is None else Logging.from_dict(logging),
            stop_signal=str(d.get("stop_signal", "")),
            stop_grace_period=None if grace is None else float(grace),
            init=None if init is None else bool(init),
            ulimits=tuple(Ulimit.from_dict(x) for x in d.get("ulimits") or ()),
            read_only=bool(d.get("read_only", False)),
            tmpfs=tuple(Tmpfs.from_dict(x) for x in d.get("tmpfs") or ()),
            hostname=str(d.get("hostname", "")),
            extra_hosts=tuple((str(h), str(ip)) for h, ip in d.get("extra_hosts") or ()),
            shm_size=int(d.get("shm_size", 0)),
            sysctls=tuple(sorted(dict(d.get("sysctls") or {}).items())),
            cpu_shares=int(d.get("cpu_shares", 0)),
        )


NO_SETTINGS = ContainerSettings()
