"""How much a node may hand out to tasks, measured on the host, never a constant.

Memory is the smaller of the machine (``/proc/meminfo``) and any cgroup limit
on the agent's own cgroup or its ancestors (v1 ``memory.limit_in_bytes``, v2
``memory.max``): an agent inside a container or a systemd slice must not offer
memory its cgroup will OOM-kill for. CPU is the smaller of the CPUs this
process may run on (``sched_getaffinity``) and any CFS quota (v1
``cpu.cfs_quota_us``/``cpu.cfs_period_us``, v2 ``cpu.max``). The engine's own
view may be folded in (minimum again). A reserve for the OS, the engine and
the agent itself is then subtracted.

The parsers below take file contents as strings so they are tested on sample
text; :func:`probe` is the thin part that reads the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from orion.domain.model import Resources

# cgroup v1 writes "no limit" as the largest page-aligned int64 (9223372036854771712);
# anything at or above 2**62 bytes (4 EiB) is not a real limit on any machine.
_UNLIMITED_BYTES = 1 << 62


# -- pure parsers ---------------------------------------------------------------


def parse_meminfo(text: str) -> int:
    """``MemTotal`` in bytes from /proc/meminfo text."""
    for line in text.splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            value = int(parts[1])
            unit = parts[2].lower() if len(parts) > 2 else ""
            return value * 1024 if unit == "kb" else value
    raise ValueError("MemTotal not found in meminfo")


def parse_v1_memory_limit(text: str) -> int | None:
    """cgroup v1 ``memory.limit_in_bytes``: bytes, or None when unlimited."""
    value = int(text.strip())
    return None if value <= 0 or value >= _UNLIMITED_BYTES else value


def parse_v2_memory_max(text: str) -> int | None:
    """cgroup v2 ``memory.max``: bytes, or None for ``max``."""
    value = text.strip()
    if value == "max":
        return None
    return parse_v1_memory_limit(value)


def _quota_millis(quota: int, period: int) -> int | None:
    if quota <= 0 or period <= 0:
        return None
    return max(1, quota * 1000 // period)


def parse_v1_cpu_quota(quota_text: str, period_text: str) -> int | None:
    """cgroup v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` in millicores; None when -1."""
    return _quota_millis(int(quota_text.strip()), int(period_text.strip()))


def parse_v2_cpu_max(text: str) -> int | None:
    """cgroup v2 ``cpu.max`` (``"150000 100000"`` or ``"max 100000"``) in millicores."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    period = int(parts[1]) if len(parts) > 1 else 100_000
    return _quota_millis(int(parts[0]), period)


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/self/cgroup -> {controller: path}; the v2 unified entry has key ``""``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        for name in controllers.split(",") if controllers else [""]:
            out[name.removeprefix("name=")] = path
    return out


@dataclass(frozen=True)
class CgroupMount:
    """One cgroup filesystem from /proc/self/mountinfo."""

    root: str  # the cgroup path this mount shows at its mount point
    mount_point: str
    version: int  # 1 or 2
    controllers: frozenset[str]  # v1 only; empty for v2


def parse_mountinfo(text: str) -> list[CgroupMount]:
    """The cgroup mounts in /proc/self/mountinfo text."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields_left, fields_right = left.split(), right.split()
        if len(fields_left) < 5 or len(fields_right) < 3:
            continue
        fstype = fields_right[0]
        root, mount_point = fields_left[3], fields_left[4]
        if fstype == "cgroup2":
            mounts.append(CgroupMount(root, mount_point, 2, frozenset()))
        elif fstype == "cgroup":
            opts = set(fields_right[2].split(","))
            mounts.append(CgroupMount(root, mount_point, 1, frozenset(opts)))
    return mounts


def cgroup_dirs(mount: CgroupMount, cgroup_path: str) -> list[str]:
    """Directories from the process's cgroup up to the mount point, innermost first.

    A limit on any ancestor binds too. When the process's path is outside the
    mount's root (a cgroup namespace), only the mount point itself is visible.
    """
    root = mount.root.rstrip("/")
    if root and cgroup_path != root and not cgroup_path.startswith(root + "/"):
        return [mount.mount_point]
    rel = cgroup_path[len(root):].strip("/")
    parts = rel.split("/") if rel else []
    dirs = []
    for i in range(len(parts), -1, -1):
        dirs.append(os.path.join(mount.mount_point, *parts[:i]))
    return dirs


def apply_reserve(
    raw: Resources, reserve_memory: int, reserve_memory_fraction: float, reserve_cpu_millis: int
) -> Resources:
    """What remains for tasks: memory minus max(fixed, fraction), CPU minus a fixed slice."""
    mem_reserve = max(reserve_memory, int(raw.memory * reserve_memory_fraction))
    return Resources(max(0, raw.memory - mem_reserve), max(0, raw.cpu_millis - reserve_cpu_millis))


def combine(*views: Resources | None) -> Resources:
    """The smallest of several views of one machine (host, cgroup, engine)."""
    present = [v for v in views if v is not None]
    if not present:
        raise ValueError("no capacity view")
    return Resources(min(v.memory for v in present), min(v.cpu_millis for v in present))


def _min_known(values: Iterable[int | None]) -> int | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


# -- the thin part that reads the host ------------------------------------------


@dataclass(frozen=True)
class Probe:
    """What was measured, for the log line and ``GET /nodes``: raw views and the result."""

    host: Resources
    cgroup_memory: int | None
    cgroup_cpu_millis: int | None
    engine: Resources | None
    capacity: Resources

    def describe(self) -> str:
        mib = 1024 * 1024
        parts = [f"host {self.host.memory // mib} MiB/{self.host.cpu_millis}m"]
        if self.cgroup_memory is not None or self.cgroup_cpu_millis is not None:
            mem = f"{self.cgroup_memory // mib} MiB" if self.cgroup_memory is not None else "-"
            parts.append(f"cgroup {mem}/{self.cgroup_cpu_millis or '-'}m")
        if self.engine is not None:
            parts.append(f"engine {self.engine.memory // mib} MiB/{self.engine.cpu_millis}m")
        return (
            f"capacity {self.capacity.memory // mib} MiB/{self.capacity.cpu_millis}m "
            f"({', '.join(parts)}, minus reserve)"
        )


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _limits_along(dirs: list[str], read_one: Callable[[str], int | None]) -> int | None:
    return _min_known(read_one(d) for d in dirs)


def probe(
    reserve_memory: int,
    reserve_memory_fraction: float,
    reserve_cpu_millis: int,
    engine: Resources | None = None,
    proc: str = "/proc",
) -> Probe:
    """Measure this host (and fold in the engine's view if given), minus the reserve."""
    host = Resources(parse_meminfo(_read(f"{proc}/meminfo") or ""), len(os.sched_getaffinity(0)) * 1000)
    paths = parse_proc_cgroup(_read(f"{proc}/self/cgroup") or "")
    mounts = parse_mountinfo(_read(f"{proc}/self/mountinfo") or "")

    def v1_dirs(controller: str) -> list[str]:
        for m in mounts:
            if m.version == 1 and controller in m.controllers and controller in paths:
                return cgroup_dirs(m, paths[controller])
        return []

    v2_dirs: list[str] = []
    for m in mounts:
        if m.version == 2 and "" in paths:
            v2_dirs = cgroup_dirs(m, paths[""])
            break

    def v1_mem(d: str) -> int | None:
        text = _read(f"{d}/memory.limit_in_bytes")
        return parse_v1_memory_limit(text) if text else None

    def v2_mem(d: str) -> int | None:
        text = _read(f"{d}/memory.max")
        return parse_v2_memory_max(text) if text else None

    def v1_cpu(d: str) -> int | None:
        quota, period = _read(f"{d}/cpu.cfs_quota_us"), _read(f"{d}/cpu.cfs_period_us")
        return parse_v1_cpu_quota(quota, period) if quota and period else None

    def v2_cpu(d: str) -> int | None:
        text = _read(f"{d}/cpu.max")
        return parse_v2_cpu_max(text) if text else None

    cg_mem = _min_known([_limits_along(v1_dirs("memory"), v1_mem), _limits_along(v2_dirs, v2_mem)])
    cg_cpu = _min_known([_limits_along(v1_dirs("cpu"), v1_cpu), _limits_along(v2_dirs, v2_cpu)])
    cgroup = Resources(
        cg_mem if cg_mem is not None else host.memory,
        cg_cpu if cg_cpu is not None else host.cpu_millis,
    )
    raw = combine(host, cgroup, engine)
    capacity = apply_reserve(raw, reserve_memory, reserve_memory_fraction, reserve_cpu_millis)
    return Probe(host, cg_mem, cg_cpu, engine, capacity)
