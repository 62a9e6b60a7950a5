"""Capacity comes from the host: /proc/meminfo, the CPUs we may run on, and any
cgroup limit on us or our ancestors, minus a reserve. The parsers are tested on
sample file contents; the last tests probe this very machine (and, when the
cgroup filesystem is writable, a real cgroup with a limit we set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from orion.domain.model import Resources
from orion.node.capacity import (
    CgroupMount,
    apply_reserve,
    cgroup_dirs,
    combine,
    parse_meminfo,
    parse_mountinfo,
    parse_proc_cgroup,
    parse_v1_cpu_quota,
    parse_v1_memory_limit,
    parse_v2_cpu_max,
    parse_v2_memory_max,
    probe,
)

MiB = 1024 * 1024
GiB = 1024 * MiB

MEMINFO = """MemTotal:       24684092 kB
MemFree:        24003760 kB
MemAvailable:   24229332 kB
"""

PROC_CGROUP_V1 = """9:name=systemd:/
4:memory:/process_api/392b
2:cpu,cpuacct:/slice/a
0::/
"""

MOUNTINFO = """25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_meminfo_total_in_bytes():
    assert parse_meminfo(MEMINFO) == 24684092 * 1024


def test_meminfo_without_total_is_an_error():
    with pytest.raises(ValueError):
        parse_meminfo("MemFree: 1 kB\n")


def test_v1_memory_limit_and_its_unlimited_marker():
    assert parse_v1_memory_limit("536870912\n") == 512 * MiB
    assert parse_v1_memory_limit("9223372036854771712\n") is None


def test_v2_memory_max():
    assert parse_v2_memory_max("max\n") is None
    assert parse_v2_memory_max("1073741824\n") == GiB


def test_v1_cpu_quota_in_millicores():
    assert parse_v1_cpu_quota("150000\n", "100000\n") == 1500
    assert parse_v1_cpu_quota("-1\n", "100000\n") is None
    assert parse_v1_cpu_quota("50000", "100000") == 500


def test_v2_cpu_max_in_millicores():
    assert parse_v2_cpu_max("max 100000\n") is None
    assert parse_v2_cpu_max("250000 100000\n") == 2500
    assert parse_v2_cpu_max("") is None


def test_proc_cgroup_maps_each_controller_and_the_unified_entry():
    paths = parse_proc_cgroup(PROC_CGROUP_V1)
    assert paths["memory"] == "/process_api/392b"
    assert paths["cpu"] == paths["cpuacct"] == "/slice/a"
    assert paths["systemd"] == "/"
    assert paths[""] == "/"


def test_mountinfo_finds_cgroup_mounts_of_both_versions():
    mounts = parse_mountinfo(MOUNTINFO)
    assert [(m.mount_point, m.version) for m in mounts] == [
        ("/sys/fs/cgroup/cpu,cpuacct", 1),
        ("/sys/fs/cgroup/memory", 1),
        ("/sys/fs/cgroup/unified", 2),
    ]
    assert {"cpu", "cpuacct"} <= mounts[0].controllers


def test_cgroup_dirs_walk_up_to_the_mount_point():
    m = CgroupMount("/", "/sys/fs/cgroup/memory", 1, frozenset({"memory"}))
    assert cgroup_dirs(m, "/a/b") == ["/sys/fs/cgroup/memory/a/b", "/sys/fs/cgroup/memory/a",
                                      "/sys/fs/cgroup/memory"]
    assert cgroup_dirs(m, "/") == ["/sys/fs/cgroup/memory"]


def test_cgroup_dirs_inside_a_namespaced_mount():
    # In a container the mount shows our own cgroup ("/docker/abc") at the mount point.
    m = CgroupMount("/docker/abc", "/sys/fs/cgroup", 2, frozenset())
    assert cgroup_dirs(m, "/docker/abc") == ["/sys/fs/cgroup"]
    assert cgroup_dirs(m, "/docker/abc/sub") == ["/sys/fs/cgroup/sub", "/sys/fs/cgroup"]
    assert cgroup_dirs(m, "/elsewhere") == ["/sys/fs/cgroup"]


def test_reserve_is_the_larger_of_fixed_and_fraction():
    small = apply_reserve(Resources(2 * GiB, 2000), 256 * MiB, 0.05, 100)
    assert small == Resources(2 * GiB - 256 * MiB, 1900)  # 5% of 2 GiB < 256 MiB
    big = apply_reserve(Resources(64 * GiB, 16000), 256 * MiB, 0.05, 100)
    assert big == Resources(64 * GiB - int(64 * GiB * 0.05), 15900)


def test_reserve_never_goes_negative():
    assert apply_reserve(Resources(100 * MiB, 50), 256 * MiB, 0.05, 100) == Resources(0, 0)


def test_combine_takes_the_smallest_view():
    assert combine(Resources(8 * GiB, 4000), Resources(2 * GiB, 8000), None) == Resources(2 * GiB, 4000)
    with pytest.raises(ValueError):
        combine(None)


# -- this machine -------------------------------------------------------------------------------


def test_probe_of_this_host_is_measured_not_constant():
    p = probe(256 * MiB, 0.05, 100)
    meminfo = parse_meminfo(Path("/proc/meminfo").read_text())
    assert 0 < p.host.memory == meminfo
    assert p.host.cpu_millis == len(os.sched_getaffinity(0)) * 1000
    assert p.capacity.memory <= p.host.memory - 256 * MiB
    assert p.capacity.cpu_millis <= p.host.cpu_millis - 100
    assert p.describe().startswith("capacity ")


def test_probe_takes_the_engine_view_when_smaller():
    p = probe(0, 0.0, 0, engine=Resources(1 * GiB, 500))
    assert p.capacity == Resources(1 * GiB, 500)


def _v1_controller_dir(controller: str) -> Path | None:
    for m in parse_mountinfo(Path("/proc/self/mountinfo").read_text()):
        if m.version == 1 and controller in m.controllers and m.root == "/":
            return Path(m.mount_point)
    return None


def test_probe_inside_a_real_cgroup_with_limits():
    """Put a child process into a fresh v1 memory+cpu cgroup with limits and let it probe."""
    mem_root, cpu_root = _v1_controller_dir("memory"), _v1_controller_dir("cpu")
    if mem_root is None or cpu_root is None or not os.access(mem_root, os.W_OK):
        pytest.skip("needs a writable cgroup v1 hierarchy (root in this sandbox)")
    # Our own cgroup path, so the child's limit sits below any limit we already have.
    paths = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
    name = f"orion-test-{uuid.uuid4().hex[:8]}"
    mem_cg = mem_root / paths["memory"].lstrip("/") / name
    cpu_cg = cpu_root / paths["cpu"].lstrip("/") / name
    mem_cg.mkdir()
    try:
        cpu_cg.mkdir()
        try:
            (mem_cg / "memory.limit_in_bytes").write_text(str(768 * MiB))
            (cpu_cg / "cpu.cfs_period_us").write_text("100000")
            (cpu_cg / "cpu.cfs_quota_us").write_text("150000")
            code = (
                "import json, os, sys\n"
                f"open({str(mem_cg / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
                f"open({str(cpu_cg / 'cgroup.procs')!r}, 'w').write(str(os.getpid()))\n"
                "from orion.node.capacity import probe\n"
                "p = probe(256 * 2**20, 0.05, 100)\n"
                "print(json.dumps([p.cgroup_memory, p.cgroup_cpu_millis, p.capacity.memory, "
                "p.capacity.cpu_millis]))\n"
            )
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
            cg_mem, cg_cpu, cap_mem, cap_cpu = json.loads(out.stdout)
        finally:
            cpu_cg.rmdir()
    finally:
        mem_cg.rmdir()
    assert cg_mem == 768 * MiB
    assert cg_cpu == 1500
    assert cap_mem == 768 * MiB - 256 * MiB
    assert cap_cpu == min(1500, len(os.sched_getaffinity(0)) * 1000) - 100
