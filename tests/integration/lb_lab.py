"""A two-host lab in network namespaces for the load balancer's real-kernel tests.

    under    a bridge: the underlay, 192.168.77.0/24
    hA       eth0 192.168.77.1, bridge orion0 10.42.1.1/24 with b1 b2 b3 (.11-.13, each
             serving its own name on :80) and cA (.50); route 10.42.2.0/24 via hB
    hB       eth0 192.168.77.2, bridge orion0 10.42.2.1/24 with cB (.50); no replica;
             route 10.42.1.0/24 via hA
    ext      eth0 192.168.77.100, a client that reaches the hosts' underlay addresses only

The two overlay routes stand in for the VXLAN datapath (another part of Orion): what
is tested here is the NAT, not the encapsulation. Both hosts have a default route
towards ext, which forwards nothing: the "outside" a VIP without backends must
never leak to. Bridged traffic skips iptables in hA (bridge-nf-call-iptables=0), the
case where hairpin needs the load balancer's masquerade.

Every namespace is named ``olb<pid>n<lab>-<role>``; :func:`remove_leftovers` deletes
those of runs whose process is gone (and their /etc/netns files), so a run killed
half-way is cleaned up by the next.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PEER = str(Path(__file__).with_name("lb_peer.py"))
PREFIX = "olb"
BACKENDS = {"b1": "10.42.1.11", "b2": "10.42.1.12", "b3": "10.42.1.13"}
UNDERLAY = {"hA": "192.168.77.1", "hB": "192.168.77.2", "ext": "192.168.77.100"}
SUBNETS = {"hA": "10.42.1.0/24", "hB": "10.42.2.0/24"}
# ``ip netns exec NS`` bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf.
NETNS_ETC = Path("/etc/netns")
_labs = itertools.count(1)


def run(*args: str, check: bool = True, input: str | None = None, timeout: float = 20) -> str:
    done = subprocess.run(list(args), capture_output=True, text=True, input=input, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def missing_prerequisites() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("ip", "nft"):
        if shutil.which(tool) is None:
            return f"the {tool} tool is not installed"
    return None


def remove_leftovers() -> list[str]:
    """Delete ``olb<pid>-*`` namespaces whose run (pid) is no longer alive."""
    removed = []
    names = {line.split()[0] for line in run("ip", "netns", "list").splitlines() if line.strip()}
    if NETNS_ETC.is_dir():
        names |= {path.name for path in NETNS_ETC.iterdir()}
    for name in sorted(names):
        match = re.fullmatch(rf"{PREFIX}(\d+)n\d+-\w+", name)
        if match and not Path(f"/proc/{match.group(1)}").exists():
            delete_namespace(name)
            removed.append(name)
    return removed


def delete_namespace(name: str) -> None:
    """Kill what runs inside (only lab namespaces get here) and delete it."""
    for pid in run("ip", "netns", "pids", name, check=False).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    run("ip", "netns", "del", name, check=False)
    shutil.rmtree(NETNS_ETC / name, ignore_errors=True)


@dataclass
class Lab:
    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}n{next(_labs)}")
    made: list[str] = field(default_factory=list)
    servers: list[subprocess.Popen] = field(default_factory=list)

    def ns(self, role: str) -> str:
        return f"{self.tag}-{role}"

    def sh(self, role: str, *args: str, check: bool = True, input: str | None = None, timeout: float = 20) -> str:
        return run("ip", "netns", "exec", self.ns(role), *args, check=check, input=input, timeout=timeout)

    def prefix(self, role: str) -> Sequence[str]:
        return ("ip", "netns", "exec", self.ns(role))

    def build(self) -> Lab:
        for role in ("under", "hA", "hB", "ext", "cA", "cB", *BACKENDS):
            run("ip", "netns", "add", self.ns(role))
            self.made.append(self.ns(role))
            self.sh(role, "ip", "link", "set", "lo", "up")
        self.sh("under", "ip", "link", "add", "br0", "type", "bridge")
        self.sh("under", "ip", "link", "set", "br0", "up")
        for role, address in UNDERLAY.items():
            self._veth("under", f"u-{role}", role, "eth0")
            self.sh("under", "ip", "link", "set", f"u-{role}", "master", "br0", "up")
            self.sh(role, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            self.sh(role, "ip", "link", "set", "eth0", "up")
        for host, subnet in SUBNETS.items():
            gateway = subnet.replace(".0/24", ".1")
            self.sh(host, "ip", "link", "add", "orion0", "type", "bridge")
            self.sh(host, "ip", "addr", "add", f"{gateway}/24", "dev", "orion0")
            self.sh(host, "ip", "link", "set", "orion0", "up")
            self.sh(host, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            other = "hB" if host == "hA" else "hA"
            self.sh(host, "ip", "route", "add", SUBNETS[other], "via", UNDERLAY[other])
            self.sh(host, "ip", "route", "add", "default", "via", UNDERLAY["ext"])
        with contextlib.suppress(RuntimeError):  # absent without br_netfilter: bridged traffic skips it anyway
            self.sh("hA", "sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=0")
        for role, address in {**BACKENDS, "cA": "10.42.1.50"}.items():
            self._container("hA", role, address, "10.42.1.1")
        self._container("hB", "cB", "10.42.2.50", "10.42.2.1")
        for role in BACKENDS:
            self._serve(role)
        return self

    def _veth(self, here: str, here_name: str, there: str, there_name: str) -> None:
        run("ip", "-n", self.ns(here), "link", "add", here_name, "type", "veth", "peer", "name", there_name,
            "netns", self.ns(there))

    def _container(self, host: str, role: str, address: str, gateway: str) -> None:
        self._veth(host, f"v-{role}", role, "eth0")
        self.sh(host, "ip", "link", "set", f"v-{role}", "master", "orion0", "up")
        self.sh(role, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        self.sh(role, "ip", "link", "set", "eth0", "up")
        self.sh(role, "ip", "route", "add", "default", "via", gateway)

    def _serve(self, role: str) -> None:
        self.spawn(role, sys.executable, PEER, "serve", role, "80")

    def use_resolver(self, role: str, nameserver: str, search: str) -> None:
        """What ``role``'s programs resolve with (glibc reads the bind-mounted file)."""
        directory = NETNS_ETC / self.ns(role)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "resolv.conf").write_text(f"nameserver {nameserver}\nsearch {search}\noptions timeout:1\n")

    def spawn(self, role: str, *args: str) -> subprocess.Popen:
        """A long-running program in ``role`` that prints "ready" once it is; killed by destroy()."""
        proc = subprocess.Popen([*self.prefix(role), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        self.servers.append(proc)
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            proc.kill()
            raise RuntimeError(f"{' '.join(args)} in {role} did not start: {proc.stderr.read() if proc.stderr else ''}")
        return proc

    def get(self, role: str, url: str, count: int, timeout: float = 3.0) -> list[str]:
        out = self.sh(role, sys.executable, PEER, "get", url, str(count), str(timeout),
                      timeout=count * (timeout + 1) + 10)
        return out.split("\n")[:-1]

    def resolve(self, role: str, name: str) -> list[str]:
        return self.sh(role, sys.executable, PEER, "resolve", name).split("\n")[:-1]

    def udp(self, role: str, host: str, port: int, count: int) -> list[str]:
        return self.sh(role, sys.executable, PEER, "udp", host, str(port), str(count), timeout=count * 3 + 10
                       ).split("\n")[:-1]

    def session(self, role: str, host: str, port: int) -> Session:
        proc = subprocess.Popen([*self.prefix(role), sys.executable, PEER, "session", host, str(port)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.servers.append(proc)
        return Session(proc)

    def destroy(self) -> None:
        for proc in self.servers:
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)
        for name in reversed(self.made):
            delete_namespace(name)
        self.made.clear()


@dataclass
class Session:
    """One keep-alive HTTP connection held open by a client in its namespace."""

    proc: subprocess.Popen

    def ask(self) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("get\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.write("close\n")
                self.proc.stdin.flush()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
