"""Cut one node of a loopback cluster off from the others' Raft and gossip, both ways, any node.

Each node listens on its own loopback address (127.0.0.x), so what arrives at
the victim's Raft and gossip ports, and what those ports send back, is told
apart by address and port. What the victim *dials* is not: pysyncobj dials from
the higher address to the lower one, and a connection to 127.0.0.y leaves from
127.0.0.1 whoever opens it. So the victim's processes are moved into a cgroup
(v2) of our own for the cut; what they send to the others' Raft and gossip ports
marks its connection (CONNMARK, a mark of this cut alone), and every packet of a
marked connection is dropped where it arrives (INPUT): both directions stop,
the sender sees a silent network (no EPERM, as a drop in OUTPUT would give).
A socket keeps the cgroup its process had when it was made, so the connections
the victim already holds are cut by their own addresses and ports (read from
/proc after the move).
Without a usable cgroup v2 only the lowest-addressed node can be cut: every
connection it has is one the others dialed to its ports (``victims``).

The rules live in two chains of our own (``LINCHK-<tag>-IN``/``-OUT``) jumped to
from INPUT and OUTPUT for loopback only; :meth:`Partitioner.close` removes the
jumps, the chains and the cgroup, and runs on every exit path (it is safe to
call twice); chains and cgroups carry the pid of the run that made them, so the
next run removes what a killed one left (``drop_stale``) and nobody else's.
The API ports stay open: a cut-off node still answers clients, from its own
replica — exactly what a stale-read test needs.
"""

from __future__ import annotations

import os
import secrets
import socket
import struct
import subprocess
from pathlib import Path

from harness import Node

PREFIX = "LINCHK-"  # chains LINCHK-<pid>-<hex>-IN/-OUT (at most 28 characters)
CGROUP_PREFIX = "orion-lincheck-"


def _ipt(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["iptables", "-w", *args], capture_output=True, text=True, check=check)


def cgroup2_root() -> Path | None:
    """Where the cgroup v2 hierarchy is mounted, if it is and lets us make a group."""
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) > 2 and fields[2] == "cgroup2" and os.access(fields[1], os.W_OK):
            return Path(fields[1])
    return None


def group_pids(leader_pid: int) -> list[int]:
    """Every process of the agent's process group (gunicorn's master and its worker)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == leader_pid:  # field 5 of stat: the process group
            pids.append(int(stat.parent.name))
    return pids


def _address(field: str) -> tuple[str, int]:
    """``0100007F:8B2C`` (/proc/net/tcp: the IPv4 address in host order, the port in hex)."""
    ip, port = field.split(":")
    return socket.inet_ntoa(struct.pack("<I", int(ip, 16))), int(port, 16)


def tcp_connections(pids: list[int]) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """(local, remote) of every IPv4 TCP socket the processes ``pids`` hold open."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue  # it exited meanwhile
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            found.append((_address(fields[1]), _address(fields[2])))
    return found


def cgroup_of(pid: int, root: Path) -> Path:
    """The cgroup (v2) a process is in now, as a directory under ``root``."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return root / line[3:].lstrip("/")
    return root


def _dead(name: str) -> bool:
    """Whether the process that made chain or cgroup ``<prefix><pid>-...`` is gone."""
    pid = name.removeprefix(PREFIX).removeprefix(CGROUP_PREFIX).split("-")[0]
    return pid.isdigit() and not Path(f"/proc/{pid}").exists()


def drop_stale() -> None:
    """Remove the chains (and their jumps) and cgroups that a killed run left behind;
    a live run's (another pytest's) are named by its pid and kept."""
    for hook in ("INPUT", "OUTPUT"):
        for line in _ipt("-S", hook, check=False).stdout.splitlines():
            if line.startswith("-A ") and f"-j {PREFIX}" in line and _dead(line.split("-j ")[1].split()[0]):
                _ipt("-D", *line[3:].split(), check=False)
    for line in _ipt("-S", check=False).stdout.splitlines():
        if line.startswith(f"-N {PREFIX}") and _dead(line[3:]):
            _ipt("-F", line[3:], check=False)
            _ipt("-X", line[3:], check=False)
    root = cgroup2_root()
    for group in root.glob(f"{CGROUP_PREFIX}*") if root else ():
        if _dead(group.name):
            try:
                group.rmdir()
            except OSError:
                pass


class Partitioner:
    """One cut at a time: ``cut(victim)``, ``heal()``; ``close()`` when done (always)."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes
        drop_stale()
        tag = f"{os.getpid()}-{secrets.token_hex(2)}"
        self.chain_in, self.chain_out = f"{PREFIX}{tag}-IN", f"{PREFIX}{tag}-OUT"
        root = cgroup2_root()
        self.cgroup_rel = f"{CGROUP_PREFIX}{tag}"
        self.cgroup = root / self.cgroup_rel if root else None
        self.victim: Node | None = None
        self.home: Path | None = None  # the victim's own cgroup, where its processes go back
        try:
            if self.cgroup is not None:
                self.cgroup.mkdir()
        except OSError:
            self.cgroup = None
        for chain, hook, iface in ((self.chain_in, "INPUT", "-i"), (self.chain_out, "OUTPUT", "-o")):
            _ipt("-N", chain)
            _ipt("-I", hook, "1", iface, "lo", "-j", chain)

    def victims(self) -> list[Node]:
        """The nodes a cut can isolate completely (see the module docstring)."""
        if self.cgroup is not None:
            return list(self.nodes)
        return [min(self.nodes, key=lambda n: n.raft_addr)]

    def cut(self, victim: Node) -> None:
        assert self.victim is None, "one cut at a time"
        assert victim in self.victims(), f"{victim.id} cannot be cut off completely without a cgroup v2"
        self.victim = victim
        mark = hex(secrets.randbits(30) | 1)  # a mark of this cut alone: an old cut's marks stay on conntrack
        for proto, port in (("tcp", victim.raft_port), ("tcp", victim.gossip_port), ("udp", victim.gossip_port)):
            _ipt("-A", self.chain_in, "-d", victim.ip, "-p", proto, "--dport", str(port), "-j", "DROP")
            _ipt("-A", self.chain_in, "-s", victim.ip, "-p", proto, "--sport", str(port), "-j", "DROP")
        if self.cgroup is None:
            return
        _ipt("-A", self.chain_in, "-m", "connmark", "--mark", mark, "-j", "DROP")
        for other in self.nodes:
            if other is victim:
                continue
            for proto, ports in (("tcp", f"{other.raft_port},{other.gossip_port}"), ("udp", str(other.gossip_port))):
                _ipt("-A", self.chain_out, "-m", "cgroup", "--path", self.cgroup_rel, "-d", other.ip, "-p", proto,
                     "-m", "multiport", "--dports", ports, "-j", "CONNMARK", "--set-mark", mark)
        assert victim.proc is not None, f"{victim.id} is not running"
        self.home = cgroup_of(victim.proc.pid, self.cgroup.parent)
        pids = group_pids(victim.proc.pid)
        for pid in pids:
            try:
                (self.cgroup / "cgroup.procs").write_text(str(pid))
            except OSError:
                pass  # it exited meanwhile
        # A socket belongs to the cgroup its process was in when it was made: the victim's
        # connections from before the move are cut by their own addresses and ports (listed
        # after the move, so none made in between is missed).
        ports = {(o.ip, port) for o in self.nodes if o is not victim for port in (o.raft_port, o.gossip_port)}
        for (local, lport), (remote, rport) in tcp_connections(pids):
            if (remote, rport) in ports:
                _ipt("-A", self.chain_in, "-p", "tcp", "-s", local, "--sport", str(lport), "-d", remote,
                     "--dport", str(rport), "-j", "DROP")
                _ipt("-A", self.chain_in, "-p", "tcp", "-s", remote, "--sport", str(rport), "-d", local,
                     "--dport", str(lport), "-j", "DROP")

    def heal(self) -> None:
        for chain in (self.chain_in, self.chain_out):
            _ipt("-F", chain, check=False)
        if self.cgroup is not None and self.home is not None:
            for pid in (self.cgroup / "cgroup.procs").read_text().split():
                try:
                    (self.home / "cgroup.procs").write_text(pid)
                except OSError:
                    pass
        self.victim, self.home = None, None

    def close(self) -> None:
        self.heal()
        for chain, hook, iface in ((self.chain_in, "INPUT", "-i"), (self.chain_out, "OUTPUT", "-o")):
            _ipt("-D", hook, iface, "lo", "-j", chain, check=False)
            _ipt("-F", chain, check=False)
            _ipt("-X", chain, check=False)
        if self.cgroup is not None and self.cgroup.exists():
            try:
                self.cgroup.rmdir()
            except OSError:
                pass
