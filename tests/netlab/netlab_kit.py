"""A multi-host lab on one kernel: each "host" is a network namespace with its own dockerd.

    root namespace:  bridge onl<S>br 10.77.S.254/24 (the underlay switch, MTU 1500)
        |-- veth onl<S>a  <->  ul0 10.77.S.1 in netns onl<S>-a  (dockerd, containers)
        |-- veth onl<S>b  <->  ul0 10.77.S.2 in netns onl<S>-b
        |-- veth onl<S>c  <->  ul0 10.77.S.3 in netns onl<S>-c
        `-- veth onl<S>x  <->  ul0 10.77.S.99 in netns onl<S>-x  (a stranger: no engine, no lease)

S is a slot (0..9) held with a lock file for the lab's life, so two test sessions on one
machine never share names. Everything the lab makes carries the prefix ``onl<S>`` (netns,
links), lives under /run/orion-netlab/<S> and /var/lib/orion-netlab/<S>, or carries the
comment ``orion-netlab-<S>`` (the root namespace's one iptables rule), and ``clean_slot``
removes all of it: at teardown, and at the next start after a crashed run.

Each dockerd is started as a fresh host would have it: the namespace's ip_forward is 0 first
(a new namespace inherits the root's 1), so Docker 20.10 sets FORWARD's policy to DROP, the
behaviour Orion's firewall must get past. It runs in its own mount namespace with the
namespace's own sysfs (and the host's cgroup mounts bound back in), its own data root, exec
root, pid file, socket and log. No lab namespace has a default route: nothing a lab container
sends can leave the machine.

Root namespace: br_netfilter is on here, so frames bridged between the lab's veths cross the
root's iptables FORWARD chain, whose policy the main engine set to DROP; one rule in
DOCKER-USER (``-i onl<S>br -o onl<S>br``) lets the lab's underlay through, and nothing else.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[2]
RUN = Path("/run/orion-netlab")
DATA = Path("/var/lib/orion-netlab")
SLOTS = 10
UNDERLAY_MTU = 1500
ENGINE_WAIT_S = 60
BUILD_IMAGE = ROOT / "scripts" / "build-test-image.sh"
IMAGE = "orion/busybox:latest"
CLONE_NEWNET = 0x40000000  # setns(2): join a network namespace

# Started under nsenter --net + unshare --mount: a sysfs of the namespace's own (so /sys/class/net
# shows its links) with the host's cgroup hierarchy bound back in (dockerd needs it). Each engine
# has an /etc/docker of its own: Docker 20.10 derives its ID from /etc/docker/key.json, which
# would otherwise be one for every engine of the machine, and the engine ID is the host's key
# of its overlay lease.
DOCKERD_SH = """set -e
run=$1; data=$2; shift 2
mkdir -p "$run/cg"
mount --rbind /sys/fs/cgroup "$run/cg"
mount -t sysfs sysfs /sys
mount --rbind "$run/cg" /sys/fs/cgroup
umount -l "$run/cg"
mkdir -p "$run/etc-docker"
mount --bind "$run/etc-docker" /etc/docker
exec dockerd --host "unix://$run/docker.sock" --data-root "$data" --exec-root "$run/exec" \\
  --pidfile "$run/docker.pid" --bridge none --iptables=true --ip-forward=true "$@"
"""


def run(*argv: str, check: bool = True, timeout: float = 60, input: str | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, input=input, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} -> {out.returncode}: {out.stderr.strip() or out.stdout.strip()}")
    return out


@dataclass
class LabHost:
    slot: int
    name: str  # a, b, c ... one letter
    octet: int  # its underlay address is 10.77.<slot>.<octet>
    engine: bool = True
    dockerd: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def netns(self) -> str:
        return f"onl{self.slot}-{self.name}"

    @property
    def root_veth(self) -> str:
        return f"onl{self.slot}{self.name}"

    @property
    def underlay_ip(self) -> IPv4Address:
        return IPv4Address(f"10.77.{self.slot}.{self.octet}")

    @property
    def run_dir(self) -> Path:
        return RUN / str(self.slot) / self.name

    @property
    def data_root(self) -> Path:
        return DATA / str(self.slot) / self.name

    @property
    def docker_host(self) -> str:
        return f"unix://{self.run_dir}/docker.sock"

    @property
    def log(self) -> Path:
        return self.run_dir / "dockerd.log"

    def client(self) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.docker_host, timeout=60)

    def sh(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """A command inside this host's network namespace."""
        return run("ip", "netns", "exec", self.netns, *argv, check=check, timeout=timeout)


class Lab:
    def __init__(self, names: tuple[str, ...] = ("a", "b", "c"), strangers: tuple[str, ...] = ("x",)) -> None:
        self.names = names
        self.stranger_names = strangers
        self.slot = -1
        self._lock: int | None = None
        self.hosts: dict[str, LabHost] = {}
        self.timings: dict[str, float] = {}

    @property
    def bridge(self) -> str:
        return f"onl{self.slot}br"

    @property
    def bridge_ip(self) -> IPv4Address:
        return IPv4Address(f"10.77.{self.slot}.254")

    @property
    def workdir(self) -> Path:
        """For the tests' own files (agent configs and logs); removed with the lab."""
        path = RUN / str(self.slot) / "work"
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def underlay(self) -> IPv4Network:
        return IPv4Network(f"10.77.{self.slot}.0/24")

    # -- up ---------------------------------------------------------------------------------

    def up(self) -> Lab:
        t0 = time.monotonic()
        self._take_slot()
        clean_slot(self.slot)
        self.timings["clean_leftovers_s"] = time.monotonic() - t0
        for i, n in enumerate(self.names):
            self.hosts[n] = LabHost(self.slot, n, i + 1)
        for j, n in enumerate(self.stranger_names):
            self.hosts[n] = LabHost(self.slot, n, 99 + j, engine=False)
        t = time.monotonic()
        self._underlay_switch()
        for h in self.hosts.values():
            self._plug(h)
        self.timings["namespaces_s"] = time.monotonic() - t
        t = time.monotonic()
        engines = [h for h in self.hosts.values() if h.engine]
        for h in engines:
            self._start_dockerd(h)
        with ThreadPoolExecutor(len(engines)) as pool:
            list(pool.map(self._wait_and_load, engines))
        self.timings["engines_s"] = time.monotonic() - t
        self.timings["total_s"] = time.monotonic() - t0
        return self

    def _take_slot(self) -> None:
        RUN.mkdir(parents=True, exist_ok=True)
        for slot in range(SLOTS):
            fd = os.open(RUN / f"slot{slot}.lock", os.O_CREAT | os.O_RDWR, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.slot, self._lock = slot, fd
            return
        raise RuntimeError(f"all {SLOTS} netlab slots are in use ({RUN}/slot*.lock)")

    def _underlay_switch(self) -> None:
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "link", "set", self.bridge, "mtu", str(UNDERLAY_MTU))
        run("ip", "addr", "add", f"{self.bridge_ip}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        if run("iptables", "-w", "-S", "DOCKER-USER", check=False).returncode == 0:
            run("iptables", "-w", "-I", "DOCKER-USER", "1", *root_rule(self.slot, self.bridge))

    def _plug(self, h: LabHost) -> None:
        run("ip", "netns", "add", h.netns)
        run("ip", "-n", h.netns, "link", "set", "lo", "up")
        run("ip", "link", "add", h.root_veth, "mtu", str(UNDERLAY_MTU), "type", "veth", "peer", "name", "ul0",
            "mtu", str(UNDERLAY_MTU), "netns", h.netns)
        run("ip", "link", "set", h.root_veth, "master", self.bridge, "up")
        run("ip", "-n", h.netns, "addr", "add", f"{h.underlay_ip}/24", "dev", "ul0")
        run("ip", "-n", h.netns, "link", "set", "ul0", "up")
        # As on a fresh host (a new namespace inherits the root's 1): Docker then sets FORWARD DROP.
        h.sh("sysctl", "-qw", "net.ipv4.ip_forward=0")

    def _start_dockerd(self, h: LabHost) -> None:
        h.run_dir.mkdir(parents=True, exist_ok=True)
        h.data_root.mkdir(parents=True, exist_ok=True)
        log = open(h.log, "ab")  # noqa: SIM115 - dockerd holds it; closed when the lab goes down
        h.dockerd = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{h.netns}", "unshare", "--mount", "--propagation", "slave",
             "sh", "-c", DOCKERD_SH, "dockerd-netlab", str(h.run_dir), str(h.data_root)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()

    def _wait_and_load(self, h: LabHost) -> None:
        deadline = time.monotonic() + ENGINE_WAIT_S
        while True:
            try:
                c = h.client()
                try:
                    c.ping()
                finally:
                    c.close()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if h.dockerd is not None and h.dockerd.poll() is not None:
                    raise RuntimeError(f"dockerd of {h.netns} exited:\n{tail(h.log)}") from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"dockerd of {h.netns} did not answer in {ENGINE_WAIT_S}s:\n{tail(h.log)}") from None
                time.sleep(0.1)
        out = subprocess.run([str(BUILD_IMAGE), IMAGE], env={**os.environ, "DOCKER_HOST": h.docker_host},
                             capture_output=True, text=True, timeout=120, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"test image on {h.netns}: {out.stderr}")

    # -- down -------------------------------------------------------------------------------

    def down(self) -> None:
        if self.slot < 0:
            return
        for h in self.hosts.values():
            if not h.engine:
                continue
            try:
                c = h.client()
                for ct in c.containers.list(all=True):
                    ct.remove(force=True)
                c.close()
            except Exception:  # noqa: BLE001 - the engine may be dead already; clean_slot kills it
                pass
            if h.dockerd is not None and h.dockerd.poll() is None:
                h.dockerd.send_signal(signal.SIGTERM)
                try:
                    h.dockerd.wait(20)
                except subprocess.TimeoutExpired:
                    pass
        clean_slot(self.slot)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def logs(self, lines: int = 40) -> str:
        """The tail of every engine's log, for a failing test's report."""
        return "\n".join(f"--- dockerd {h.netns} ({h.log})\n{tail(h.log, lines)}"
                         for h in self.hosts.values() if h.engine)


def root_rule(slot: int, bridge: str) -> tuple[str, ...]:
    return ("-i", bridge, "-o", bridge, "-m", "comment", "--comment", f"orion-netlab-{slot}", "-j", "ACCEPT")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"(no log: {e})"


def _slot_pids(slot: int) -> set[int]:
    """Processes of this slot: everything in its namespaces, anything naming its run dir (dockerd,
    containerd, shims), and all their descendants (the containers)."""
    marker = str(RUN / str(slot)) + "/"
    pids: set[int] = set()
    for ns in _slot_netns(slot):
        out = run("ip", "netns", "pids", ns, check=False)
        pids |= {int(p) for p in out.stdout.split() if p.isdigit()}
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
        if marker in cmdline + " ":
            pids.add(int(entry.name))
    todo = list(pids)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in pids:
                pids.add(child)
                todo.append(child)
    pids.discard(os.getpid())
    return pids


def _slot_netns(slot: int) -> list[str]:
    out = run("ip", "netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in out if line.startswith(f"onl{slot}-")]


def clean_slot(slot: int) -> None:
    """Remove everything a lab in ``slot`` may have left: processes, namespaces, links, the root's
    rule, the data and run directories. Safe to run when nothing is there."""
    for pid in _slot_pids(slot):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while _slot_pids(slot) and time.monotonic() < deadline:
        time.sleep(0.1)
    for ns in _slot_netns(slot):
        run("ip", "netns", "del", ns, check=False)
    links = run("ip", "-o", "link", "show", check=False).stdout.splitlines()
    for line in links:
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(f"onl{slot}") and not name.endswith("br"):
            run("ip", "link", "del", name, check=False)
    bridge = f"onl{slot}br"
    while run("iptables", "-w", "-D", "DOCKER-USER", *root_rule(slot, bridge), check=False).returncode == 0:
        pass
    run("ip", "link", "del", bridge, check=False)
    _rmdir_cgroups(DATA / str(slot))
    for base in (RUN / str(slot), DATA / str(slot)):
        for line in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            mountpoint = line.split()[1]
            if mountpoint.startswith(str(base) + "/"):
                run("umount", "-l", mountpoint, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _rmdir_cgroups(data: Path) -> None:
    """Empty cgroups of killed containers (cgroupfs v1 keeps docker/<id> under every controller)."""
    ids = {p.name for p in data.glob("*/containers/*") if len(p.name) == 64}
    for cid in ids:
        for cg in Path("/sys/fs/cgroup").glob(f"*/docker/{cid}"):
            try:
                cg.rmdir()
            except OSError:
                pass


def in_netns(path: str, fn):
    """``fn()`` in a thread that joined the network namespace at ``path`` (``/run/netns/<name>``,
    or ``/proc/<pid>/ns/net`` for a container's); a socket made there stays in that namespace."""
    libc = ctypes.CDLL(None, use_errno=True)
    box: dict = {}

    def worker() -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns")
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            box["error"] = e
        finally:
            os.close(fd)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
